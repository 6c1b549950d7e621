package queue

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"easymail/internal/delivery"
	"easymail/internal/dsn"
	"easymail/internal/events"
	"easymail/internal/smtperr"
	"easymail/internal/spool"
	"easymail/internal/store"
)

// okReply is what fakeMX answers for a recipient it has no script for.
const okReply = "250 2.0.0 Ok: queued as 4BX3"

// fakeMX is a scripted Deliverer. Each recipient address has a list of replies ("550 5.1.1 <x>: User
// unknown"), one per attempt, consumed in order; the last one repeats, and a recipient without a script is
// accepted with okReply. A reply is returned as the real delivery returns a remote host's reply: an
// *smtperr.Error whose message says "remote host mx.<domain> said: <reply>" (nil for a 2xx), and the reply
// itself as RcptResult.Reply. It records every job with the content it read, as a receiving MX would.
type fakeMX struct {
	mu      sync.Mutex
	script  map[string][]string
	jobs    []gotJob
	cur     int // deliveries in progress
	maxConc int // the most deliveries in progress at once
	// hook, when not nil, runs in Deliver after the content was read and before the result is returned.
	hook func(j delivery.Job)
}

// gotJob is one job fakeMX was given, and the content it read.
type gotJob struct {
	delivery.Job
	content string
}

func newFakeMX() *fakeMX { return &fakeMX{script: map[string][]string{}} }

// answer sets the replies of addr's attempts.
func (m *fakeMX) answer(addr string, replies ...string) {
	m.mu.Lock()
	m.script[addr] = replies
	m.mu.Unlock()
}

// Deliver answers each recipient of j from the script.
func (m *fakeMX) Deliver(ctx context.Context, j delivery.Job) delivery.Result {
	m.mu.Lock()
	m.cur++
	m.maxConc = max(m.maxConc, m.cur)
	hook := m.hook
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.cur--
		m.mu.Unlock()
	}()
	res := delivery.Result{Started: time.Now(), RemoteMX: "mx." + j.Domain, RemoteIP: "127.0.0.2",
		LocalIP: j.Source.IP.String(), Duration: time.Millisecond}
	var content string
	if rc, err := j.Open(); err == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		content = string(b)
	} else {
		content = "open failed: " + err.Error()
	}
	m.mu.Lock()
	for _, rcpt := range j.Recipients {
		reply := okReply
		if s := m.script[rcpt]; len(s) > 0 {
			reply = s[0]
			if len(s) > 1 {
				m.script[rcpt] = s[1:]
			}
		}
		rr := delivery.RcptResult{Rcpt: rcpt, Reply: reply}
		if !strings.HasPrefix(reply, "2") {
			rr.Err = remoteReply(res.RemoteMX, reply)
		}
		res.Rcpts = append(res.Rcpts, rr)
	}
	m.jobs = append(m.jobs, gotJob{Job: j, content: content})
	m.mu.Unlock()
	if hook != nil {
		hook(j)
	}
	return res
}

// remoteReply is the error the delivery makes of a remote host's reply "550 5.1.1 text".
func remoteReply(host, reply string) *smtperr.Error {
	f := strings.Fields(reply)
	code, _ := strconv.Atoi(f[0])
	var enh [3]int
	if len(f) > 1 {
		fmt.Sscanf(f[1], "%d.%d.%d", &enh[0], &enh[1], &enh[2])
	}
	return &smtperr.Error{Code: code, Enhanced: enh, Message: "remote host " + host + " said: " + reply}
}

// jobsFor returns the jobs of message id, in the order they were made.
func (m *fakeMX) jobsFor(id string) []gotJob {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []gotJob
	for _, j := range m.jobs {
		if j.QueueID == id {
			out = append(out, j)
		}
	}
	return out
}

// fixedSource is a SourcePicker that always picks 127.0.0.1.
type fixedSource struct{}

func (fixedSource) Pick(context.Context, PickRequest) (delivery.Source, error) {
	return delivery.Source{IP: netip.MustParseAddr("127.0.0.1"), HELO: "relay.test"}, nil
}

// fakeEvents is an EventSink that keeps the events published (after their transaction committed).
type fakeEvents struct {
	mu  sync.Mutex
	evs []events.Event
}

func (e *fakeEvents) Emit(*sql.Tx, *events.Event) error { return nil }

func (e *fakeEvents) Published(es ...events.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, es...)
	e.mu.Unlock()
}

// list returns "event recipient" for each event of message id, in order.
func (e *fakeEvents) list(id string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.evs {
		if ev.QueueID == id {
			out = append(out, ev.Event+" "+ev.Recipient)
		}
	}
	return out
}

