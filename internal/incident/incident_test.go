package incident

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"easymail/internal/fielderr"
	"easymail/internal/sla"
	"easymail/internal/store"
)

// clock is a fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// mailbox records the notices queued.
type mailbox struct {
	db   *store.DB
	mu   sync.Mutex
	sent []sentMail
}

type sentMail struct{ from, to, subject, body string }

func (m *mailbox) SubmitWith(ctx context.Context, from, to, subject, body string, also func(tx *sql.Tx, id string) error) (string, error) {
	m.mu.Lock()
	id := "Q" + string(rune('A'+len(m.sent)))
	m.mu.Unlock()
	if err := m.db.Tx(ctx, func(tx *sql.Tx) error { return also(tx, id) }); err != nil {
		return "", err
	}
	m.mu.Lock()
	m.sent = append(m.sent, sentMail{from, to, subject, body})
	m.mu.Unlock()
	return id, nil
}

func (m *mailbox) to(addr string) []sentMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []sentMail
	for _, s := range m.sent {
		if s.to == addr {
			out = append(out, s)
		}
	}
	return out
}

type fixture struct {
	svc   *Service
	db    *store.DB
	clock *clock
	mail  *mailbox
}

func lux(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, sla.DefaultWindow().Location)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, clock: &clock{}, mail: &mailbox{db: db}}
	std := SLAType{Window: sla.DefaultWindow(), Response: map[string]time.Duration{"phone": 15 * time.Minute,
		"email": 30 * time.Minute, "portal": 15 * time.Minute, "api": 15 * time.Minute, "monitor": 15 * time.Minute}}
	allDay := sla.DefaultWindow()
	allDay.Days = []time.Weekday{0, 1, 2, 3, 4, 5, 6}
	allDay.Open, allDay.Close, allDay.Luxembourg = 0, 24*time.Hour, false
	gold := SLAType{Window: allDay, Response: map[string]time.Duration{"phone": 5 * time.Minute, "email": 10 * time.Minute,
		"portal": 5 * time.Minute, "api": 5 * time.Minute, "monitor": 5 * time.Minute},
		Resolution: map[string]time.Duration{"P1": 4 * time.Hour}}
	f.svc, err = New(Options{DB: db, SLATypes: map[string]SLAType{"standard": std, "gold": gold}, DefaultSLA: "standard",
		Mailer: f.mail, From: "postmaster@relay.test", Operator: "noc@ops.test", Service: "relay.test",
		Address: "incidents@relay.test", Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, sla string }{{"c1", ""}, {"c2", ""}, {"c3", "gold"}} {
		if _, err := db.R.ExecContext(context.Background(), `SELECT 1`); err != nil {
			t.Fatal(err)
		}
		err := db.Tx(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO customers (id, name, contact_email, technical_email, pool, status, sla_type, created_at, updated_at)
				VALUES (?, ?, ?, ?, 'default', 'active', ?, 0, 0)`, c.id, "Customer "+c.id, "admin@"+c.id+".test", "tech@"+c.id+".test", c.sla)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) open(t *testing.T, at string, in Create) *Incident {
	t.Helper()
	f.clock.Set(lux(t, at))
	inc, err := f.svc.Open(context.Background(), in, "tok-op")
	if err != nil {
		t.Fatal(err)
	}
	return inc
}

func (f *fixture) update(t *testing.T, at, id string, c Change) *Incident {
	t.Helper()
	f.clock.Set(lux(t, at))
	inc, err := f.svc.Update(context.Background(), id, c)
	if err != nil {
		t.Fatal(err)
	}
	return inc
}

func TestLifecycleSLAClockAndNotices(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Reported by e-mail on a Friday evening: the 30-minute target runs 10 minutes on Friday, 20 on Monday.
	inc := f.open(t, "2026-03-06 18:50", Create{CustomerID: "c1", Priority: "P2", Title: "Mail to example.org stuck",
		Channel: "email", Links: []Link{{Kind: "destination", Value: "example.org"}}})
	if inc.ID != "INC-1" || inc.Status != StatusNew || inc.Priority != "P2" || inc.SLAType != "standard" ||
		!inc.SLA.ResponseDueAt.Equal(lux(t, "2026-03-09 07:20")) || inc.SLA.ResponseTarget != 1800 || inc.SLA.Breached {
		t.Fatalf("opened: %+v", inc)
	}
	// Notices: the customer's technical contact and the operator.
	if n := f.mail.to("tech@c1.test"); len(n) != 1 || !strings.Contains(n[0].subject, "INC-1 opened") ||
		!strings.Contains(n[0].body, "Mon 9 Mar 2026 07:20 CET") || strings.Contains(n[0].body, "Concerns") {
		t.Fatalf("customer notice: %+v", n)
	}
	if n := f.mail.to("noc@ops.test"); len(n) != 1 || !strings.Contains(n[0].body, "Concerns destination example.org") {
		t.Fatalf("operator notice: %+v", n)
	}
	// Saturday: not breached, the clock does not run.
	f.clock.Set(lux(t, "2026-03-07 23:00"))
	if got, _ := f.svc.Get(ctx, inc.ID, ""); got.SLA.Breached {
		t.Fatalf("breached on a Saturday: %+v", got.SLA)
	}
	// Acknowledged Monday 07:25: 35 minutes of window time, a breach.
	inc = f.update(t, "2026-03-09 07:25", inc.ID, Change{Status: StatusAcknowledged, Actor: "tok-op"})
	if inc.SLA.RespondedAt == nil || *inc.SLA.ResponseTime != 35*60 || !inc.SLA.Breached {
		t.Fatalf("acknowledged: %+v", inc.SLA)
	}
	// Raised to P1: notified; internal comment hidden from the customer.
	inc = f.update(t, "2026-03-09 08:00", inc.ID, Change{Priority: "P1", Actor: "tok-op"})
	if _, err := f.svc.Comment(ctx, inc.ID, "tok-op", "MX of example.org unreachable from our side", true, false); err != nil {
		t.Fatal(err)
	}
	if n := f.mail.to("tech@c1.test"); len(n) != 2 || !strings.Contains(n[1].subject, "priority changed from P2 to P1") {
		t.Fatalf("priority notice: %+v", n)
	}
	// Illegal transitions are 409.
	f.clock.Set(lux(t, "2026-03-09 09:00"))
	var fe *fielderr.Error
	if _, err := f.svc.Update(ctx, inc.ID, Change{Status: StatusConfirmed}); !errors.As(err, &fe) || !fe.Conflict {
		t.Fatalf("confirm before resolution: %v", err)
	}
	inc = f.update(t, "2026-03-09 10:25", inc.ID, Change{Status: StatusResolved, Actor: "tok-op", Note: "Their MX is back."})
	if *inc.SLA.ResolveTime != (10+3*60+25)*60 || inc.ResolvedAt == nil {
		t.Fatalf("resolved: %+v", inc.SLA)
	}
	if n := f.mail.to("tech@c1.test"); len(n) != 3 || !strings.Contains(n[2].body, "Please confirm the resolution") {
		t.Fatalf("resolution notice: %+v", n)
	}
	inc = f.update(t, "2026-03-09 11:00", inc.ID, Change{Status: StatusConfirmed, Actor: "tok-c1", Customer: true})
	if inc.Status != StatusConfirmed || inc.ConfirmedAt == nil {
		t.Fatalf("confirmed: %+v", inc)
	}
	// The customer's view hides internal events and the notices; another customer gets 404.
	own, err := f.svc.Get(ctx, inc.ID, "c1")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range own.Events {
		if e.Visibility != VisibilityCustomer || strings.Contains(e.Body, "unreachable from our side") {
			t.Fatalf("customer sees %+v", e)
		}
	}
	full, _ := f.svc.Get(ctx, inc.ID, "")
	if len(full.Events) <= len(own.Events) {
		t.Fatalf("no internal event in %+v", full.Events)
	}
	if _, err := f.svc.Get(ctx, inc.ID, "c2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another customer's view: %v", err)
	}
	if l, _ := f.svc.List(ctx, Filter{Status: "all", Viewer: "c2"}); len(l) != 0 {
		t.Fatalf("another customer lists %+v", l)
	}
}

func TestSLATypeOfTheContract(t *testing.T) {
	f := newFixture(t)
	// Gold: every hour of every day counts, 5 minutes by phone, P1 resolved within 4 hours.
	inc := f.open(t, "2026-03-07 23:58", Create{CustomerID: "c3", Priority: "P1", Title: "Total outage", Channel: "phone"})
	if inc.SLAType != "gold" || !inc.SLA.ResponseDueAt.Equal(lux(t, "2026-03-08 00:03")) || inc.SLA.ResolveDueAt == nil ||
		!inc.SLA.ResolveDueAt.Equal(lux(t, "2026-03-08 03:58")) {
		t.Fatalf("gold: %+v", inc.SLA)
	}
	f.clock.Set(lux(t, "2026-03-08 04:00"))
	got, _ := f.svc.Get(context.Background(), inc.ID, "")
	if !got.SLA.Breached || !got.SLA.ResolveBreached {
		t.Fatalf("gold after 4 h: %+v", got.SLA)
	}
}

func TestMonitorOneIncidentPerCause(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := &fakeProbe{kinds: []string{"ip-listed"}}
	m := NewMonitor(f.svc, time.Minute, p)
	f.clock.Set(lux(t, "2026-03-02 10:00"))
	p.conds = []Condition{{Cause: "ip-listed:192.0.2.1", Priority: "P3", Title: "listed"}}
	for range 3 {
		if err := m.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	list, _ := f.svc.List(ctx, Filter{})
	if len(list) != 1 || list[0].Cause != "ip-listed:192.0.2.1" || list[0].Channel != "monitor" || list[0].Priority != "P3" {
		t.Fatalf("after three ticks: %+v", list)
	}
	// Worse: the priority changes on the same incident.
	p.conds[0].Priority = "P2"
	m.Tick(ctx)
	list, _ = f.svc.List(ctx, Filter{})
	if len(list) != 1 || list[0].Priority != "P2" {
		t.Fatalf("after the priority rose: %+v", list)
	}
	// A failing probe leaves it alone; a clear check resolves it.
	p.err = errors.New("dns down")
	m.Tick(ctx)
	if list, _ = f.svc.List(ctx, Filter{}); len(list) != 1 {
		t.Fatalf("resolved by a failing probe: %+v", list)
	}
	p.err, p.conds = nil, nil
	m.Tick(ctx)
	if list, _ = f.svc.List(ctx, Filter{}); len(list) != 0 {
		t.Fatalf("still open after the cause cleared: %+v", list)
	}
	all, _ := f.svc.List(ctx, Filter{Status: "all"})
	if len(all) != 1 || all[0].Status != StatusResolved || all[0].SLA.RespondedAt == nil {
		t.Fatalf("resolved incident: %+v", all)
	}
	// The cause comes back: a new incident.
	p.conds = []Condition{{Cause: "ip-listed:192.0.2.1", Priority: "P3", Title: "listed again"}}
	m.Tick(ctx)
	if list, _ = f.svc.List(ctx, Filter{}); len(list) != 1 || list[0].ID != "INC-2" {
		t.Fatalf("recurrence: %+v", list)
	}
	// Operator notices: opened, priority, resolved, opened.
	if n := f.mail.to("noc@ops.test"); len(n) != 4 {
		t.Fatalf("operator notices: %d", len(n))
	}
}

type fakeProbe struct {
	kinds []string
	conds []Condition
	err   error
}

func (p *fakeProbe) Kinds() []string                            { return p.kinds }
func (p *fakeProbe) Check(context.Context) ([]Condition, error) { return p.conds, p.err }

// TestReportAgainstAKnownHistory builds March 2026 for customer c1 and checks every figure of its report.
func TestReportAgainstAKnownHistory(t *testing.T) {
	f := newFixture(t)
	ack := Change{Status: StatusAcknowledged, Actor: "tok-op"}
	// February: not in the report.
	f.open(t, "2026-02-27 10:00", Create{CustomerID: "c1", Priority: "P3", Title: "February", Channel: "phone"})
	// 1. P2 by phone, answered in 10 minutes, resolved at 11:00.
	i1 := f.open(t, "2026-03-02 10:00", Create{CustomerID: "c1", Priority: "P2", Title: "Slow delivery", Channel: "phone"})
	f.update(t, "2026-03-02 10:10", i1.ID, ack)
	f.update(t, "2026-03-02 11:00", i1.ID, Change{Status: StatusResolved, Actor: "tok-op"})
	// 2. P3 by e-mail on Friday evening, answered Monday 07:25: 35 minutes, a breach.
	i2 := f.open(t, "2026-03-06 18:50", Create{CustomerID: "c1", Priority: "P3", Title: "Bounce", Channel: "email"})
	f.update(t, "2026-03-09 07:25", i2.ID, ack)
	// 3. P1 on the portal on a Saturday, answered Monday 07:10: 10 minutes.
	i3 := f.open(t, "2026-03-07 12:00", Create{CustomerID: "c1", Priority: "P1", Title: "Outage", Channel: "portal"})
	f.update(t, "2026-03-09 07:10", i3.ID, ack)
	// Another customer's incident: not in c1's report.
	f.open(t, "2026-03-10 10:00", Create{CustomerID: "c2", Priority: "P1", Title: "Other", Channel: "phone"})
	// 4. P4 by API on 31 March at 18:58 (summer time), never answered: due 1 April 07:13, a breach by noon.
	i4 := f.open(t, "2026-03-31 18:58", Create{CustomerID: "c1", Priority: "P4", Title: "Question", Channel: "api"})
	if !i4.SLA.ResponseDueAt.Equal(lux(t, "2026-04-01 07:13")) {
		t.Fatalf("due %s", i4.SLA.ResponseDueAt)
	}
	// 5. A pool incident linked to c1 (every customer of the pool): in the report.
	i5 := f.open(t, "2026-03-16 09:00", Create{Priority: "P1", Title: "Pool out", Channel: "monitor",
		Links: []Link{{Kind: "customer", Value: "c1"}, {Kind: "customer", Value: "c2"}}})
	f.update(t, "2026-03-16 09:05", i5.ID, ack)

	f.clock.Set(lux(t, "2026-04-01 12:00"))
	rep, err := f.svc.Report(context.Background(), "c1", "2026-03")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 5 || rep.Responded != 4 || rep.Breaches != 2 || rep.MaxResponse != 35*60 ||
		rep.MeanResponse != (10+35+10+5)*60/4 || rep.SLAType != "standard" {
		t.Fatalf("report: %+v", rep)
	}
	want := map[string]ReportCount{"P1": {Total: 2}, "P2": {Total: 1, Resolved: 1}, "P3": {Total: 1, Breaches: 1},
		"P4": {Total: 1, Breaches: 1}}
	for p, w := range want {
		if rep.ByPriority[p] != w {
			t.Errorf("%s: %+v, want %+v", p, rep.ByPriority[p], w)
		}
	}
	var ids []string
	for _, l := range rep.Incidents {
		ids = append(ids, l.ID)
	}
	if strings.Join(ids, ",") != strings.Join([]string{i1.ID, i2.ID, i3.ID, i5.ID, i4.ID}, ",") {
		t.Fatalf("incidents in order of opening: %v", ids)
	}
	if !rep.From.Equal(lux(t, "2026-03-01 00:00")) || !rep.Until.Equal(lux(t, "2026-04-01 00:00")) {
		t.Fatalf("month bounds %s %s", rep.From, rep.Until)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, rep); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != 6 {
		t.Fatalf("csv: %v %v", err, recs)
	}
	col := func(name string) int {
		for i, h := range recs[0] {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	if r := recs[2]; r[col("id")] != i2.ID || r[col("response_seconds")] != "2100" || r[col("breached")] != "true" ||
		r[col("response_due_at")] != "2026-03-09T06:20:00Z" {
		t.Fatalf("csv line of %s: %v", i2.ID, r)
	}
	if r := recs[5]; r[col("id")] != i4.ID || r[col("responded_at")] != "" || r[col("breached")] != "true" {
		t.Fatalf("csv line of %s: %v", i4.ID, r)
	}
	if _, err := f.svc.Report(context.Background(), "c1", "March"); err == nil {
		t.Fatal("a malformed month was accepted")
	}
}

func TestIntakeByEmail(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.clock.Set(lux(t, "2026-03-04 09:00"))
	msg := "From: Alice <alice@c1.test>\r\nTo: incidents@relay.test\r\nSubject: [P2] Our mail to example.org bounces\r\n" +
		"Message-ID: <m1@c1.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\nSince 08:00 every message to example.org =\r\nbounces with 550.\r\n--b--\r\n"
	inc, err := f.svc.Intake(ctx, "c1", "QID1", strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if inc.Title != "Our mail to example.org bounces" || inc.Priority != "P2" || inc.Channel != "email" || inc.Reporter != "alice@c1.test" ||
		inc.Description != "Since 08:00 every message to example.org bounces with 550." || inc.CustomerID != "c1" ||
		!inc.SLA.ResponseDueAt.Equal(lux(t, "2026-03-04 09:30")) || len(inc.Links) != 1 || inc.Links[0].Value != "QID1" {
		t.Fatalf("incident: %+v", inc)
	}
	ackMail := f.mail.to("alice@c1.test")
	if len(ackMail) != 1 || !strings.Contains(ackMail[0].subject, inc.ID+" received") || !strings.Contains(ackMail[0].body, "Wed 4 Mar 2026 09:30 CET") {
		t.Fatalf("acknowledgement: %+v", ackMail)
	}
	// A reply naming the incident is a comment on it.
	reply := "From: alice@c1.test\r\nSubject: Re: [easymail] [P2] " + inc.ID + " received\r\n\r\nStill bouncing.\r\n"
	again, err := f.svc.Intake(ctx, "c1", "QID2", strings.NewReader(reply))
	if err != nil || again.ID != inc.ID || again.Events[len(again.Events)-1].Body != "By e-mail from alice@c1.test:\n\nStill bouncing." {
		t.Fatalf("reply: %v %+v", err, again)
	}
	// Another customer naming it opens its own incident instead.
	other, err := f.svc.Intake(ctx, "c2", "QID3", strings.NewReader("From: bob@c2.test\r\nSubject: About "+inc.ID+"\r\n\r\nHi\r\n"))
	if err != nil || other.ID == inc.ID || other.CustomerID != "c2" {
		t.Fatalf("other customer: %v %+v", err, other)
	}
	for _, bad := range []string{
		"From: alice@c1.test\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nAway\r\n",
		"From: postmaster@relay.test\r\nSubject: x\r\n\r\nx\r\n",
	} {
		if _, err := f.svc.Intake(ctx, "c1", "Q", strings.NewReader(bad)); !errors.Is(err, ErrRefused) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if _, err := f.svc.Intake(ctx, "", "Q", strings.NewReader(msg)); !errors.Is(err, ErrRefused) {
		t.Fatalf("no customer: %v", err)
	}
}
