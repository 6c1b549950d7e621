package lifecycle

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/audit"
	"easymail/internal/authz"
	"easymail/internal/customer"
	"easymail/internal/msgid"
	"easymail/internal/store"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// sent is one notice the fake mailer queued.
type sent struct{ to, subject, body string }

// mailer queues nothing: it runs also in a transaction and records the notice when that commits, as the
// queue does. race makes another "node" record the same notice first.
type mailer struct {
	db   *store.DB
	mu   sync.Mutex
	sent []sent
	race bool
}

func (m *mailer) SubmitWith(ctx context.Context, from, to, subject, body string, also func(tx *sql.Tx, id string) error) (string, error) {
	id := msgid.New()
	if m.race {
		if err := m.db.Tx(ctx, func(tx *sql.Tx) error { return also(tx, "other-node") }); err != nil {
			return "", err
		}
	}
	if err := m.db.Tx(ctx, func(tx *sql.Tx) error { return also(tx, id) }); err != nil {
		return "", err
	}
	m.mu.Lock()
	m.sent = append(m.sent, sent{to, subject, body})
	m.mu.Unlock()
	return id, nil
}

func (m *mailer) count(kind string) map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for _, s := range m.sent {
		if strings.Contains(s.subject, kind) {
			out[s.to]++
		}
	}
	return out
}

type env struct {
	db      *store.DB
	clk     *clock
	svc     *customer.Service
	mail    *mailer
	changes int
	t0      time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	return &env{db: db, clk: clk, t0: t0, mail: &mailer{db: db},
		svc: &customer.Service{DB: db, Pools: []string{"default"}, AllowPrivate: true, Now: clk.Now}}
}

func (e *env) scheduler() *Scheduler {
	return New(Options{DB: e.db, Customers: e.svc, Mailer: e.mail, From: "postmaster@relay.example.net", Grace: 30 * 24 * time.Hour,
		Service: "relay.example.net", SPFInclude: "include:_spf.example.net", Now: e.clk.Now, OnChange: func() { e.changes++ }})
}

