package msglog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"easymail/internal/fielderr"
	"easymail/internal/queue"
	"easymail/internal/store"
)

var t0 = time.Date(2030, 3, 1, 10, 0, 0, 0, time.UTC)

type msg struct {
	id, customer, sender, messageID, status string
	held                                    bool
	at                                      time.Time
	rcpts                                   []rcpt
}

type rcpt struct {
	addr, status string
	next         time.Time
}

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func insert(t *testing.T, db *store.DB, msgs ...msg) {
	t.Helper()
	err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		for _, m := range msgs {
			held := 0
			if m.held {
				held = 1
			}
			if _, err := tx.Exec(`INSERT INTO messages (id, node_id, customer_id, sender, message_id, subject, size, status,
				held, received_at, expires_at) VALUES (?, 'n1', ?, ?, ?, 'subj', 100, ?, ?, ?, ?)`,
				m.id, m.customer, m.sender, m.messageID, m.status, held, store.Millis(m.at), store.Millis(m.at.Add(120*time.Hour))); err != nil {
				return err
			}
			for i, r := range m.rcpts {
				dom := r.addr[len(r.addr)-len("dest.example"):]
				if _, err := tx.Exec(`INSERT INTO recipients (message_id, idx, address, domain, status, next_attempt_at,
					updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`, m.id, i, r.addr, dom, r.status, store.Millis(r.next), store.Millis(m.at)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func ids(list []MessageSummary) []string {
	out := []string{}
	for _, m := range list {
		out = append(out, m.ID)
	}
	return out
}

func sameIDs(t *testing.T, what string, got []MessageSummary, want ...string) {
	t.Helper()
	g := ids(got)
	if len(g) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("%s: got %v, want %v", what, g, want)
		}
	}
}

func fixture(t *testing.T) *store.DB {
	db := openDB(t)
	insert(t, db,
		msg{id: "M1", customer: "A", sender: "alice@a.example", messageID: "<one@a.example>", status: queue.StatusDelivered, at: t0,
			rcpts: []rcpt{{"bob@dest.example", "delivered", t0}}},
		msg{id: "M2", customer: "A", sender: "alice@a.example", messageID: "<two@a.example>", status: queue.StatusDeferred, at: t0.Add(time.Minute),
			rcpts: []rcpt{{"carol@dest.example", "deferred", t0.Add(time.Hour)}, {"dave@dest.example", "delivered", t0}}},
		msg{id: "M3", customer: "B", sender: "", messageID: "three@b.example", status: queue.StatusQueued, held: true, at: t0.Add(2 * time.Minute),
			rcpts: []rcpt{{"erin@dest.example", "queued", t0.Add(2 * time.Minute)}}},
		msg{id: "M4", customer: "B", sender: "bert@b.example", status: queue.StatusBounced, at: t0.Add(3 * time.Minute),
			rcpts: []rcpt{{"frank@dest.example", "bounced", t0}}},
		msg{id: "M5", customer: "B", sender: "bert@b.example", status: queue.StatusQueued, at: t0.Add(3 * time.Minute),
			rcpts: []rcpt{{"gina@dest.example", "queued", t0.Add(5 * time.Minute)}}},
	)
	return db
}

func TestSearch(t *testing.T) {
	ctx := context.Background()
	db := fixture(t)
	search := func(f Filter) []MessageSummary {
		t.Helper()
		l, err := Search(ctx, db, f)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	sameIDs(t, "all", search(Filter{}), "M5", "M4", "M3", "M2", "M1")
	sameIDs(t, "customer", search(Filter{Customer: "A"}), "M2", "M1")
	sameIDs(t, "sender", search(Filter{Sender: "<bert@b.example>"}), "M5", "M4")
	sameIDs(t, "sender domain", search(Filter{Sender: "A.example"}), "M2", "M1")
	sameIDs(t, "recipient", search(Filter{Recipient: "dave@dest.example"}), "M2")
	sameIDs(t, "recipient domain", search(Filter{Recipient: "dest.example", Customer: "B"}), "M5", "M4", "M3")
	sameIDs(t, "message-id bare", search(Filter{MessageID: "two@a.example"}), "M2")
	sameIDs(t, "message-id brackets", search(Filter{MessageID: "<three@b.example>"}), "M3")
	sameIDs(t, "held", search(Filter{Status: queue.StatusHeld}), "M3")
	sameIDs(t, "queued excludes held", search(Filter{Status: queue.StatusQueued}), "M5")
	sameIDs(t, "since/until", search(Filter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}), "M3", "M2")
	sameIDs(t, "limit", search(Filter{Limit: 2}), "M5", "M4")
	sameIDs(t, "before M4 (same time)", search(Filter{Before: "M5", Limit: 2}), "M4", "M3")
	sameIDs(t, "before M3", search(Filter{Before: "M3"}), "M2", "M1")
	sameIDs(t, "unknown cursor", search(Filter{Before: "nope"}))
	sameIDs(t, "nothing", search(Filter{Sender: "zed@z.example"}))

	l := search(Filter{MessageID: "two@a.example"})
	m := l[0]
	if m.Status != queue.StatusDeferred || m.Pending != 1 || m.NextAttemptAt == nil || !m.NextAttemptAt.Equal(t0.Add(time.Hour)) ||
		len(m.Recipients) != 2 || m.Recipients[0] != "carol@dest.example" || !m.ReceivedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("summary %+v", m)
	}
	if h := search(Filter{Status: queue.StatusHeld})[0]; h.Status != queue.StatusHeld {
		t.Fatalf("held message shows %q", h.Status)
	}

	_, err := Search(ctx, db, Filter{Status: "vanished"})
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "status" {
		t.Fatalf("bad status: %v", err)
	}
}

func TestSearchLimitBounds(t *testing.T) {
	db := openDB(t)
	var msgs []msg
	for i := 0; i < MaxLimit+5; i++ {
		msgs = append(msgs, msg{id: fmt.Sprintf("M%04d", i), customer: "A", sender: "x@a.example",
			status: queue.StatusDelivered, at: t0.Add(time.Duration(i) * time.Second)})
	}
	insert(t, db, msgs...)
	l, err := Search(context.Background(), db, Filter{})
	if err != nil || len(l) != DefaultLimit {
		t.Fatalf("default limit: %d %v", len(l), err)
	}
	l, err = Search(context.Background(), db, Filter{Limit: 5000})
	if err != nil || len(l) != MaxLimit {
		t.Fatalf("max limit: %d %v", len(l), err)
	}
}

func TestQueue(t *testing.T) {
	ctx := context.Background()
	db := fixture(t)
	l, err := Queue(ctx, db, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "queue", l, "M2", "M3", "M5")
	if l[1].Status != queue.StatusHeld || l[0].Pending != 1 || l[2].NextAttemptAt == nil {
		t.Fatalf("queue %+v", l)
	}
	l, err = Queue(ctx, db, "B", 1)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "queue B", l, "M3")
}

