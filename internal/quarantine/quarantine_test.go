package quarantine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/queue"
	"easymail/internal/scan"
	"easymail/internal/spool"
	"easymail/internal/store"
)

type fixture struct {
	db  *store.DB
	sp  *spool.Spool
	q   *queue.Queue
	s   *Store
	now time.Time
}

func setup(t *testing.T) *fixture {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sp, err := spool.Open(filepath.Join(dir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	f := &fixture{db: db, sp: sp, now: time.Now()}
	f.q = queue.New(queue.Options{DB: db, Spool: sp, NodeID: "n1", Hostname: "relay.test", Retry: []time.Duration{time.Minute},
		MaxLifetime: time.Hour})
	f.s = &Store{DB: db, Queue: f.q, Retention: 24 * time.Hour, Now: func() time.Time { return f.now }}
	return f
}

// put spools msg as id and quarantines it.
func (f *fixture) put(t *testing.T, id, customer, msg string) {
	w, err := f.sp.Create(id)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(msg))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	env := queue.Envelope{ID: id, CustomerID: customer, Sender: "a@acme.test", Recipients: []queue.Recipient{{Address: "b@dest.test"}},
		Subject: "Offer", Size: int64(len(msg)), Received: f.now, Verdict: "spam", Scan: `{"verdict":"spam","action":"quarantine","reason":"Spam message (score 15.0)","verdicts":[]}`}
	rep := scan.Report{Verdict: "spam", Action: "quarantine", Reason: "Spam message (score 15.0)"}
	if err := f.s.Put(context.Background(), env, rep, strings.NewReader(msg), int64(len(msg))); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) status(t *testing.T, id string) (msg string, rcpt string) {
	if err := f.db.R.QueryRow(`SELECT m.status, r.status FROM messages m JOIN recipients r ON r.message_id = m.id WHERE m.id = ?`, id).
		Scan(&msg, &rcpt); err != nil {
		t.Fatal(err)
	}
	return msg, rcpt
}

const htmlMsg = "From: a@acme.test\r\nSubject: Offer\r\nContent-Type: text/html\r\n\r\n" +
	"<html><script>alert(1)</script><p>Buy   <b>now</b> &amp; save\x1b[31m</p>\xff</html>\r\n"

func TestPutListGetReleaseDelete(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	f.put(t, "Q1", "c1", htmlMsg)
	f.now = f.now.Add(time.Second)
	f.put(t, "Q2", "c1", "From: a@acme.test\r\n\r\nplain\r\n")
	f.put(t, "Q3", "c2", "From: a@acme.test\r\n\r\nother\r\n")

	if m, r := f.status(t, "Q1"); m != "quarantined" || r != "quarantined" {
		t.Fatalf("status %s/%s", m, r)
	}
	list, err := f.s.List(ctx, "c1", 0)
	if err != nil || len(list) != 2 || list[0].ID != "Q2" || list[1].Recipients[0] != "b@dest.test" {
		t.Fatalf("list %+v %v", list, err)
	}
	if all, _ := f.s.List(ctx, "", 0); len(all) != 3 {
		t.Fatalf("all %+v", all)
	}
	m, err := f.s.Get(ctx, "Q1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Preview != "Buy now & save\uFFFD[31m \uFFFD" || !strings.HasPrefix(m.Header, "From: a@acme.test\nSubject: Offer\n") ||
		m.Scan == nil || m.Scan.Verdict != "spam" || m.Reason != "Spam message (score 15.0)" {
		t.Fatalf("get %+v %+v", m, m.Scan)
	}

	// A restart's recovery keeps the quarantined content.
	if err := f.q.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := f.sp.Open("Q1"); err != nil {
		t.Fatalf("content swept at recovery: %v", err)
	} else {
		r.Close()
	}

	if err := f.s.Release(ctx, "Q1"); err != nil {
		t.Fatal(err)
	}
	if m, r := f.status(t, "Q1"); m != "queued" || r != "queued" {
		t.Fatalf("released status %s/%s", m, r)
	}
	if err := f.s.Release(ctx, "Q1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second release: %v", err)
	}
	if err := f.s.Delete(ctx, "Q2"); err != nil {
		t.Fatal(err)
	}
	if m, r := f.status(t, "Q2"); m != "rejected" || r != "rejected" {
		t.Fatalf("deleted status %s/%s", m, r)
	}
	if _, err := f.sp.Open("Q2"); err == nil {
		t.Fatal("deleted message still in the spool")
	}
	if _, err := f.s.Get(ctx, "Q2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}

	// Retention: Q3 expires after a day.
	if n, err := f.s.Purge(ctx); err != nil || n != 0 {
		t.Fatalf("early purge %d %v", n, err)
	}
	f.now = f.now.Add(25 * time.Hour)
	if n, err := f.s.Purge(ctx); err != nil || n != 1 {
		t.Fatalf("purge %d %v", n, err)
	}
	var reason string
	f.db.R.QueryRow(`SELECT reason FROM messages WHERE id = 'Q3'`).Scan(&reason)
	if reason != ExpiredReason {
		t.Fatalf("expired reason %q", reason)
	}
	if all, _ := f.s.List(ctx, "", 0); len(all) != 0 {
		t.Fatalf("after purge %+v", all)
	}
}

func TestExtractBounds(t *testing.T) {
	long := "From: a@x\r\nSubject: " + strings.Repeat("é", 20000) + "\r\n\r\n" + strings.Repeat("word ", 2000)
	h, p := Extract(strings.NewReader(long), int64(len(long)))
	if len(h) > maxHeader || len(p) > maxPreview || !strings.HasPrefix(p, "word word") {
		t.Fatalf("header %d preview %d %q", len(h), len(p), p[:20])
	}
	if !strings.HasSuffix(h, "é") && !strings.HasSuffix(h, "\n") {
		t.Fatalf("header cut inside a rune: %q", h[len(h)-4:])
	}
}
