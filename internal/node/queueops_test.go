package node_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/cli"
	"easymail/internal/config"
)

// TestQueueVerbsSayWhatHappened drives retry, hold, release and delete through the API and the CLI in every
// state: each one that acts says what it did, each one that would do nothing fails (409 naming the state, or
// 404, and a non-zero exit) — a retry of a held message once printed "scheduled for delivery now" and did
// nothing.
func TestQueueVerbsSayWhatHappened(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Delivery.Retry = []time.Duration{time.Hour} })
	mx := e.mx(t, "dest.test", 11)
	mx.FailNext(1, 451, [3]int{4, 3, 0}, "busy")
	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "verbs"))
	if err != nil {
		t.Fatal(err)
	}
	id := queueID(t, reply)
	e.waitStatus(t, id, "deferred")

	run := func(wantCode int, wantOut string, args ...string) {
		t.Helper()
		var out, errs bytes.Buffer
		code := cli.Main(context.Background(), append([]string{"--api", e.n.APIURL, "--token", e.n.Token}, args...), &out, &errs)
		if code != wantCode || !strings.Contains(out.String()+errs.String(), wantOut) {
			t.Fatalf("easymail %s: exit %d, want %d with %q:\n%s%s", strings.Join(args, " "), code, wantCode, wantOut,
				out.String(), errs.String())
		}
	}
	conflict := func(verb, state, text string) {
		t.Helper()
		var ae api.Error
		e.n.API(t, "POST", "/queue/"+id+"/"+verb, nil, 409, &ae)
		if ae.State != state || !strings.Contains(ae.Message, text) {
			t.Fatalf("POST /queue/%s/%s: %+v, want state %q and %q", id, verb, ae, state, text)
		}
	}
	nextAttempt := func() time.Time {
		t.Helper()
		var tr api.Trace
		e.n.API(t, "GET", "/messages/"+id, nil, 200, &tr)
		return tr.Recipients[0].NextAttemptAt
	}

	// Deferred: release is refused (it is not held), hold holds.
	conflict("release", "deferred", "not held (it is deferred)")
	run(1, "to deliver it now use `easymail queue retry "+id+"` (HTTP 409)", "queue", "release", id)
	run(0, "message "+id+" held", "queue", "hold", id)
	e.waitStatus(t, id, "held")

	// Held: hold again and retry are refused, and the retry leaves the message as it was.
	before := nextAttempt()
	conflict("hold", "held", "already held")
	run(1, "already held", "queue", "hold", id)
	conflict("retry", "held", "release it with `easymail queue release "+id+"`")
	run(1, "message is held, and a held message is not delivered", "queue", "retry", id)
	if after := nextAttempt(); !after.Equal(before) {
		t.Fatalf("a refused retry moved the next attempt from %v to %v", before, after)
	}

	// Release delivers it.
	run(0, "message "+id+" released: its undelivered recipients are due for delivery now", "queue", "release", id)
	mx.WaitMessages(t, 1, 10*time.Second)
	e.waitStatus(t, id, "delivered")

	// Delivered: every verb is refused, naming the state.
	for _, verb := range []string{"retry", "hold", "release"} {
		conflict(verb, "delivered", "message is delivered: nothing left to deliver")
		run(1, "message is delivered: nothing left to deliver (HTTP 409)", "queue", verb, id)
	}
	e.n.API(t, "DELETE", "/queue/"+id, nil, 409, nil)
	run(1, "(HTTP 409)", "queue", "delete", id)

	// Unknown ids.
	for _, verb := range []string{"retry", "hold", "release"} {
		e.n.API(t, "POST", "/queue/NOSUCHID/"+verb, nil, 404, nil)
		run(1, `message "NOSUCHID" not found (HTTP 404)`, "queue", verb, "NOSUCHID")
	}
	e.n.API(t, "DELETE", "/queue/NOSUCHID", nil, 404, nil)
	run(1, `message "NOSUCHID" not found (HTTP 404)`, "queue", "delete", "NOSUCHID")

	// A retry that acts says so, and so does a delete.
	mx.FailNext(1, 451, [3]int{4, 3, 0}, "busy")
	reply, err = send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "retry me"))
	if err != nil {
		t.Fatal(err)
	}
	id = queueID(t, reply)
	e.waitStatus(t, id, "deferred")
	run(0, "message "+id+": its undelivered recipients are due for delivery now", "queue", "retry", id)
	mx.WaitMessages(t, 2, 10*time.Second)
	e.waitStatus(t, id, "delivered")

	mx.FailNext(1, 451, [3]int{4, 3, 0}, "busy")
	reply, err = send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "delete me"))
	if err != nil {
		t.Fatal(err)
	}
	id = queueID(t, reply)
	e.waitStatus(t, id, "deferred")
	run(0, "message "+id+" deleted from the queue", "queue", "delete", id)
	run(1, "(HTTP 409)", "queue", "delete", id)
}
