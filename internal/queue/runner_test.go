package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"easymail/internal/delivery"
	"easymail/internal/store"
)

// TestTemporaryFailureIsRetriedOnTheSchedule: a recipient refused with 4xx is deferred and retried after each
// step of the retry schedule (±10% jitter, not before), and delivered at the fourth attempt; every attempt is
// recorded with its outcome and the remote host's own reply, and the delivered message leaves the spool.
func TestTemporaryFailureIsRetriedOnTheSchedule(t *testing.T) {
	schedule := []time.Duration{10 * time.Minute, 30 * time.Minute, 2 * time.Hour}
	h := newHarness(t, Options{Retry: schedule, MaxLifetime: 48 * time.Hour, Workers: 2})
	replies := []string{"421 4.7.0 Try again later", "451 4.3.0 Mailbox busy", "452 4.2.2 Mailbox over quota", okReply}
	h.mx.answer("bob@dest.test", replies...)
	env := Envelope{ID: "TEMP", Sender: "alice@acme.test", Recipients: []Recipient{{Address: "bob@dest.test"}},
		Prefix: "Received: from client.acme.test by relay.test\r\n", Received: time.Now()}
	h.enqueueEnv(env)

	for i, d := range schedule {
		before := store.Now()
		if n := h.tick(); n != 1 {
			t.Fatalf("attempt %d: %d deliveries started, want 1", i+1, n)
		}
		after := store.Now()
		r := h.rcpt("TEMP", 0)
		if r.status != StatusDeferred || r.attempts != i+1 || r.remoteReply != replies[i] || r.claimedBy != "" {
			t.Fatalf("after attempt %d: %+v", i+1, r)
		}
		within(t, fmt.Sprintf("attempt %d", i+1), r.next, before, after, d)
		if m := h.message("TEMP"); m.status != StatusDeferred || m.done.Valid {
			t.Fatalf("after attempt %d: message %+v", i+1, m)
		}
		// Not due before the backoff's shortest wait.
		h.advance(d * 8 / 10)
		if n := h.tick(); n != 0 {
			t.Fatalf("after attempt %d: retried %v early", i+1, d*2/10)
		}
		h.advanceToNext("TEMP")
	}
	if n := h.tick(); n != 1 {
		t.Fatalf("last attempt: %d deliveries started", n)
	}
	if r := h.rcpt("TEMP", 0); r.status != StatusDelivered || r.attempts != 4 || r.code != 250 || r.remoteReply != okReply {
		t.Fatalf("delivered recipient: %+v", r)
	}
	if m := h.message("TEMP"); m.status != StatusDelivered || !m.done.Valid {
		t.Fatalf("delivered message: %+v", m)
	}
	if h.inSpool("TEMP") {
		t.Error("the delivered message's content is still in the spool")
	}
	as := h.attempts("TEMP")
	if len(as) != 4 {
		t.Fatalf("%d attempts recorded, want 4: %+v", len(as), as)
	}
	for i, a := range as {
		want := StatusDeferred
		if i == 3 {
			want = StatusDelivered
		}
		if a.attempt != i+1 || a.outcome != want || a.remoteReply != replies[i] || a.remoteMX != "mx.dest.test" ||
			a.outboundIP != "127.0.0.1" || !strings.HasPrefix(replies[i], fmt.Sprintf("%d %s ", a.code, a.enhanced)) {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
		if i < 3 && a.reply != "remote host mx.dest.test said: "+replies[i] {
			t.Errorf("attempt %d: reply %q", i+1, a.reply)
		}
	}
	jobs := h.mx.jobsFor("TEMP")
	if len(jobs) != 4 {
		t.Fatalf("%d jobs, want 4", len(jobs))
	}
	for _, j := range jobs {
		if j.Sender != "alice@acme.test" || j.Domain != "dest.test" || !slices.Equal(j.Recipients, []string{"bob@dest.test"}) ||
			j.content != env.Prefix+content("TEMP") {
			t.Errorf("job %+v with content %q", j.Job, j.content)
		}
	}
	if d := h.dsnsFor("TEMP"); len(d) != 0 {
		t.Errorf("%d DSNs for a message delivered without delay notices", len(d))
	}
	if got, want := h.ev.list("TEMP"), []string{"deferred bob@dest.test", "deferred bob@dest.test", "deferred bob@dest.test",
		"delivered bob@dest.test"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// TestPermanentFailureBouncesAtOnceWithADSN: a 5xx bounces the recipient at the first attempt and queues one
// failure DSN from the null sender to the envelope sender, reporting the recipient with its status, the
// remote host's reply as diagnostic and the remote MTA; the DSN is then delivered. No DSN goes to the null
// sender, none for NOTIFY=NEVER, and a DSN that bounces makes no DSN of its own.
func TestPermanentFailureBouncesAtOnceWithADSN(t *testing.T) {
	const refusal = "550 5.1.1 <nobody@dest.test>: Recipient address rejected: User unknown"
	o := Options{Retry: []time.Duration{time.Hour}, MaxLifetime: 24 * time.Hour, Workers: 2}

	t.Run("sender", func(t *testing.T) {
		h := newHarness(t, o)
		h.mx.answer("nobody@dest.test", refusal)
		h.enqueueEnv(Envelope{ID: "PERM", Sender: "alice@acme.test", Received: time.Now(),
			Recipients: []Recipient{{Address: "nobody@dest.test", ORCPT: "rfc822;Nobody@dest.test"}}})
		if n := h.tick(); n != 1 {
			t.Fatalf("%d deliveries started", n)
		}
		r := h.rcpt("PERM", 0)
		if r.status != StatusBounced || r.attempts != 1 || r.code != 550 || r.enhanced != "5.1.1" || r.remoteReply != refusal {
			t.Fatalf("recipient %+v", r)
		}
		if m := h.message("PERM"); m.status != StatusBounced || !m.done.Valid {
			t.Fatalf("message %+v", m)
		}
		if h.inSpool("PERM") {
			t.Error("the bounced message's content is still in the spool")
		}
		ds := h.dsnsFor("PERM")
		if len(ds) != 1 {
			t.Fatalf("%d DSNs, want 1", len(ds))
		}
		d := ds[0]
		if d.sender != "" || d.rcpt != "alice@acme.test" || d.notify != "NEVER" || d.subject != "Undelivered Mail Returned to Sender" {
			t.Fatalf("DSN queued as %+v", d)
		}
		rep := d.parsed.Report
		if rep.QueueID != "PERM" || rep.Sender != "alice@acme.test" || rep.Postmaster != "MAILER-DAEMON@relay.test" ||
			rep.ReportingMTA != "relay.test" || len(rep.Recipients) != 1 {
			t.Fatalf("report %+v", rep)
		}
		rr := rep.Recipients[0]
		if rr.Address != "nobody@dest.test" || rr.ORCPT != "Nobody@dest.test" || rr.Action != "failed" || rr.Status != "5.1.1" ||
			rr.Diagnostic != refusal || rr.RemoteMTA != "mx.dest.test" {
			t.Fatalf("reported recipient %+v", rr)
		}
		// The DSN is delivered like any message, from the null sender.
		h.drain()
		js := h.mx.jobsFor(d.id)
		if len(js) != 1 || js[0].Sender != "" || js[0].Domain != "acme.test" || !slices.Equal(js[0].Recipients, []string{"alice@acme.test"}) {
			t.Fatalf("DSN jobs %+v", js)
		}
		if len(h.mx.jobsFor("PERM")) != 1 {
			t.Error("the bounced message was sent again")
		}
	})

	for _, c := range []struct{ name, sender, notify string }{
		{"null sender", "", ""},
		{"notify never", "alice@acme.test", "NEVER"},
		{"notify success", "alice@acme.test", "SUCCESS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, o)
			h.mx.answer("nobody@dest.test", refusal)
			h.enqueueEnv(Envelope{ID: "PERM", Sender: c.sender, Received: time.Now(),
				Recipients: []Recipient{{Address: "nobody@dest.test", Notify: c.notify}}})
			h.drain()
			if r := h.rcpt("PERM", 0); r.status != StatusBounced {
				t.Fatalf("recipient %+v", r)
			}
			if d := h.dsnsFor("PERM"); len(d) != 0 {
				t.Fatalf("%d DSNs, want none", len(d))
			}
			var n int
			if err := h.db.R.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%d messages (%v), want 1", n, err)
			}
		})
	}

	t.Run("the DSN bounces", func(t *testing.T) {
		h := newHarness(t, o)
		h.mx.answer("nobody@dest.test", refusal)
		h.mx.answer("alice@acme.test", "550 5.1.1 <alice@acme.test>: User unknown")
		h.enqueue("PERM", "alice@acme.test", "nobody@dest.test")
		h.drain()
		ds := h.dsnsFor("PERM")
		if len(ds) != 1 {
			t.Fatalf("%d DSNs, want 1", len(ds))
		}
		if r := h.rcpt(ds[0].id, 0); r.status != StatusBounced {
			t.Fatalf("DSN recipient %+v", r)
		}
		var n int
		if err := h.db.R.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("%d messages (%v), want 2: a DSN about the DSN was made", n, err)
		}
		if evs := h.ev.list(ds[0].id); len(evs) != 0 {
			t.Errorf("events for the relay's own DSN: %q", evs)
		}
	})
}

