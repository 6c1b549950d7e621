package smtpin

import (
	"crypto/tls"
	"fmt"
	"testing"
)

// TestNestedMailRefused: a second MAIL inside a transaction gets 503 5.5.1 (RFC 5321 §4.1.4), and the
// transaction in progress keeps its sender.
func TestNestedMailRefused(t *testing.T) {
	ts := startServer(t, nil)
	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO a.test")
	wantPrefix(t, c.cmd("MAIL FROM:<alice@acme.test>"), "250 ")
	wantPrefix(t, c.cmd("MAIL FROM:<other@acme.test>"), "503 5.5.1")
	wantPrefix(t, c.cmd("RCPT TO:<bob@dest.test>"), "250 ")
	wantPrefix(t, c.cmd("DATA"), "354 ")
	wantPrefix(t, c.cmd("From: alice@acme.test\r\n\r\nbody\r\n."), "250 2.0.0")
	if q := ts.q.all(); len(q) != 1 || q[0].Sender != "alice@acme.test" {
		t.Fatalf("queued %+v, want one message from alice@acme.test", q)
	}
	// After the transaction, MAIL starts the next one.
	wantPrefix(t, c.cmd("MAIL FROM:<other@acme.test>"), "250 ")
	c.cmd("RSET")
	wantPrefix(t, c.cmd("MAIL FROM:<other@acme.test>"), "250 ")
}

// TestStartTLSWithParametersRefused: STARTTLS takes no parameters (RFC 3207 §4): with one it gets 501 5.5.4
// and the session goes on in plain text; a content line that looks like one, or white space after the
// command, changes nothing; a plain STARTTLS then starts TLS.
func TestStartTLSWithParametersRefused(t *testing.T) {
	conf, err := TLSConfig("", "", t.TempDir(), "relay.test")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) { o.TLS = conf })
	c, _ := greet(t, ts.addr, "127.0.0.1")
	wantPrefix(t, c.cmd("EHLO a.test"), "250 ")
	wantPrefix(t, c.cmd("STARTTLS foo"), "501 5.5.4")
	// The session is still in plain text, and the refused handshake left no reply behind.
	wantPrefix(t, c.cmd("NOOP"), "250 2.0.0")
	// Pipelined behind another command, and in lower case.
	c.send("NOOP\r\nstarttls now please\r\n")
	wantPrefix(t, c.reply(), "250 2.0.0")
	wantPrefix(t, c.reply(), "501 5.5.4")
	// A message whose content has such a line, in plain text.
	wantPrefix(t, c.cmd("MAIL FROM:<alice@acme.test>"), "250 ")
	wantPrefix(t, c.cmd("RCPT TO:<bob@dest.test>"), "250 ")
	wantPrefix(t, c.cmd("DATA"), "354 ")
	wantPrefix(t, c.cmd("From: alice@acme.test\r\n\r\nSTARTTLS now\r\n."), "250 2.0.0")
	if len(c.buf) != 0 {
		t.Fatalf("unexpected replies: %q", c.buf)
	}
	// White space after the command is no parameter.
	wantPrefix(t, c.cmd("STARTTLS  "), "220 ")
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	s := &rawClient{tb: t, conn: tc}
	wantPrefix(t, s.cmd("EHLO a.test"), "250 ")
	wantPrefix(t, s.cmd("MAIL FROM:<alice@acme.test>"), "250 ")
}

// TestOverLimitRecipientsAreNotSessionErrors: a client with more recipients than the limit gets 452 4.5.3 for
// the excess, which are not session errors, and sends the message to the recipients accepted.
func TestOverLimitRecipientsAreNotSessionErrors(t *testing.T) {
	ts := startServer(t, func(o *Options) {
		o.MaxRecipients = 3
		o.Protection = Protection{MaxErrors: 5}
	})
	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO a.test")
	wantPrefix(t, c.cmd("MAIL FROM:<alice@acme.test>"), "250 ")
	for i := range 10 {
		want := "250 "
		if i >= 3 {
			want = "452 4.5.3"
		}
		wantPrefix(t, c.cmd(fmt.Sprintf("RCPT TO:<r%d@dest.test>", i)), want)
	}
	wantPrefix(t, c.cmd("DATA"), "354 ")
	wantPrefix(t, c.cmd("From: alice@acme.test\r\n\r\nbody\r\n."), "250 2.0.0")
	q := ts.q.all()
	if len(q) != 1 || len(q[0].Recipients) != 3 {
		t.Fatalf("queued %+v, want one message to 3 recipients", q)
	}
	if n := len(ts.q.refusals()); n != 0 {
		t.Fatalf("%d refusals logged for deferred recipients", n)
	}
	// The session is still usable, and real errors are still counted.
	for range 5 {
		wantPrefix(t, c.cmd("MAIL FROM:<mallory@evil.test>"), "550 5.7.1")
	}
	wantPrefix(t, c.cmd("MAIL FROM:<mallory@evil.test>"), "421 4.7.0")
	if !c.closed() {
		t.Fatal("the session is not closed after too many errors")
	}
}
