package abuse

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"easymail/internal/config"
	"easymail/internal/ratelimit"
	"easymail/internal/store"
)

type fakeHolder struct {
	mu  sync.Mutex
	ids []string
}

func (h *fakeHolder) Hold(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ids = append(h.ids, id)
	return nil
}

type fixture struct {
	db  *store.DB
	now time.Time
	seq int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &fixture{db: db, now: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
}

func (f *fixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if err := f.db.Tx(context.Background(), func(tx *sql.Tx) error { _, err := tx.Exec(q, args...); return err }); err != nil {
		t.Fatal(err)
	}
}

// customer adds a customer created age ago.
func (f *fixture) customer(t *testing.T, id string, age time.Duration) {
	t.Helper()
	at := store.Millis(f.now.Add(-age))
	f.exec(t, `INSERT INTO customers (id, name, contact_email, pool, status, created_at, updated_at) VALUES (?, ?, 'a@b.test', 'default', 'active', ?, ?)`,
		id, id, at, at)
}

// messages adds n messages of the customer received evenly over [from, to) before now, with the status.
func (f *fixture) messages(t *testing.T, customer string, n int, from, to time.Duration, status string) {
	t.Helper()
	err := f.db.Tx(context.Background(), func(tx *sql.Tx) error {
		for i := range n {
			f.seq++
			at := f.now.Add(-from + time.Duration(i)*(from-to)/time.Duration(max(n, 1)))
			if _, err := tx.Exec(`INSERT INTO messages (id, node_id, customer_id, sender, status, received_at, expires_at)
				VALUES (?, 'n1', ?, 'a@acme.test', ?, ?, ?)`, fmt.Sprintf("M%06d", f.seq), customer, status,
				store.Millis(at), store.Millis(at.Add(time.Hour))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) policies(t *testing.T, h Holder) *Policies {
	c := config.DefaultCompromise()
	c.Floor = 50
	c.RefusedMin = 20
	p := New(Options{DB: f.db, Compromise: c, NodeID: "n1", Queue: h, Now: func() time.Time { return f.now },
		Defaults: ratelimit.CustomerLimits{MessagesPerMinute: 100}})
	if err := p.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVolumeSpikeOverBaselineIsHeld(t *testing.T) {
	f := newFixture(t)
	week := 7 * 24 * time.Hour
	f.customer(t, "quiet", 30*24*time.Hour)  // 1 message/h: threshold max(50, 10) = 50
	f.customer(t, "busy", 30*24*time.Hour)   // 20 messages/h: threshold 200
	f.customer(t, "normal", 30*24*time.Hour) // below its threshold
	f.messages(t, "quiet", 168, week, 10*time.Minute, "delivered")
	f.messages(t, "busy", 3360, week, 10*time.Minute, "delivered")
	f.messages(t, "normal", 168, week, 10*time.Minute, "delivered")
	f.messages(t, "quiet", 60, 9*time.Minute, 0, "queued")
	f.messages(t, "busy", 150, 9*time.Minute, 0, "queued")
	f.messages(t, "normal", 40, 9*time.Minute, 0, "queued")
	h := &fakeHolder{}
	p := f.policies(t, h)
	if err := p.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !p.Policy("quiet").Held || p.Policy("busy").Held || p.Policy("normal").Held {
		t.Fatalf("held: quiet %v busy %v normal %v; want only quiet", p.Policy("quiet").Held, p.Policy("busy").Held, p.Policy("normal").Held)
	}
	if len(h.ids) != 60 {
		t.Fatalf("%d queued messages held, want the 60 of the spike", len(h.ids))
	}
	var reason string
	f.db.R.QueryRow(`SELECT held_reason FROM customers WHERE id = 'quiet'`).Scan(&reason)
	if reason == "" {
		t.Fatal("no reason recorded")
	}
	// The state survives a reload, and is shared through the database.
	if err := p.Reload(context.Background()); err != nil || !p.Policy("quiet").Held {
		t.Fatalf("after reload: held %v (%v)", p.Policy("quiet").Held, err)
	}
}

func TestNewCustomerUsesTheFloor(t *testing.T) {
	f := newFixture(t)
	f.customer(t, "new", 5*time.Minute)
	f.messages(t, "new", 45, 4*time.Minute, 0, "queued")
	p := f.policies(t, nil)
	p.Check(context.Background())
	if p.Policy("new").Held {
		t.Fatal("a new customer under the floor was held")
	}
	f.messages(t, "new", 10, 3*time.Minute, 0, "queued")
	p.Check(context.Background())
	if !p.Policy("new").Held {
		t.Fatal("a new customer over the floor was not held")
	}
}

func TestRefusedShareIsHeld(t *testing.T) {
	f := newFixture(t)
	f.customer(t, "spammy", 30*24*time.Hour)
	f.customer(t, "fine", 30*24*time.Hour)
	f.messages(t, "spammy", 15, 9*time.Minute, 0, "queued")
	f.messages(t, "spammy", 15, 9*time.Minute, 0, "rejected")
	f.messages(t, "fine", 25, 9*time.Minute, 0, "queued")
	f.messages(t, "fine", 5, 9*time.Minute, 0, "rejected")
	p := f.policies(t, nil)
	if err := p.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !p.Policy("spammy").Held || p.Policy("fine").Held {
		t.Fatalf("held: spammy %v fine %v", p.Policy("spammy").Held, p.Policy("fine").Held)
	}
}

func TestReleasedCustomerIsNotHeldAgainForTheSameSpike(t *testing.T) {
	f := newFixture(t)
	f.customer(t, "c", 5*time.Minute)
	f.messages(t, "c", 80, 4*time.Minute, 0, "queued")
	p := f.policies(t, nil)
	p.Check(context.Background())
	if !p.Policy("c").Held {
		t.Fatal("not held")
	}
	// What the operator's release does (customer.Service.LiftHold).
	f.exec(t, `UPDATE customers SET held = 0, released_at = ? WHERE id = 'c'`, store.Millis(f.now))
	p.Reload(context.Background())
	f.now = f.now.Add(time.Minute)
	p.Check(context.Background())
	if p.Policy("c").Held {
		t.Fatal("held again for the spike the operator released")
	}
	f.messages(t, "c", 60, 50*time.Second, 0, "queued")
	p.Check(context.Background())
	if !p.Policy("c").Held {
		t.Fatal("a new spike after the release is not held")
	}
}

func TestPolicyLimitsFromDatabaseAndDefaults(t *testing.T) {
	f := newFixture(t)
	f.customer(t, "own", time.Hour)
	f.customer(t, "dflt", time.Hour)
	f.exec(t, `UPDATE customers SET rl_messages_per_minute = 0, rl_recipients_per_hour = 500, rl_burst = 7 WHERE id = 'own'`)
	p := f.policies(t, nil)
	own := p.Policy("own").Limits
	if own.MessagesPerMinute != 0 || own.RecipientsPerHour != 500 || own.Burst != 7 {
		t.Fatalf("own limits %+v", own)
	}
	if d := p.Policy("dflt").Limits; d.MessagesPerMinute != 100 {
		t.Fatalf("default limits %+v", d)
	}
	if d := p.Policy("unknown").Limits; d.MessagesPerMinute != 100 {
		t.Fatalf("unknown customer limits %+v", d)
	}
	if ok, err := p.Hold(context.Background(), "own", "operator", "test"); !ok || err != nil || !p.Policy("own").Held {
		t.Fatalf("Hold: %v %v", ok, err)
	}
	if ok, _ := p.Hold(context.Background(), "own", "operator", "again"); ok {
		t.Fatal("a second hold reported a change")
	}
}