// harness is a queue of node "n1" on a database and a spool in a temporary directory, delivering through a
// fakeMX. Tests drive it with tick (one scheduling pass, waiting for the deliveries it started) and move
// time with advance.
//
// The queue reads the wall clock (time.Now) and takes no clock; advance moves time forward by moving every
// time the database holds (arrival, expiry, next attempt, update and attempt times) back by the same
// amount, which is the same thing for every decision the queue makes (due, expired, old enough for a delay
// notice) and keeps the tests free of sleeps.
type harness struct {
	t   *testing.T
	ctx context.Context
	dir string
	o   Options
	db  *store.DB
	sp  *spool.Spool
	q   *Queue
	mx  *fakeMX
	ev  *fakeEvents
	// closeDB closes db once (a crash test closes it early).
	closeDB func()
}

// newHarness returns a harness whose queue has o's schedule (Retry, MaxLifetime, DelayNotice, Workers); the
// harness fills in the rest.
func newHarness(t *testing.T, o Options) *harness {
	t.Helper()
	h := &harness{t: t, ctx: context.Background(), dir: t.TempDir(), mx: newFakeMX(), ev: &fakeEvents{}}
	o.Deliverer, o.Sources, o.Events = h.mx, fixedSource{}, h.ev
	o.NodeID, o.Hostname = "n1", "relay.test"
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	h.o = o
	h.open()
	return h
}

// open opens the database and the spool of h.dir and a new queue on them: a new process, as far as claims go.
func (h *harness) open() {
	h.t.Helper()
	db, err := store.Open(h.ctx, filepath.Join(h.dir, "db.sqlite"))
	if err != nil {
		h.t.Fatal(err)
	}
	var once sync.Once
	h.closeDB = func() { once.Do(func() { db.Close() }) }
	h.t.Cleanup(h.closeDB)
	sp, err := spool.Open(filepath.Join(h.dir, "spool"))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { sp.Close() })
	o := h.o
	o.DB, o.Spool = db, sp
	h.db, h.sp, h.q = db, sp, New(o)
}

// content is the spooled content of the test messages.
func content(id string) string {
	return "From: alice@acme.test\r\nSubject: test " + id + "\r\nMessage-ID: <" + id + "@acme.test>\r\n\r\nbody\r\n"
}

// enqueue spools content(id) and queues it from sender to rcpts (NOTIFY default), as the SMTP server does.
func (h *harness) enqueue(id, sender string, rcpts ...string) {
	h.t.Helper()
	env := Envelope{ID: id, Sender: sender, MessageID: id + "@acme.test", Received: time.Now()}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, Recipient{Address: r})
	}
	h.enqueueEnv(env)
}

