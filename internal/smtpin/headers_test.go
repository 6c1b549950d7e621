package smtpin

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"easymail/internal/queue"
)

// dataReply sends one message with header hdr (fields CRLF-separated, without the blank line) in a new
// session and returns the reply to its content.
func dataReply(t *testing.T, ts *testServer, hdr string) string {
	t.Helper()
	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO a.test")
	wantPrefix(t, c.cmd("MAIL FROM:<alice@acme.test>"), "250 ")
	wantPrefix(t, c.cmd("RCPT TO:<bob@dest.test>"), "250 ")
	wantPrefix(t, c.cmd("DATA"), "354 ")
	return c.cmd(hdr + "\r\n\r\nbody\r\n.")
}

// wantRefusedOnce checks that exactly one refusal was logged since before, at stage, with the reply as its
// reason.
func wantRefusedOnce(t *testing.T, ts *testServer, before int, stage, reply string) {
	t.Helper()
	got := ts.q.refusals()[before:]
	if len(got) != 1 || got[0].env.Stage != stage || got[0].reason != reply {
		t.Fatalf("refusals logged %+v, want one at stage %q with reason %q", got, stage, reply)
	}
}

// TestOriginatorFields: with anti-spoofing, every originator field (From, Sender, Resent-From,
// Resent-Sender) must name the customer's domains, however its name is written; a second From or Sender is
// refused; Reply-To and repeated resent blocks are accepted. Each refusal is logged once.
func TestOriginatorFields(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct {
		name, hdr, want string
	}{
		{"two From, the second another customer's", "From: x@acme.test\r\nFrom: ceo@b-corp.example",
			"554 5.6.0 Message has 2 From header fields"},
		{"From with white space before the colon, then FROM", "From\t: alice@acme.test\r\nFROM: ceo@b-corp.example",
			"554 5.6.0 Message has 2 From header fields"},
		{"From with a space before the colon", "From : ceo@b-corp.example", "550 5.7.1 Header From domain"},
		{"FROM in capitals", "FROM: ceo@b-corp.example", "550 5.7.1 Header From domain"},
		{"foreign Sender", "From: alice@acme.test\r\nSender: ceo@b-corp.example", "550 5.7.1 Header Sender domain"},
		{"two Senders", "From: alice@acme.test\r\nSender: a@acme.test\r\nsender : b@acme.test",
			"554 5.6.0 Message has 2 Sender header fields"},
		{"unparsable Sender", "From: alice@acme.test\r\nSender: <>", "550 5.7.1 Header Sender cannot be parsed"},
		{"foreign Resent-From", "From: alice@acme.test\r\nResent-From: a@acme.test\r\nResent-From: ceo@b-corp.example",
			"550 5.7.1 Header Resent-From domain"},
		{"foreign Resent-Sender", "From: alice@acme.test\r\nResent-Sender: ceo@b-corp.example",
			"550 5.7.1 Header Resent-Sender domain"},
		{"a field name with a space inside", "From: alice@acme.test\r\nFr om: ceo@b-corp.example",
			"554 5.6.0 Malformed header section"},
		{"foreign Reply-To", "From: alice@acme.test\r\nReply-To: help@b-corp.example", "250 2.0.0"},
		{"two resent blocks", "Resent-From: a@acme.test\r\nResent-Sender: b@acme.test\r\nResent-From: c@acme.test\r\n" +
			"From: alice@acme.test\r\nSender: d@acme.test", "250 2.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(ts.q.refusals())
			got := dataReply(t, ts, tc.hdr+"\r\nSubject: x")
			wantPrefix(t, got, tc.want)
			if strings.HasPrefix(tc.want, "250") {
				if n := len(ts.q.refusals()) - before; n != 0 {
					t.Fatalf("%d refusals logged for an accepted message", n)
				}
				return
			}
			wantRefusedOnce(t, ts, before, queue.StageData, got)
		})
	}

	// Without anti-spoofing the originators are the customer's business, but a second From is still refused.
	ctx := context.Background()
	if err := ts.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE customers SET anti_spoofing = 0 WHERE id = 'C1'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.o.Access.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantPrefix(t, dataReply(t, ts, "From: ceo@b-corp.example\r\nSender: x@c-corp.example"), "250 2.0.0")
	wantPrefix(t, dataReply(t, ts, "From: x@acme.test\r\nFrom: ceo@b-corp.example"), "554 5.6.0 Message has 2 From")
}

// toBomb is a header of n To: fields (55,000 of them make 935 KB), with a From.
func toBomb(n int) string {
	var b strings.Builder
	b.WriteString("From: alice@acme.test\r\nSubject: bomb")
	for i := range n {
		fmt.Fprintf(&b, "\r\nTo: recipient%d@dest.test", i)
	}
	return b.String()
}

// TestHeaderBombRefused: a header of 55,000 To: fields (935 KB) is refused as soon as it has more fields
// than the bound, and a header of few but long fields by the size bound; folded lines are not fields; each
// refusal is logged once.
func TestHeaderBombRefused(t *testing.T) {
	bomb := toBomb(55000)
	if len(bomb) < 900_000 {
		t.Fatalf("the bomb is only %d bytes", len(bomb))
	}
	ts := startServer(t, func(o *Options) { o.MaxMessageSize = 4 << 20 })
	got := dataReply(t, ts, bomb)
	wantPrefix(t, got, "552 5.3.4 Too many header fields")
	wantRefusedOnce(t, ts, 0, queue.StageData, got)

	// Few fields, but long ones: 120 KB of References, folded.
	refs := "References: " + strings.Repeat("<0123456789.abcdefghij@mail.acme.test>\r\n ", 3000)
	before := len(ts.q.refusals())
	got = dataReply(t, ts, "From: alice@acme.test\r\n"+strings.TrimSuffix(refs, "\r\n "))
	wantPrefix(t, got, "552 5.3.4 Header section too large")
	wantRefusedOnce(t, ts, before, queue.StageData, got)
	if n := len(ts.q.all()); n != 0 {
		t.Fatalf("%d messages queued", n)
	}

	// The bound is the number of fields, not of lines.
	ts = startServer(t, func(o *Options) { o.MaxHeaderFields = 5 })
	folded := "From: alice@acme.test\r\nTo: a@dest.test,\r\n b@dest.test,\r\n\tc@dest.test\r\nSubject: x\r\nDate: now"
	wantPrefix(t, dataReply(t, ts, folded+"\r\nX-Five: 5"), "250 2.0.0")
	wantPrefix(t, dataReply(t, ts, folded+"\r\nX-Five: 5\r\nX-Six: 6"), "552 5.3.4 Too many header fields")
}
