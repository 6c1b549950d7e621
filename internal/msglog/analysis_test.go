package msglog

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/fielderr"
	"easymail/internal/queue"
	"easymail/internal/store"
)

// genMsg and genRcpt are the rows of a generated log.
type genMsg struct {
	id, customer, sender, headerFrom, messageID, status, verdict string
	held                                                         bool
	received                                                     time.Time
	rcpts                                                        []genRcpt
}

type genRcpt struct {
	address, domain, status, mx, ip, class string
	updated                                time.Time
	deferrals                              int
}

// generateLog writes n pseudo-random messages: most recipients at one common domain (so that a search on
// it scans), a few at rare ones (so that a search on them looks up), addresses in mixed case, ties in the
// reception time.
func generateLog(t *testing.T, db *store.DB, n int) []genMsg {
	t.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func(s ...string) string { return s[rnd.IntN(len(s))] }
	classes := []string{"bad-mailbox", "mailbox-full", "policy", "spam", "reputation"}
	var msgs []genMsg
	for i := range n {
		cust := pick("C1", "C2", "C3")
		m := genMsg{
			id:        fmt.Sprintf("Q%05d", i),
			customer:  cust,
			sender:    pick("alice", "Bob", "carol") + "@" + strings.ToLower(cust) + ".example",
			messageID: fmt.Sprintf("<m%d@%s.example>", i, strings.ToLower(cust)),
			verdict:   pick("", "", "", "clean", "spam"),
			received:  t0.Add(time.Duration(i/2) * time.Second), // pairs share a reception time
		}
		if rnd.IntN(20) == 0 {
			m.sender = ""
		}
		m.headerFrom = "Someone <" + m.sender + ">"
		status := pick("delivered", "delivered", "delivered", "bounced", "deferred", "queued", "rejected")
		m.status = status
		if status == "queued" && rnd.IntN(3) == 0 {
			m.held = true
		}
		nr := 1 + rnd.IntN(3)
		for j := range nr {
			dom := "common.example"
			switch rnd.IntN(10) {
			case 0:
				dom = "rare.example"
			case 1:
				dom = fmt.Sprintf("d%d.example", rnd.IntN(50))
			}
			local := fmt.Sprintf("user%d", rnd.IntN(300))
			if dom == "rare.example" && rnd.IntN(2) == 0 {
				local = "Mixed.Case"
			}
			r := genRcpt{address: local + "@" + dom, domain: dom, status: status, updated: m.received.Add(time.Duration(j+1) * time.Minute)}
			if status == "bounced" || status == "deferred" {
				r.class = pick(classes...)
			}
			if status != "rejected" && status != "queued" {
				r.mx = "mx." + dom
				r.ip = pick("127.0.0.1", "127.0.0.2")
				if dom == "common.example" && rnd.IntN(50) == 0 {
					r.mx = "backup-mx.common.example"
				}
			}
			if status == "deferred" || rnd.IntN(5) == 0 && status != "rejected" && status != "queued" {
				r.deferrals = 1 + rnd.IntN(2)
			}
			m.rcpts = append(m.rcpts, r)
		}
		msgs = append(msgs, m)
	}
	err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		for _, m := range msgs {
			var done any
			if m.status != "queued" && m.status != "deferred" {
				done = store.Millis(m.received.Add(time.Hour))
			}
			if _, err := tx.Exec(`INSERT INTO messages (id, node_id, customer_id, sender, header_from, message_id, subject, size,
				status, held, verdict, received_at, expires_at, done_at, from_domain) VALUES (?, 'n1', ?, ?, ?, ?, ?, 1000, ?, ?, ?, ?, ?, ?, ?)`,
				m.id, m.customer, m.sender, m.headerFrom, m.messageID, "=cmd|' /C calc'!A0", m.status, m.held, m.verdict,
				store.Millis(m.received), store.Millis(m.received.Add(120*time.Hour)), done, strings.ToLower(m.customer)+".example"); err != nil {
				return err
			}
			for j, r := range m.rcpts {
				if _, err := tx.Exec(`INSERT INTO recipients (message_id, idx, address, domain, status, attempts, next_attempt_at,
					last_code, remote_mx, outbound_ip, bounce_class, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					m.id, j, r.address, r.domain, r.status, r.deferrals+1, store.Millis(m.received), 250, r.mx, r.ip, r.class,
					store.Millis(r.updated)); err != nil {
					return err
				}
				for k := range r.deferrals {
					if _, err := tx.Exec(`INSERT INTO attempts (message_id, rcpt_idx, attempt, started_at, outcome, code, bounce_class)
						VALUES (?, ?, ?, ?, 'deferred', 451, 'timeout')`, m.id, j, k+1, store.Millis(m.received)); err != nil {
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
	return msgs
}

// expect applies f to the generated log by brute force: the ids, newest first.
func expect(msgs []genMsg, f Filter) []string {
	lower := strings.ToLower
	var out []genMsg
	for _, m := range msgs {
		ok := (f.Customer == "" || m.customer == f.Customer) &&
			(f.Sender == "" || (strings.Contains(f.Sender, "@") && lower(m.sender) == lower(f.Sender)) ||
				(!strings.Contains(f.Sender, "@") && strings.HasSuffix(lower(m.sender), "@"+lower(f.Sender)))) &&
			(f.MessageID == "" || strings.Trim(m.messageID, "<>") == strings.Trim(f.MessageID, "<>")) &&
			(f.QueueID == "" || m.id == f.QueueID) &&
			(f.Verdict == "" || m.verdict == f.Verdict) &&
			(f.Since.IsZero() || !m.received.Before(f.Since)) && (f.Until.IsZero() || m.received.Before(f.Until))
		switch f.Status {
		case "":
		case queue.StatusHeld:
			ok = ok && m.held
		default:
			ok = ok && !m.held && m.status == f.Status
		}
		rc := f.Recipient != "" || f.Domain != "" || f.OutboundIP != "" || f.RemoteMX != "" || f.BounceClass != ""
		if ok && rc {
			any := false
			for _, r := range m.rcpts {
				any = any || ((f.Recipient == "" || (strings.Contains(f.Recipient, "@") && lower(r.address) == lower(f.Recipient)) ||
					(!strings.Contains(f.Recipient, "@") && r.domain == lower(f.Recipient))) &&
					(f.Domain == "" || r.domain == f.Domain) && (f.OutboundIP == "" || r.ip == f.OutboundIP) &&
					(f.RemoteMX == "" || r.mx == f.RemoteMX) && (f.BounceClass == "" || r.class == f.BounceClass))
			}
			ok = any
		}
		if ok {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].received.Equal(out[j].received) {
			return out[i].received.After(out[j].received)
		}
		return out[i].id > out[j].id
	})
	ids := []string{}
	for _, m := range out {
		ids = append(ids, m.id)
	}
	return ids
}

// searchAll pages through Search with the given page size and returns every id.
func searchAll(t *testing.T, db *store.DB, f Filter, page int) []string {
	t.Helper()
	f.Limit = page
	ids := []string{}
	for {
		l, err := Search(context.Background(), db, f)
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		for _, m := range l {
			ids = append(ids, m.ID)
		}
		if len(l) < page {
			return ids
		}
		f.Before = l[len(l)-1].ID
	}
}

func TestSearchGeneratedLog(t *testing.T) {
	db := openDB(t)
	msgs := generateLog(t, db, 2000)
	var common int
	db.R.QueryRow(`SELECT COUNT(*) FROM recipients WHERE domain = 'common.example'`).Scan(&common)
	if common < probeLimit {
		t.Fatalf("the common domain has %d recipients; the scan plan needs more than %d", common, probeLimit)
	}
	mid := t0.Add(500 * time.Second)
	for _, f := range []Filter{
		{},
		{Customer: "C2"},
		{Sender: "bob@c1.example"},
		{Sender: "BOB@C1.EXAMPLE"},
		{Sender: "c3.example"},
		{Recipient: "mixed.case@rare.example"},
		{Recipient: "MIXED.CASE@RARE.EXAMPLE", Customer: "C1"},
		{Recipient: "user7@common.example"},
		{Recipient: "rare.example"},
		{Domain: "common.example"},
		{Domain: "common.example", Status: queue.StatusBounced, BounceClass: "spam"},
		{Domain: "d7.example", OutboundIP: "127.0.0.2"},
		{OutboundIP: "127.0.0.1", Customer: "C3"},
		{RemoteMX: "backup-mx.common.example"},
		{RemoteMX: "mx.rare.example", Since: mid},
		{BounceClass: "bad-mailbox"},
		{MessageID: strings.Trim(msgs[77].messageID, "<>")},
		{MessageID: msgs[78].messageID},
		{QueueID: "Q00042"},
		{Verdict: "spam", Customer: "C1"},
		{Status: queue.StatusHeld},
		{Status: queue.StatusRejected, Domain: "rare.example"},
		{Since: mid, Until: mid.Add(100 * time.Second)},
		{Until: t0.Add(10 * time.Second), Domain: "common.example"},
	} {
		want := expect(msgs, f)
		pages := []int{1000}
		if f.Domain != "" || f.Recipient != "" || f.Customer == "C2" {
			// Paging through both plans (scan and lookup) and ties of reception time.
			pages = append(pages, 60)
		}
		for _, page := range pages {
			got := searchAll(t, db, f, page)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("filter %+v, pages of %d: got %d messages, want %d\n got  %.200v\n want %.200v", f, page, len(got), len(want), got, want)
			}
		}
		if len(want) == 0 && f.QueueID == "" {
			t.Errorf("filter %+v matches nothing in the generated log; the test proves little", f)
		}
	}

	for _, bad := range []struct {
		f     Filter
		field string
	}{
		{Filter{OutboundIP: "not-an-ip"}, "outbound_ip"},
		{Filter{BounceClass: "nope"}, "bounce_class"},
		{Filter{Status: "vanished"}, "status"},
		{Filter{Since: mid, Until: mid}, "until"},
	} {
		_, err := Search(context.Background(), db, bad.f)
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != bad.field {
			t.Errorf("%+v: %v, want an error on %s", bad.f, err, bad.field)
		}
	}
}

func TestExportCSV(t *testing.T) {
	db := openDB(t)
	msgs := generateLog(t, db, 1200)
	var buf bytes.Buffer
	f := Filter{Domain: "rare.example"}
	n, err := ExportCSV(context.Background(), db, f, &buf)
	if err != nil {
		t.Fatal(err)
	}
	want := expect(msgs, f)
	if n != len(want) {
		t.Fatalf("exported %d messages, want %d", n, len(want))
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("header %v", recs[0])
	}
	// One row per matching recipient, in message order.
	byID := map[string]genMsg{}
	for _, m := range msgs {
		byID[m.id] = m
	}
	var wantRows int
	for _, id := range want {
		for _, r := range byID[id].rcpts {
			if r.domain == "rare.example" {
				wantRows++
			}
		}
	}
	if len(recs)-1 != wantRows {
		t.Fatalf("%d rows, want %d", len(recs)-1, wantRows)
	}
	col := map[string]int{}
	for i, c := range CSVHeader {
		col[c] = i
	}
	if recs[1][col["queue_id"]] != want[0] {
		t.Fatalf("first row %v, want message %s", recs[1], want[0])
	}
	for _, r := range recs[1:] {
		if !strings.HasSuffix(r[col["recipient"]], "@rare.example") {
			t.Fatalf("row of another destination: %v", r)
		}
		if r[col["subject"]] != "'=cmd|' /C calc'!A0" {
			t.Fatalf("formula not neutralised: %q", r[col["subject"]])
		}
	}

	// All messages, across several pages, and a limit.
	buf.Reset()
	if n, err = ExportCSV(context.Background(), db, Filter{}, &buf); err != nil || n != 1200 {
		t.Fatalf("export all: %d %v", n, err)
	}
	buf.Reset()
	if n, err = ExportCSV(context.Background(), db, Filter{Limit: 3}, &buf); err != nil || n != 3 {
		t.Fatalf("export 3: %d %v", n, err)
	}
	if _, err := ExportCSV(context.Background(), db, Filter{Status: "x"}, &buf); err == nil {
		t.Fatal("bad filter exported")
	}
}

func TestStats(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	h := t0.Truncate(time.Hour)
	ins := func(id, cust, sender, status string, at time.Time, rcpts ...genRcpt) {
		t.Helper()
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.Exec(`INSERT INTO messages (id, node_id, customer_id, sender, status, received_at, expires_at, from_domain)
				VALUES (?, 'n1', ?, ?, ?, ?, 0, 'null.example')`, id, cust, sender, status, store.Millis(at)); err != nil {
				return err
			}
			for j, r := range rcpts {
				if _, err := tx.Exec(`INSERT INTO recipients (message_id, idx, address, domain, status, next_attempt_at, bounce_class,
					updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)`, id, j, "x@"+r.domain, r.domain, r.status, r.class, store.Millis(r.updated)); err != nil {
					return err
				}
				for k := range r.deferrals {
					if _, err := tx.Exec(`INSERT INTO attempts (message_id, rcpt_idx, attempt, started_at, outcome) VALUES (?, ?, ?, 0, 'deferred')`,
						id, j, k+1); err != nil {
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
	// Hour 0: three messages of A.
	ins("M1", "A", "a@a.example", "delivered", h.Add(time.Minute),
		genRcpt{domain: "gmail.example", status: "delivered", updated: h.Add(time.Minute + 2*time.Second)},
		genRcpt{domain: "yahoo.example", status: "delivered", updated: h.Add(time.Minute + 10*time.Second), deferrals: 2})
	ins("M2", "A", "b@a.example", "bounced", h.Add(2*time.Minute),
		genRcpt{domain: "gmail.example", status: "bounced", class: "bad-mailbox", updated: h.Add(3 * time.Minute)},
		genRcpt{domain: "gmail.example", status: "bounced", class: "", updated: h.Add(3 * time.Minute)})
	ins("M3", "A", "a@a.example", "rejected", h.Add(3*time.Minute), genRcpt{domain: "gmail.example", status: "rejected"})
	// Hour 1: B.
	ins("M4", "B", "", "deferred", h.Add(time.Hour+time.Minute),
		genRcpt{domain: "gmail.example", status: "deferred", deferrals: 1})
	ins("M5", "B", "c@b.example", "quarantined", h.Add(time.Hour+2*time.Minute))
	// Outside the range.
	ins("M6", "B", "c@b.example", "delivered", h.Add(5*time.Hour), genRcpt{domain: "gmail.example", status: "delivered"})

	s, err := ComputeStats(ctx, db, StatsFilter{Since: h, Until: h.Add(90 * time.Minute)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !s.Since.Equal(h) || !s.Until.Equal(h.Add(2*time.Hour)) || len(s.Series) != 1 || len(s.Series[0].Buckets) != 2 {
		t.Fatalf("shape %+v", s)
	}
	b0, b1, tot := s.Series[0].Buckets[0], s.Series[0].Buckets[1], s.Series[0].Total
	if b0.Received != 2 || b0.Rejected != 1 || b0.Recipients != 4 || b0.Delivered != 2 || b0.Bounced != 2 ||
		b0.Deferred != 2 || b0.BouncedByClass["bad-mailbox"] != 1 || b0.BouncedByClass["other"] != 1 || b0.Pending != 0 {
		t.Fatalf("hour 0: %+v", b0)
	}
	if b0.Latency.P50 != 2 || b0.Latency.Max != 10 || b0.Latency.P99 != 10 {
		t.Fatalf("hour 0 latency: %+v", b0.Latency)
	}
	if b1.Received != 2 || b1.Quarantined != 1 || b1.Pending != 1 || b1.Deferred != 1 || b1.Delivered != 0 {
		t.Fatalf("hour 1: %+v", b1)
	}
	if tot.Received != 4 || tot.Rejected != 1 || tot.Deferred != 3 || tot.Latency.Max != 10 {
		t.Fatalf("total: %+v", tot)
	}

	s, err = ComputeStats(ctx, db, StatsFilter{Since: h, Until: h.Add(2 * time.Hour), Group: GroupDestination}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{}
	for _, sr := range s.Series {
		keys = append(keys, sr.Key)
	}
	// M5 has no recipient: its group is "".
	if strings.Join(keys, ",") != ",gmail.example,yahoo.example" {
		t.Fatalf("destination groups %v", keys)
	}
	if g := s.Series[1].Total; g.Received != 3 || g.Rejected != 1 || g.Delivered != 1 || g.Bounced != 2 {
		t.Fatalf("gmail: %+v", g)
	}
	if g := s.Series[2].Total; g.Received != 1 || g.Delivered != 1 || g.Deferred != 2 {
		t.Fatalf("yahoo: %+v", g)
	}

	s, err = ComputeStats(ctx, db, StatsFilter{Since: h, Until: h.Add(2 * time.Hour), Group: GroupDomain, Bucket: BucketDay}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Series) != 3 || s.Series[0].Key != "a.example" || s.Series[1].Key != "b.example" || s.Series[2].Key != "null.example" ||
		len(s.Series[0].Buckets) != 1 || s.Series[2].Total.Received != 1 {
		t.Fatalf("domain groups by day: %+v", s.Series)
	}

	s, err = ComputeStats(ctx, db, StatsFilter{Since: h, Until: h.Add(2 * time.Hour), Customer: "A", Destination: "yahoo.example"}, time.Now())
	if err != nil || s.Series[0].Total.Received != 1 || s.Series[0].Total.Recipients != 1 {
		t.Fatalf("customer and destination: %+v %v", s, err)
	}
	s, err = ComputeStats(ctx, db, StatsFilter{Since: h, Until: h.Add(2 * time.Hour), Domain: "B.example", Group: GroupCustomer}, time.Now())
	if err != nil || len(s.Series) != 1 || s.Series[0].Key != "B" || s.Series[0].Total.Received != 1 {
		t.Fatalf("sending domain: %+v %v", s, err)
	}
	// Defaults: the last 24 hours.
	s, err = ComputeStats(ctx, db, StatsFilter{}, h.Add(2*time.Hour))
	if err != nil || len(s.Series[0].Buckets) != 24 || s.Series[0].Total.Received != 4 {
		t.Fatalf("defaults: %+v %v", s, err)
	}

	for _, bad := range []struct {
		f     StatsFilter
		field string
	}{
		{StatsFilter{Bucket: "week"}, "bucket"},
		{StatsFilter{Group: "ip"}, "group"},
		{StatsFilter{Since: h, Until: h}, "until"},
		{StatsFilter{Since: h.Add(-3000 * time.Hour), Until: h}, "since"},
	} {
		_, err := ComputeStats(ctx, db, bad.f, time.Now())
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != bad.field {
			t.Errorf("%+v: %v, want an error on %s", bad.f, err, bad.field)
		}
	}
}

func TestCollector(t *testing.T) {
	db := fixture(t)
	// M2 has a deferred recipient at dest.example; M3 is held; M5 queued.
	c := NewCollector(db, "n1")
	c.now = func() time.Time { return t0.Add(time.Hour) }
	got := gather(t, c)
	want := map[string]float64{
		"easymail_queue_stats_up":                                      1,
		"easymail_queue_messages{state=queued}":                        1,
		"easymail_queue_messages{state=deferred}":                      1,
		"easymail_queue_messages{state=held}":                          1,
		"easymail_queue_recipients{state=queued}":                      2,
		"easymail_queue_recipients{state=deferred}":                    1,
		"easymail_queue_oldest_message_age_seconds":                    3600 - 60,
		"easymail_queue_deferred_recipients{destination=dest.example}": 1,
		"easymail_queue_deferred_recipients{destination=other}":        0,
		"easymail_suppressions":                                        0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("metrics %v", got)
	}
	for k, v := range gather(t, NewCollector(db, "n2")) {
		if strings.HasPrefix(k, "easymail_queue_recipients") && v != 0 {
			t.Fatalf("node n2 counts n1's queue: %s = %v", k, v)
		}
	}
}

// gather collects c and returns each sample as "name{label=value,...}" → value.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var parts []string
			for _, l := range m.GetLabel() {
				parts = append(parts, l.GetName()+"="+l.GetValue())
			}
			key := mf.GetName()
			if len(parts) > 0 {
				key += "{" + strings.Join(parts, ",") + "}"
			}
			got[key] = m.GetGauge().GetValue()
		}
	}
	return got
}

func TestTopDeferredIsBounded(t *testing.T) {
	s := &queueState{deferredBy: map[string]int64{}}
	for i := range 30 {
		s.deferredBy[fmt.Sprintf("d%02d.example", i)] = int64(i + 1)
	}
	top := s.topDeferred()
	if len(top) != TopDestinations+1 || top[0].domain != "d29.example" || top[TopDestinations].domain != "other" {
		t.Fatalf("top %+v", top)
	}
	var other int64
	for i := range 20 {
		other += int64(i + 1)
	}
	if top[TopDestinations].n != other {
		t.Fatalf("other = %d, want %d", top[TopDestinations].n, other)
	}
}
