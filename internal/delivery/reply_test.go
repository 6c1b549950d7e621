package delivery

import (
	"context"
	"testing"

	"easymail/internal/resolver"
)

// TestDeliverKeepsRemoteReplies: every recipient's outcome carries the remote host's own reply as it wrote it,
// the 250 to the end of DATA included (it was once replaced by a generic "Delivered"), cleaned of control
// characters; an outcome no remote reply decided has none.
func TestDeliverKeepsRemoteReplies(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.setMX("dest.example", mx1)
	d := e.deliverer(nil)
	want := func(r RcptResult, reply string) {
		t.Helper()
		if r.Reply != reply {
			t.Errorf("recipient %s: remote reply %q, want %q", r.Rcpt, r.Reply, reply)
		}
	}

	m.ReplyData(250, [3]int{2, 0, 0}, "Ok: queued as FAKE123")
	m.Reply("bad@dest.example", 550, [3]int{5, 1, 1}, "<bad@dest.example>: Recipient address rejected")
	res := d.Deliver(context.Background(), job("dest.example", "x@dest.example", "bad@dest.example"))
	if res.Rcpts[0].Err != nil {
		t.Fatal(res.Rcpts[0].Err)
	}
	want(res.Rcpts[0], "250 2.0.0 Ok: queued as FAKE123")
	wantErr(t, res.Rcpts[1], 550, [3]int{5, 1, 1})
	want(res.Rcpts[1], "550 5.1.1 <bad@dest.example>: Recipient address rejected")

	// Multi-line, with a terminal escape: the lines are joined, the control characters removed.
	m.ReplyData(250, [3]int{2, 6, 0}, "Ok\x1b[2J\nqueued as FAKE456")
	res = d.Deliver(context.Background(), job("dest.example", "x@dest.example"))
	want(res.Rcpts[0], "250 Ok [2J 2.6.0 queued as FAKE456")
	if res.Rcpts[0].Err != nil {
		t.Fatal(res.Rcpts[0].Err)
	}

	// A refusal of the whole transaction (deferred) and at the end of DATA (bounced).
	m.ReplyData(0, [3]int{}, "")
	m.FailNext(1, 451, [3]int{4, 7, 1}, "Greylisted, come back later")
	res = d.Deliver(context.Background(), job("dest.example", "x@dest.example"))
	wantErr(t, res.Rcpts[0], 451, [3]int{4, 7, 1})
	want(res.Rcpts[0], "451 4.7.1 Greylisted, come back later")
	m.ReplyData(554, [3]int{5, 7, 1}, "Spam score 12.3")
	res = d.Deliver(context.Background(), job("dest.example", "x@dest.example"))
	wantErr(t, res.Rcpts[0], 554, [3]int{5, 7, 1})
	want(res.Rcpts[0], "554 5.7.1 Spam score 12.3")
	m.ReplyData(0, [3]int{}, "")

	// A 421 closes the session: no other host, so the outcome is ours (451 4.4.1), resting on that reply.
	m.Reply("x@dest.example", 421, [3]int{4, 7, 0}, "Too many connections from your IP")
	res = d.Deliver(context.Background(), job("dest.example", "x@dest.example"))
	wantErr(t, res.Rcpts[0], 451, [3]int{4, 4, 1})
	want(res.Rcpts[0], "421 4.7.0 Too many connections from your IP")

	// No host answered: no remote reply.
	e.dns.setMX("nowhere.example", resolver.MX{Host: "mx.nowhere.example", Pref: 10})
	e.dns.setIP("mx.nowhere.example", "127.0.0.99")
	res = d.Deliver(context.Background(), job("nowhere.example", "x@nowhere.example"))
	if res.Rcpts[0].Err == nil || !res.Rcpts[0].Err.Temporary() {
		t.Fatalf("unreachable host: %v", res.Rcpts[0].Err)
	}
	want(res.Rcpts[0], "")
}