func TestTrace(t *testing.T) {
	ctx := context.Background()
	db := fixture(t)
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		for _, a := range []struct {
			idx, n  int
			at      time.Time
			outcome string
			code    int
		}{
			{0, 2, t0.Add(30 * time.Minute), "deferred", 451},
			{0, 1, t0.Add(2 * time.Minute), "deferred", 421},
			{1, 1, t0.Add(2 * time.Minute), "delivered", 250},
		} {
			if _, err := tx.Exec(`INSERT INTO attempts (message_id, rcpt_idx, attempt, started_at, duration_ms, outcome,
				remote_mx, remote_ip, outbound_ip, code, enhanced, reply) VALUES ('M2', ?, ?, ?, 1500, ?, 'mx.dest.example',
				'127.0.0.9', '127.0.0.1', ?, '4.7.0', 'try later')`, a.idx, a.n, store.Millis(a.at), a.outcome, a.code); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Trace(ctx, db, "M2")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Message.ID != "M2" || tr.Message.CustomerID != "A" || tr.Message.Status != queue.StatusDeferred || tr.Message.Held ||
		!tr.Message.ExpiresAt.Equal(t0.Add(time.Minute+120*time.Hour)) {
		t.Fatalf("message %+v", tr.Message)
	}
	if len(tr.Recipients) != 2 || tr.Recipients[0].Address != "carol@dest.example" || tr.Recipients[1].Status != "delivered" {
		t.Fatalf("recipients %+v", tr.Recipients)
	}
	if len(tr.Attempts) != 3 {
		t.Fatalf("attempts %+v", tr.Attempts)
	}
	a := tr.Attempts
	if a[0].Code != 421 || a[1].Code != 250 || a[1].Recipient != "dave@dest.example" || a[2].Attempt != 2 ||
		a[2].Recipient != "carol@dest.example" || a[2].DurationMS != 1500 || a[2].RemoteMX != "mx.dest.example" {
		t.Fatalf("attempts out of order or wrong: %+v", a)
	}
	held, err := Trace(ctx, db, "M3")
	if err != nil || held.Message.Status != queue.StatusHeld || !held.Message.Held || len(held.Attempts) != 0 || held.Attempts == nil {
		t.Fatalf("held trace %+v %v", held, err)
	}
	if _, err := Trace(ctx, db, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}
