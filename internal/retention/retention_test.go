package retention

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/store"
)

var now = time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type logMsg struct {
	id, customer, sender, headerFrom, subject, reason, status string
	held                                                      bool
	received                                                  time.Time
	done                                                      bool
	rcpts                                                     []logRcpt
}

type logRcpt struct {
	address, status, reply string
	attempts               int
}

func insertLog(t *testing.T, db *store.DB, msgs ...logMsg) {
	t.Helper()
	err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		for _, m := range msgs {
			var done any
			if m.done {
				done = store.Millis(m.received.Add(time.Minute))
			}
			status := m.status
			if status == "" {
				status = "delivered"
			}
			if _, err := tx.Exec(`INSERT INTO messages (id, node_id, customer_id, sender, header_from, subject, reason, status, held,
				received_at, expires_at, done_at, prefix) VALUES (?, 'n1', ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`, m.id, m.customer, m.sender,
				m.headerFrom, m.subject, m.reason, status, m.held, store.Millis(m.received), done,
				"Received: from x\r\n\tfor <"+firstRcpt(m)+">\r\n"); err != nil {
				return err
			}
			for i, r := range m.rcpts {
				rs := r.status
				if rs == "" {
					rs = "delivered"
				}
				if _, err := tx.Exec(`INSERT INTO recipients (message_id, idx, address, domain, status, next_attempt_at, last_reply,
					last_remote_reply, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, 0)`, m.id, i, r.address, r.address[strings.LastIndex(r.address, "@")+1:],
					rs, r.reply, r.reply); err != nil {
					return err
				}
				for a := range r.attempts {
					if _, err := tx.Exec(`INSERT INTO attempts (message_id, rcpt_idx, attempt, started_at, outcome, reply, remote_reply)
						VALUES (?, ?, ?, 0, 'deferred', ?, ?)`, m.id, i, a+1, r.reply, r.reply); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func firstRcpt(m logMsg) string {
	if len(m.rcpts) == 0 {
		return ""
	}
	return m.rcpts[0].address
}

func count(t *testing.T, db *store.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.R.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func messageIDs(t *testing.T, db *store.DB) []string {
	t.Helper()
	rows, err := db.R.Query(`SELECT id FROM messages ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	return ids
}

type fakePurger struct{ calls int }

func (p *fakePurger) Purge(context.Context) (int64, error) { p.calls++; return 7, nil }

func TestRetentionDeletesExactlyWhatIsOlder(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	keep := 4380 * time.Hour
	cutoff := now.Add(-keep)
	var msgs []logMsg
	var want []string
	// 25 old finished messages (deleted, over several batches), messages around the cutoff, an old held
	// message and an old one still deferred (kept: they are the queue).
	for i := range 25 {
		msgs = append(msgs, logMsg{id: fmt.Sprintf("OLD%02d", i), received: cutoff.Add(-time.Duration(i+1) * time.Hour), done: true,
			rcpts: []logRcpt{{address: "a@x.example", attempts: 2}, {address: "b@x.example", attempts: 1}}})
	}
	msgs = append(msgs,
		logMsg{id: "EDGE-1ms", received: cutoff.Add(-time.Millisecond), done: true, rcpts: []logRcpt{{address: "c@x.example", attempts: 1}}},
		logMsg{id: "EDGE-0", received: cutoff, done: true, rcpts: []logRcpt{{address: "c@x.example", attempts: 1}}},
		logMsg{id: "NEW", received: now.Add(-time.Hour), done: true, rcpts: []logRcpt{{address: "c@x.example", attempts: 1}}},
		logMsg{id: "OLD-HELD", received: cutoff.Add(-time.Hour), held: true, status: "held", rcpts: []logRcpt{{address: "d@x.example", status: "queued"}}},
		logMsg{id: "OLD-DEFERRED", received: cutoff.Add(-time.Hour), status: "deferred", rcpts: []logRcpt{{address: "d@x.example", status: "deferred", attempts: 3}}},
	)
	want = []string{"EDGE-0", "NEW", "OLD-DEFERRED", "OLD-HELD"}
	insertLog(t, db, msgs...)

	p := &fakePurger{}
	j := New(Options{DB: db, Log: keep, Batch: 10, Pause: time.Millisecond, Suppressions: p, Now: func() time.Time { return now }})
	res, err := j.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(t, db); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("left %v, want %v", got, want)
	}
	if res.Messages != 26 || res.Recipients != 51 || res.Attempts != 76 || res.Suppressions != 7 || res.Batches != 3 || p.calls != 1 {
		t.Fatalf("result %+v, purges %d", res, p.calls)
	}
	// No orphan rows.
	if n := count(t, db, `SELECT COUNT(*) FROM recipients WHERE message_id NOT IN (SELECT id FROM messages)`); n != 0 {
		t.Fatalf("%d orphan recipients", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM attempts WHERE message_id NOT IN (SELECT id FROM messages)`); n != 0 {
		t.Fatalf("%d orphan attempts", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM attempts`); n != 3+1+1 {
		t.Fatalf("%d attempts left, want 5", n)
	}
	// A second run finds nothing.
	if res, err = j.Once(ctx); err != nil || res.Messages != 0 || res.Batches != 0 {
		t.Fatalf("second run %+v %v", res, err)
	}
}

func TestRetentionZeroKeepsTheLog(t *testing.T) {
	db := openDB(t)
	insertLog(t, db, logMsg{id: "ANCIENT", received: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), done: true,
		rcpts: []logRcpt{{address: "a@x.example"}}})
	p := &fakePurger{}
	res, err := New(Options{DB: db, Suppressions: p, Now: func() time.Time { return now }}).Once(context.Background())
	if err != nil || res.Messages != 0 || p.calls != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	if ids := messageIDs(t, db); len(ids) != 1 {
		t.Fatalf("log deleted with retention 0: %v", ids)
	}
}

func TestRetentionRunLoop(t *testing.T) {
	db := openDB(t)
	insertLog(t, db, logMsg{id: "OLD", received: now.Add(-2 * time.Hour), done: true, rcpts: []logRcpt{{address: "a@x.example"}}})
	p := &fakePurger{}
	j := New(Options{DB: db, Log: time.Hour, FirstRun: time.Millisecond, Interval: 20 * time.Millisecond,
		Suppressions: p, Now: func() time.Time { return now }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { j.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(messageIDs(t, db)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the job never ran")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestSubjectHashIsCaseInsensitive(t *testing.T) {
	a, b := SubjectHash("Bob@Example.COM"), SubjectHash("bob@example.com")
	if a != b || len(a) != 64 {
		t.Fatalf("%s %s", a, b)
	}
}

// TestAlsoPurgersRun: a list added with Also (the quarantine) is purged at each run, counted under its name.
func TestAlsoPurgersRun(t *testing.T) {
	db := openDB(t)
	reg := prometheus.NewRegistry()
	q := &fakePurger{}
	j := New(Options{DB: db, Registerer: reg, Now: func() time.Time { return now }})
	j.Also("quarantine", q)
	for range 2 {
		if _, err := j.Once(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if q.calls != 2 {
		t.Fatalf("quarantine purged %d times, want 2", q.calls)
	}
	mfs, _ := reg.Gather()
	var got float64
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if mf.GetName() == "easymail_retention_deleted_total" && l.GetValue() == "quarantine" {
					got = m.GetCounter().GetValue()
				}
			}
		}
	}
	if got != 14 {
		t.Fatalf("quarantine deletions counted %v, want 14", got)
	}
}
