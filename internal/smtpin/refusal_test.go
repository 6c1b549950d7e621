package smtpin

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"easymail/internal/queue"
	"easymail/internal/ratelimit"
)

// TestEveryRefusalIsLoggedOnce: every permanent refusal, at MAIL, at RCPT and of the content, is logged
// once in the message log with its stage and its reply; temporary ones (rate limits) are not.
func TestEveryRefusalIsLoggedOnce(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MaxMessageSize = 200 << 10 })
	const from = "From: alice@acme.test\r\nSubject: x\r\n\r\n"
	for _, tc := range []struct {
		name  string
		cmds  []string // after EHLO; the last one's reply is the refusal, unless data is set
		data  string   // the content after DATA, without the end marker
		stage string
		want  string
	}{
		{"foreign sender", []string{"MAIL FROM:<mallory@evil.test>"}, "", queue.StageMail, "550 5.7.1"},
		{"bad sender address", []string{"MAIL FROM:<alice@[127.0.0.1]>"}, "", queue.StageMail, "501 5.1.3"},
		{"routed recipient", []string{"MAIL FROM:<alice@acme.test>", "RCPT TO:<a!b@dest.test>"}, "", queue.StageRcpt, "550 5.7.1"},
		{"bad recipient address", []string{"MAIL FROM:<alice@acme.test>", "RCPT TO:<bob@localhost>"}, "", queue.StageRcpt, "501 5.1.3"},
		{"bare LF", nil, from + "line\nmore\r\n", queue.StageData, "554 5.6.0 Message contains a bare CR or LF"},
		{"bare CR", nil, from + "line\rmore\r\n", queue.StageData, "554 5.6.0"},
		{"NUL", nil, from + "nul\x00\r\n", queue.StageData, "554 5.6.0 Message contains a NUL"},
		{"too large", nil, from + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 4000), queue.StageData, "552 5.3.4 Message too large"},
		{"line too long", nil, from + strings.Repeat("x", 3000) + "\r\n", queue.StageData, "554 5.6.0 Message has a line over"},
		{"header too large", nil, "From: alice@acme.test\r\nX-Big: y" + strings.Repeat("\r\n "+strings.Repeat("y", 70), 1500) + "\r\n\r\n", queue.StageData, "552 5.3.4 Header section too large"},
		{"mail loop", nil, strings.Repeat("Received: from a by b\r\n", 50) + from, queue.StageData, "554 5.4.6"},
		{"malformed header", nil, "From: alice@acme.test\r\nno colon here\r\n\r\nbody\r\n", queue.StageData, "554 5.6.0 Malformed header"},
		{"spoofed From", nil, "From: ceo@bank.test\r\n\r\nbody\r\n", queue.StageData, "550 5.7.1"},
		{"no From", nil, "Subject: x\r\n\r\nbody\r\n", queue.StageData, "550 5.7.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(ts.q.refusals())
			c, _ := greet(t, ts.addr, "127.0.0.1")
			c.cmd("EHLO a.test")
			var got string
			for _, cmd := range tc.cmds {
				got = c.cmd(cmd)
			}
			if tc.data != "" {
				wantPrefix(t, c.cmd("MAIL FROM:<alice@acme.test>"), "250 ")
				wantPrefix(t, c.cmd("RCPT TO:<bob@dest.test>"), "250 ")
				wantPrefix(t, c.cmd("DATA"), "354 ")
				got = c.cmd(tc.data + ".")
			}
			wantPrefix(t, got, tc.want)
			wantRefusedOnce(t, ts, before, tc.stage, got)
			r := ts.q.refusals()[before]
			if r.env.CustomerID != "C1" || r.env.ClientIP != "127.0.0.1" || r.env.HELO != "a.test" {
				t.Fatalf("refusal logged as %+v", r.env)
			}
			if tc.stage != queue.StageMail && r.env.Sender != "alice@acme.test" {
				t.Fatalf("refusal logged with sender %q", r.env.Sender)
			}
			if tc.stage == queue.StageData && len(r.env.Recipients) != 1 {
				t.Fatalf("refusal logged with recipients %+v", r.env.Recipients)
			}
		})
	}
}

// TestDeactivatedAtDataIsLogged: a customer deactivated during a transaction has the message refused at the
// data stage, and logged once.
func TestDeactivatedAtDataIsLogged(t *testing.T) {
	ts := startServer(t, nil)
	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO a.test")
	wantPrefix(t, c.cmd("MAIL FROM:<alice@acme.test>"), "250 ")
	wantPrefix(t, c.cmd("RCPT TO:<bob@dest.test>"), "250 ")
	ctx := context.Background()
	if err := ts.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE customers SET status = 'deactivated' WHERE id = 'C1'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.o.Access.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantPrefix(t, c.cmd("DATA"), "354 ")
	got := c.cmd("From: alice@acme.test\r\n\r\nbody\r\n.")
	wantPrefix(t, got, "550 5.7.1 Customer account is deactivated")
	wantRefusedOnce(t, ts, 0, queue.StageData, got)
	// And at the next MAIL, at the mail stage.
	got = c.cmd("MAIL FROM:<alice@acme.test>")
	wantPrefix(t, got, "550 5.7.1 Customer account is deactivated")
	wantRefusedOnce(t, ts, 1, queue.StageMail, got)
}

// TestRateLimitedIsNotLogged: a rate limit is a temporary refusal the client retries; it is counted, not
// logged as a rejected message.
func TestRateLimitedIsNotLogged(t *testing.T) {
	pol := fixedPolicies{Limits: ratelimit.CustomerLimits{MessagesPerMinute: 1}}
	ts := startServer(t, func(o *Options) {
		o.Protection = Protection{Limiter: ratelimit.NewLocal(nil), Policies: pol}
	})
	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO a.test")
	sendMessage(t, c, "alice@acme.test", "a@dest.test")
	wantPrefix(t, c.cmd("MAIL FROM:<alice@acme.test>"), "451 4.7.0")
	if n := len(ts.q.refusals()); n != 0 {
		t.Fatalf("%d refusals logged", n)
	}
}