// TestMixedOutcomesArePerRecipient: one attempt of a message for three recipients of one domain delivers
// one, bounces one (the DSN lists that one only) and defers one; the next attempt carries the deferred one
// alone, and the message is finished (bounced: not every recipient got it) when it is delivered.
func TestMixedOutcomesArePerRecipient(t *testing.T) {
	const refusal = "550 5.1.1 <gone@dest.test>: User unknown"
	const later = "451 4.7.1 Greylisted, try again in 5 minutes"
	h := newHarness(t, Options{Retry: []time.Duration{15 * time.Minute}, MaxLifetime: 24 * time.Hour, Workers: 2})
	h.mx.answer("gone@dest.test", refusal)
	h.mx.answer("later@dest.test", later, okReply)
	h.enqueue("MIXED", "alice@acme.test", "ok@dest.test", "gone@dest.test", "later@dest.test")

	if n := h.tick(); n != 1 {
		t.Fatalf("%d deliveries started, want 1 (one domain)", n)
	}
	for idx, want := range []struct {
		status string
		code   int
		remote string
	}{{StatusDelivered, 250, okReply}, {StatusBounced, 550, refusal}, {StatusDeferred, 451, later}} {
		if r := h.rcpt("MIXED", idx); r.status != want.status || r.code != want.code || r.remoteReply != want.remote || r.attempts != 1 {
			t.Errorf("recipient %d: %+v, want %+v", idx, r, want)
		}
	}
	if m := h.message("MIXED"); m.status != StatusDeferred || m.done.Valid {
		t.Fatalf("message after the first attempt %+v", m)
	}
	if !h.inSpool("MIXED") {
		t.Fatal("the content of a message with a recipient left was removed")
	}
	ds := h.dsnsFor("MIXED")
	if len(ds) != 1 {
		t.Fatalf("%d DSNs, want 1", len(ds))
	}
	if rs := ds[0].parsed.Report.Recipients; len(rs) != 1 || rs[0].Address != "gone@dest.test" || rs[0].Status != "5.1.1" ||
		rs[0].Diagnostic != refusal {
		t.Fatalf("DSN recipients %+v, want gone@dest.test only", rs)
	}

	h.drain() // the DSN
	h.advanceToNext("MIXED")
	if n := h.tick(); n != 1 {
		t.Fatalf("retry: %d deliveries started", n)
	}
	jobs := h.mx.jobsFor("MIXED")
	if len(jobs) != 2 {
		t.Fatalf("%d jobs, want 2", len(jobs))
	}
	if !slices.Equal(jobs[0].Recipients, []string{"ok@dest.test", "gone@dest.test", "later@dest.test"}) ||
		!slices.Equal(jobs[1].Recipients, []string{"later@dest.test"}) {
		t.Fatalf("jobs' recipients %q, then %q", jobs[0].Recipients, jobs[1].Recipients)
	}
	if r := h.rcpt("MIXED", 2); r.status != StatusDelivered || r.attempts != 2 {
		t.Fatalf("retried recipient %+v", r)
	}
	if r := h.rcpt("MIXED", 0); r.attempts != 1 {
		t.Fatalf("delivered recipient attempted again: %+v", r)
	}
	if m := h.message("MIXED"); m.status != StatusBounced || !m.done.Valid {
		t.Fatalf("finished message %+v", m)
	}
	if h.inSpool("MIXED") {
		t.Error("the finished message's content is still in the spool")
	}
	if len(h.dsnsFor("MIXED")) != 1 {
		t.Error("a second DSN")
	}
	var got []string
	for _, a := range h.attempts("MIXED") {
		got = append(got, fmt.Sprintf("%d %d %s", a.idx, a.attempt, a.outcome))
	}
	if want := []string{"0 1 delivered", "1 1 bounced", "2 1 deferred", "2 2 delivered"}; !slices.Equal(got, want) {
		t.Errorf("attempts %q, want %q", got, want)
	}
	// Outcome events only: operator mail (no customer) gets a "suppressed" event too, though nothing is
	// suppressed for it (bounce.Suppress writes no entry without a customer).
	got = slices.DeleteFunc(h.ev.list("MIXED"), func(e string) bool { return strings.HasPrefix(e, "suppressed ") })
	if want := []string{"delivered ok@dest.test", "bounced gone@dest.test", "deferred later@dest.test",
		"delivered later@dest.test"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// TestExpiryBouncesWithADelayedTooLongDSN: a recipient that keeps failing temporarily gets one delay notice
// once the message is DelayNotice old, its retries are capped at the expiry, and the attempt at the expiry
// bounces it with a failure DSN of status 5.4.7 whose diagnostic is the last remote reply.
func TestExpiryBouncesWithADelayedTooLongDSN(t *testing.T) {
	const busy = "421 4.7.0 Too many connections, try again later"
	o := Options{Retry: []time.Duration{time.Hour}, MaxLifetime: 4*time.Hour + 30*time.Minute, DelayNotice: 2*time.Hour + 30*time.Minute,
		Workers: 2}
	h := newHarness(t, o)
	h.mx.answer("slow@dest.test", busy)
	h.enqueue("SLOW", "alice@acme.test", "slow@dest.test")

	delays := func() int {
		n := 0
		for _, d := range h.dsnsFor("SLOW") {
			if d.subject == "Delayed Mail (still being retried)" {
				n++
			}
		}
		return n
	}
	var attempts int
	for attempts = 1; attempts <= 10; attempts++ {
		m := h.message("SLOW")
		capped := h.rcpt("SLOW", 0).next == m.expires
		if n := h.tick(); n != 1 {
			t.Fatalf("attempt %d: %d deliveries started", attempts, n)
		}
		r := h.rcpt("SLOW", 0)
		if r.status == StatusBounced {
			if !capped {
				t.Error("the attempt that expired the message was not scheduled at its expiry")
			}
			break
		}
		if r.status != StatusDeferred || r.next > m.expires {
			t.Fatalf("attempt %d: %+v (expiry %d)", attempts, r, m.expires)
		}
		age := time.Duration(store.Now()-m.received) * time.Millisecond
		if want := map[bool]int{false: 0, true: 1}[age >= o.DelayNotice]; delays() != want {
			t.Fatalf("attempt %d at age %v: %d delay notices, want %d", attempts, age, delays(), want)
		}
		h.drain() // the delay notice, once queued
		h.advanceToNext("SLOW")
	}
	// Attempts near 0h, 1h, 2h, 3h, 4h (each ±10% of the step) and the one at the expiry, 4h30.
	if attempts != 6 {
		t.Errorf("bounced at attempt %d, want 6", attempts)
	}
	r := h.rcpt("SLOW", 0)
	if want := "Message expired in the queue after 4h30m0s; last error: remote host mx.dest.test said: " + busy; r.reply != want ||
		r.code != 421 || r.remoteReply != busy {
		t.Fatalf("expired recipient %+v, want reply %q", r, want)
	}
	if m := h.message("SLOW"); m.status != StatusBounced || !m.done.Valid || !m.delayNotified {
		t.Fatalf("expired message %+v", m)
	}
	as := h.attempts("SLOW")
	if last := as[len(as)-1]; last.outcome != StatusBounced || as[len(as)-2].outcome != StatusDeferred {
		t.Fatalf("attempts %+v", as)
	}
	ds := h.dsnsFor("SLOW")
	if len(ds) != 2 {
		t.Fatalf("%d DSNs, want a delay notice and a failure", len(ds))
	}
	delay, fail := ds[0], ds[1]
	if dr := delay.parsed.Report.Recipients; delay.subject != "Delayed Mail (still being retried)" || len(dr) != 1 ||
		dr[0].Action != "delayed" || dr[0].Status != "4.7.0" || dr[0].Diagnostic != busy || dr[0].WillRetryUntil.IsZero() {
		t.Fatalf("delay notice %q: %+v", delay.subject, dr)
	}
	fr := fail.parsed.Report.Recipients
	if fail.subject != "Undelivered Mail Returned to Sender" || len(fr) != 1 || fr[0].Action != "failed" || fr[0].Status != "5.4.7" ||
		fr[0].Diagnostic != busy || !strings.Contains(fail.parsed.Text, "expired from our queue") {
		t.Fatalf("failure DSN %q: %+v\n%s", fail.subject, fr, fail.parsed.Text)
	}
}

// TestCrashAfterDeliveryBeforeRecordDeliversAgain: the process dies (here: its database is closed under it)
// after the receiving MX accepted the message and before the outcome is recorded. The claim recorded before
// the attempt survives; the next process's Recover makes the claimed recipient due at once, and its Run
// delivers it again.
//
// The guarantee is at-least-once: an acknowledged message is never lost, and a delivery whose outcome was
// not recorded is repeated, so the receiver may get it twice. Exactly-once is not promised.
func TestCrashAfterDeliveryBeforeRecordDeliversAgain(t *testing.T) {
	h := newHarness(t, Options{Retry: []time.Duration{time.Hour}, MaxLifetime: 24 * time.Hour, Workers: 2})
	h.enqueue("CRASH", "alice@acme.test", "bob@dest.test")
	dead := h.q
	var once sync.Once
	h.mx.hook = func(delivery.Job) { once.Do(h.closeDB) } // the MX said 250; then the process dies
	if n := h.tick(); n != 1 {
		t.Fatalf("%d deliveries started", n)
	}
	h.mx.hook = nil

	h.open() // the next process, on the same data
	r := h.rcpt("CRASH", 0)
	if r.status != StatusQueued || r.attempts != 1 || r.claimedBy != dead.instance || r.next <= store.Now() {
		t.Fatalf("after the crash: %+v (a claim of the dead process, due later)", r)
	}
	if as := h.attempts("CRASH"); len(as) != 0 {
		t.Fatalf("an outcome was recorded: %+v", as)
	}
	if !h.inSpool("CRASH") {
		t.Fatal("the content was removed")
	}
	if err := h.q.Recover(h.ctx); err != nil {
		t.Fatal(err)
	}
	if r := h.rcpt("CRASH", 0); r.claimedBy != "" || r.next > store.Now() {
		t.Fatalf("after Recover: %+v, want the claim released and due", r)
	}

	ctx, cancel := context.WithCancel(h.ctx)
	ran := make(chan error, 1)
	go func() { ran <- h.q.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for h.message("CRASH").status != StatusDelivered {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("not delivered after the restart: %+v", h.rcpt("CRASH", 0))
		}
		time.Sleep(5 * time.Millisecond) // polling, with a deadline
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	jobs := h.mx.jobsFor("CRASH")
	if len(jobs) != 2 || jobs[0].content != content("CRASH") || jobs[1].content != content("CRASH") {
		t.Fatalf("%d jobs, want 2 (delivered before the crash, and again after)", len(jobs))
	}
	as := h.attempts("CRASH")
	if len(as) != 1 || as[0].attempt != 2 || as[0].outcome != StatusDelivered {
		t.Fatalf("attempts %+v, want attempt 2 delivered (attempt 1's outcome died with the process)", as)
	}
	if h.inSpool("CRASH") {
		t.Error("the delivered message's content is still in the spool")
	}
}

// TestBadMailboxBounceSuppressesTheAddress: a hard bounce of a bad mailbox puts the address (lower-cased) on
// the customer's suppression list in the transaction that records it, with a "suppressed" event; a policy
// refusal does not, and neither does an expiry.
func TestBadMailboxBounceSuppressesTheAddress(t *testing.T) {
	// The retry step is longer than the lifetime: the second attempt is at the expiry.
	h := newHarness(t, Options{Retry: []time.Duration{2 * time.Hour}, MaxLifetime: time.Hour, Workers: 2})
	h.exec(`INSERT INTO customers (id, name, contact_email, pool, status, created_at, updated_at)
		VALUES ('C1', 'Acme', 'it@acme.test', 'default', 'active', 0, 0)`)
	h.mx.answer("Gone@dest.test", "550 5.1.1 <Gone@dest.test>: Recipient address rejected: User unknown in virtual mailbox table")
	h.mx.answer("policy@dest.test", "550 5.7.1 Message rejected due to local policy")
	h.mx.answer("full@dest.test", "452 4.2.2 Mailbox full")
	h.enqueueEnv(Envelope{ID: "SUP", CustomerID: "C1", Sender: "alice@acme.test", Received: time.Now(),
		Recipients: []Recipient{{Address: "Gone@dest.test"}, {Address: "policy@dest.test"}, {Address: "full@dest.test"}}})
	h.tick()
	h.advanceToNext("SUP") // the expiry: the retry is capped at it
	h.tick()
	for idx, want := range []string{"bad-mailbox", "policy", "mailbox-full"} {
		if r := h.rcpt("SUP", idx); r.status != StatusBounced || r.bounceClass != want {
			t.Errorf("recipient %d: %+v, want bounced, class %s", idx, r, want)
		}
	}
	rows, err := h.db.R.Query(`SELECT address, source, queue_id FROM suppressions WHERE customer_id = 'C1'`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var a, s, q string
		rows.Scan(&a, &s, &q)
		got = append(got, a+" "+s+" "+q)
	}
	rows.Close()
	if want := []string{"gone@dest.test bounce SUP"}; !slices.Equal(got, want) {
		t.Errorf("suppressions %q, want %q", got, want)
	}
	if evs := h.ev.list("SUP"); !slices.Contains(evs, "suppressed Gone@dest.test") || slices.Contains(evs, "suppressed policy@dest.test") ||
		slices.Contains(evs, "suppressed full@dest.test") {
		t.Errorf("events %q", evs)
	}
}

// TestWorkersBoundDeliveriesAndAGroupIsNeverStartedTwice: no more than Workers deliveries run at once (the
// rest wait, unclaimed), and a message in delivery is not started a second time when it is made due again
// (an operator's retry) while a worker is free.
func TestWorkersBoundDeliveriesAndAGroupIsNeverStartedTwice(t *testing.T) {
	h := newHarness(t, Options{Retry: []time.Duration{time.Hour}, MaxLifetime: 24 * time.Hour, Workers: 2})
	gates := map[string]chan struct{}{"A": make(chan struct{}), "B": make(chan struct{}), "C": make(chan struct{})}
	var release sync.Once
	releaseAll := func() {
		release.Do(func() {
			for _, g := range gates {
				close(g)
			}
		})
	}
	t.Cleanup(releaseAll)
	entered := make(chan string, 10)
	h.mx.hook = func(j delivery.Job) { entered <- j.QueueID; <-gates[j.QueueID] }
	wait := func(want string) {
		t.Helper()
		select {
		case got := <-entered:
			if got != want {
				t.Fatalf("delivery of %s started, want %s", got, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("delivery of %s not started after 30s", want)
		}
	}
	dispatch := func() int {
		t.Helper()
		n, _, err := h.q.dispatch(h.ctx, h.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	h.enqueue("A", "alice@acme.test", "a@dest.test")
	if n := dispatch(); n != 1 {
		t.Fatalf("%d deliveries started, want 1", n)
	}
	wait("A")
	if err := h.q.Retry(h.ctx, "A"); err != nil {
		t.Fatal(err)
	}
	if n := dispatch(); n != 0 {
		t.Fatalf("a message in delivery was started again (%d)", n)
	}
	h.enqueue("B", "alice@acme.test", "b@dest.test")
	h.enqueue("C", "alice@acme.test", "c@dest.test")
	if n := dispatch(); n != 1 {
		t.Fatalf("%d deliveries started, want 1 (one worker free)", n)
	}
	wait("B")
	if n := dispatch(); n != 0 {
		t.Fatalf("%d deliveries started with every worker busy", n)
	}
	if r := h.rcpt("C", 0); r.attempts != 0 || r.claimedBy != "" {
		t.Fatalf("the waiting message was claimed: %+v", r)
	}
	releaseAll()
	h.q.wg.Wait()
	h.drain()
	for _, id := range []string{"A", "B", "C"} {
		if n := len(h.mx.jobsFor(id)); n != 1 || h.rcpt(id, 0).status != StatusDelivered {
			t.Errorf("%s: %d jobs, status %s; want 1, delivered", id, n, h.rcpt(id, 0).status)
		}
	}
	if h.mx.maxConc > 2 {
		t.Errorf("%d deliveries at once with 2 workers", h.mx.maxConc)
	}
}