// enqueueEnv spools content(env.ID) and queues env.
func (h *harness) enqueueEnv(env Envelope) {
	h.t.Helper()
	w, err := h.sp.Create(env.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	c := content(env.ID)
	w.Write([]byte(c))
	if err := w.Commit(); err != nil {
		h.t.Fatal(err)
	}
	env.Size = int64(len(c))
	if err := h.q.Enqueue(h.ctx, env); err != nil {
		h.t.Fatal(err)
	}
}

// tick runs one scheduling pass of the queue (what Run does on a kick or a poll) and waits for the
// deliveries it started to be recorded. It returns how many deliveries it started.
func (h *harness) tick() int {
	h.t.Helper()
	n, _, err := h.q.dispatch(h.ctx, h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	h.q.wg.Wait()
	return n
}

// drain ticks until nothing is due (the DSNs a tick queued are due at once).
func (h *harness) drain() {
	h.t.Helper()
	for range 20 {
		if h.tick() == 0 {
			return
		}
	}
	h.t.Fatal("the queue still has due work after 20 passes")
}

// exec runs one statement in a transaction.
func (h *harness) exec(query string, args ...any) {
	h.t.Helper()
	if err := h.db.Tx(h.ctx, func(tx *sql.Tx) error { _, err := tx.Exec(query, args...); return err }); err != nil {
		h.t.Fatal(err)
	}
}

// advance moves time forward by d, for every message.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	ms := d.Milliseconds()
	if err := h.db.Tx(h.ctx, func(tx *sql.Tx) error {
		for _, s := range []string{
			`UPDATE messages SET received_at = received_at - ?1, expires_at = expires_at - ?1, done_at = done_at - ?1`,
			`UPDATE recipients SET next_attempt_at = next_attempt_at - ?1, updated_at = updated_at - ?1`,
			`UPDATE attempts SET started_at = started_at - ?1`,
		} {
			if _, err := tx.Exec(s, ms); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
}

// advanceToNext moves time to the next attempt of message id (when it is in the future) and returns the
// distance moved.
func (h *harness) advanceToNext(id string) time.Duration {
	h.t.Helper()
	var next int64
	if err := h.db.R.QueryRow(`SELECT MIN(next_attempt_at) FROM recipients WHERE message_id = ? AND status IN ('queued', 'deferred')`,
		id).Scan(&next); err != nil {
		h.t.Fatalf("next attempt of %s: %v", id, err)
	}
	d := time.Duration(next-store.Now()) * time.Millisecond
	if d > 0 {
		h.advance(d)
	}
	return d
}

// rcptRow is a recipients row.
type rcptRow struct {
	address, status              string
	attempts                     int
	next                         int64
	code                         int
	enhanced, reply, remoteReply string
	claimedBy, bounceClass       string
}

// rcpt reads recipient idx of message id.
func (h *harness) rcpt(id string, idx int) rcptRow {
	h.t.Helper()
	var r rcptRow
	if err := h.db.R.QueryRow(`SELECT address, status, attempts, next_attempt_at, last_code, last_enhanced, last_reply,
		last_remote_reply, claimed_by, bounce_class FROM recipients WHERE message_id = ? AND idx = ?`, id, idx).Scan(
		&r.address, &r.status, &r.attempts, &r.next, &r.code, &r.enhanced, &r.reply, &r.remoteReply, &r.claimedBy,
		&r.bounceClass); err != nil {
		h.t.Fatalf("recipient %d of %s: %v", idx, id, err)
	}
	return r
}

// msgRow is a messages row.
type msgRow struct {
	status        string
	expires       int64
	received      int64
	done          sql.NullInt64
	delayNotified bool
}

// message reads message id.
func (h *harness) message(id string) msgRow {
	h.t.Helper()
	var m msgRow
	if err := h.db.R.QueryRow(`SELECT status, expires_at, received_at, done_at, delay_notified FROM messages WHERE id = ?`, id).Scan(
		&m.status, &m.expires, &m.received, &m.done, &m.delayNotified); err != nil {
		h.t.Fatalf("message %s: %v", id, err)
	}
	return m
}

// attemptRow is an attempts row.
type attemptRow struct {
	idx, attempt                      int
	outcome                           string
	code                              int
	enhanced, reply, remoteReply      string
	remoteMX, outboundIP, bounceClass string
}

// attempts reads the attempts of message id, by recipient and attempt number.
func (h *harness) attempts(id string) []attemptRow {
	h.t.Helper()
	rows, err := h.db.R.Query(`SELECT rcpt_idx, attempt, outcome, code, enhanced, reply, remote_reply, remote_mx, outbound_ip,
		bounce_class FROM attempts WHERE message_id = ? ORDER BY rcpt_idx, attempt`, id)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	var out []attemptRow
	for rows.Next() {
		var a attemptRow
		if err := rows.Scan(&a.idx, &a.attempt, &a.outcome, &a.code, &a.enhanced, &a.reply, &a.remoteReply, &a.remoteMX,
			&a.outboundIP, &a.bounceClass); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// queuedDSN is a DSN the queue made about a message: its row and its parsed content.
type queuedDSN struct {
	id, sender, subject, rcpt, notify string
	parsed                            *dsn.Parsed
}

// dsnsFor returns the DSNs queued about message id, oldest first, parsed from the spool (or, once delivered
// and removed from it, from the content fakeMX received).
func (h *harness) dsnsFor(id string) []queuedDSN {
	h.t.Helper()
	rows, err := h.db.R.Query(`SELECT m.id, m.sender, m.subject, r.address, r.notify FROM messages m
		JOIN recipients r ON r.message_id = m.id WHERE m.dsn_for = ? AND m.is_dsn = 1 ORDER BY m.received_at, m.id`, id)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []queuedDSN
	for rows.Next() {
		var d queuedDSN
		if err := rows.Scan(&d.id, &d.sender, &d.subject, &d.rcpt, &d.notify); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		h.t.Fatal(err)
	}
	for i := range out {
		var raw string
		if b, err := os.ReadFile(filepath.Join(h.sp.Dir(), out[i].id)); err == nil {
			raw = string(b)
		} else if js := h.mx.jobsFor(out[i].id); len(js) > 0 {
			raw = js[0].content
		} else {
			h.t.Fatalf("DSN %s: no content in the spool (%v) and never delivered", out[i].id, err)
		}
		p, err := dsn.ParseMessage(strings.NewReader(raw))
		if err != nil {
			h.t.Fatalf("DSN %s: %v\n%s", out[i].id, err, raw)
		}
		out[i].parsed = p
	}
	return out
}

// inSpool reports whether the spool still holds id's content.
func (h *harness) inSpool(id string) bool {
	_, err := os.Stat(filepath.Join(h.sp.Dir(), id))
	return err == nil
}

// within fails unless next (a stored time) is d after a moment between before and after, give or take the
// ±10% jitter of the backoff.
func within(t *testing.T, what string, next, before, after int64, d time.Duration) {
	t.Helper()
	lo, hi := before+(d*9/10).Milliseconds(), after+(d*11/10).Milliseconds()
	if next < lo || next > hi {
		t.Errorf("%s: next attempt %v after the attempt, want %v ±10%%", what,
			time.Duration(next-before)*time.Millisecond, d)
	}
}