func (e *env) tick(t *testing.T, s *Scheduler) {
	t.Helper()
	if err := s.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (e *env) customer(t *testing.T, id string) *api.Customer {
	t.Helper()
	c, err := e.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const day = 24 * time.Hour

// TestTerminationSchedule runs a termination from scheduling to removal: each notice reaches each contact
// (the contact, the technical and the administrative address, each once) exactly once, across ticks and a
// restart; the customer is deactivated at the date and cleared after the grace period.
func TestTerminationSchedule(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c, err := e.svc.Create(ctx, api.CustomerCreate{Name: "Acme", ContactEmail: "it@acme.example",
		TechnicalEmail: "noc@acme.example", AdminEmail: "IT@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddDomain(ctx, c.ID, "acme.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddSourceIP(ctx, c.ID, "192.0.2.0/24"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddRelayHost(ctx, c.ID, "mta.acme.example"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := authz.Create(ctx, e.db, authz.RoleCustomer, c.ID, "acme"); err != nil {
		t.Fatal(err)
	}
	at := e.t0.Add(40 * day)
	if c, err = e.svc.ScheduleTermination(ctx, c.ID, at); err != nil || c.Status != api.StatusTerminating {
		t.Fatalf("schedule: %+v %v", c, err)
	}
	want := func(kind string, n int) {
		t.Helper()
		got := e.mail.count(kind)
		if len(got) != 2 || got["it@acme.example"] != n || got["noc@acme.example"] != n {
			t.Fatalf("%q notices: %v, want %d to each of the two contacts", kind, got, n)
		}
	}
	s := e.scheduler()
	e.tick(t, s)
	if len(e.mail.sent) != 0 {
		t.Fatalf("notices 40 days ahead: %+v", e.mail.sent)
	}
	e.clk.Set(at.Add(-30 * day))
	e.tick(t, s)
	e.tick(t, s)
	want("ends on", 1)
	if b := e.mail.sent[0].body; !strings.Contains(b, "in 30 days") || !strings.Contains(b, "include:_spf.example.net") {
		t.Fatalf("notice text: %s", b)
	}
	// A restart: a new scheduler over the same database sends nothing again.
	s = e.scheduler()
	e.clk.Add(time.Hour)
	e.tick(t, s)
	want("ends on", 1)
	e.clk.Set(at.Add(-7*day + time.Minute))
	e.tick(t, s)
	e.tick(t, e.scheduler())
	want("ends on", 2)
	if st := e.customer(t, c.ID).Status; st != api.StatusTerminating {
		t.Fatalf("status before the date: %s", st)
	}
	e.clk.Set(at)
	e.tick(t, s)
	e.tick(t, e.scheduler())
	want("has ended", 1)
	got := e.customer(t, c.ID)
	if got.Status != api.StatusDeactivated || got.DeactivatedAt == nil || e.changes != 1 || len(got.Domains) != 1 {
		t.Fatalf("at the date: %+v, %d changes", got, e.changes)
	}
	// Cancelling is too late now.
	if _, err := e.svc.CancelTermination(ctx, c.ID); err == nil {
		t.Fatal("cancelled after the date")
	}
	e.clk.Set(at.Add(30*day - time.Minute))
	e.tick(t, s)
	if got := e.customer(t, c.ID); got.Status != api.StatusDeactivated || len(got.SourceIPs) != 1 {
		t.Fatalf("removed before the grace period ended: %+v", got)
	}
	e.clk.Set(at.Add(30 * day))
	e.tick(t, s)
	e.tick(t, e.scheduler())
	got = e.customer(t, c.ID)
	if got.Status != api.StatusRemoved || got.RemovedAt == nil || len(got.Domains)+len(got.RelayHosts)+len(got.SourceIPs) != 0 {
		t.Fatalf("after the grace period: %+v", got)
	}
	toks, _ := authz.List(ctx, e.db)
	for _, tk := range toks {
		if tk.CustomerID == c.ID && tk.RevokedAt == nil {
			t.Fatalf("token %s not revoked", tk.ID)
		}
	}
	if len(e.mail.sent) != 6 || e.changes != 2 {
		t.Fatalf("%d notices, %d changes in all", len(e.mail.sent), e.changes)
	}
	entries, err := audit.List(ctx, e.db, audit.Query{Customer: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range entries {
		if a.ActorRole != audit.RoleSystem || len(a.Before) == 0 || len(a.After) == 0 {
			t.Errorf("audit entry %+v", a)
		}
		actions = append(actions, a.Action)
	}
	if !slices.Equal(actions, []string{"lifecycle remove", "lifecycle deactivate"}) {
		t.Fatalf("audit actions %v", actions)
	}
}

// TestCancelAndShortNotice: a termination 5 days ahead gets the 7-day notice only, once; cancelled before
// the date, the customer keeps its status and everything registered, and nothing more happens.
func TestCancelAndShortNotice(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c, err := e.svc.Create(ctx, api.CustomerCreate{Name: "Bolt", ContactEmail: "it@bolt.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddDomain(ctx, c.ID, "bolt.example"); err != nil {
		t.Fatal(err)
	}
	st := api.StatusActive
	if _, err := e.svc.Update(ctx, c.ID, api.CustomerUpdate{Status: &st}); err != nil {
		t.Fatal(err)
	}
	at := e.t0.Add(5 * day)
	if _, err := e.svc.ScheduleTermination(ctx, c.ID, at); err != nil {
		t.Fatal(err)
	}
	// PATCH cannot change the status while terminating.
	if _, err := e.svc.Update(ctx, c.ID, api.CustomerUpdate{Status: &st}); err == nil {
		t.Fatal("status changed while terminating")
	}
	s := e.scheduler()
	e.tick(t, s)
	e.tick(t, s)
	if got := e.mail.count("ends on"); len(got) != 1 || got["it@bolt.example"] != 1 || !strings.Contains(e.mail.sent[0].body, "in 5 days") {
		t.Fatalf("notices %+v", e.mail.sent)
	}
	got, err := e.svc.CancelTermination(ctx, c.ID)
	if err != nil || got.Status != api.StatusActive || got.DeactivateAt != nil || len(got.Domains) != 1 {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	if _, err := e.svc.CancelTermination(ctx, c.ID); err == nil {
		t.Fatal("cancelled twice")
	}
	e.clk.Set(at.Add(40 * day))
	e.tick(t, s)
	if got := e.customer(t, c.ID); got.Status != api.StatusActive || len(e.mail.sent) != 1 {
		t.Fatalf("after a cancelled date: %+v, %d notices", got, len(e.mail.sent))
	}
	// Past dates are refused.
	if _, err := e.svc.ScheduleTermination(ctx, c.ID, e.clk.Now().Add(-time.Second)); err == nil {
		t.Fatal("a past date was accepted")
	}
}

// TestNoticeRace: when another node records the same notice first, the transaction that would queue it
// fails on the notice's key and nothing is queued.
func TestNoticeRace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c, err := e.svc.Create(ctx, api.CustomerCreate{Name: "Cobalt", ContactEmail: "it@cobalt.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ScheduleTermination(ctx, c.ID, e.t0.Add(2*day)); err != nil {
		t.Fatal(err)
	}
	e.mail.race = true
	e.tick(t, e.scheduler())
	if len(e.mail.sent) != 0 {
		t.Fatalf("queued despite the other node: %+v", e.mail.sent)
	}
	var n int
	if err := e.db.R.QueryRow(`SELECT COUNT(*) FROM lifecycle_notices WHERE customer_id = ? AND queue_id = 'other-node'`, c.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("notice rows %d %v", n, err)
	}
}
