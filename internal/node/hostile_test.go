package node_test

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"easymail/internal/config"
)

// hostile is a raw SMTP client for hostile sessions: it writes bytes as given and reads replies line by line.
type hostile struct {
	t    *testing.T
	conn net.Conn
	buf  []byte
}

// dialHostile connects from localIP; unless early it reads the greeting and returns it.
func dialHostile(t *testing.T, addr, localIP string, early bool) (*hostile, string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	h := &hostile{t: t, conn: conn}
	if early {
		return h, ""
	}
	return h, h.reply()
}

func (h *hostile) send(s string) {
	h.t.Helper()
	if _, err := h.conn.Write([]byte(s)); err != nil {
		h.t.Fatalf("write: %v", err)
	}
}

// reply reads one reply and returns its last line.
func (h *hostile) reply() string {
	h.t.Helper()
	for {
		if i := strings.Index(string(h.buf), "\r\n"); i >= 0 {
			line := string(h.buf[:i])
			h.buf = h.buf[i+2:]
			if len(line) >= 4 && line[3] == '-' {
				continue
			}
			return line
		}
		b := make([]byte, 4096)
		n, err := h.conn.Read(b)
		h.buf = append(h.buf, b[:n]...)
		if err != nil {
			h.t.Fatalf("reading a reply: %v (have %q)", err, h.buf)
		}
	}
}

func (h *hostile) cmd(line string) string {
	h.t.Helper()
	h.send(line + "\r\n")
	return h.reply()
}

// want checks that reply starts with prefix.
func want(t *testing.T, what, reply, prefix string) {
	t.Helper()
	if !strings.HasPrefix(reply, prefix) {
		t.Fatalf("%s: reply %q, want %q", what, reply, prefix)
	}
}

// closedByServer reports whether the server closed the connection within a few seconds.
func (h *hostile) closedByServer() bool {
	h.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 512)
	for {
		if _, err := h.conn.Read(b); err != nil {
			ne, ok := err.(net.Error)
			return !ok || !ne.Timeout()
		}
	}
}

// TestHostileSessions drives hostile clients against a running node and checks that each gets the right
// reply and that only the intended messages reach the fake MX hosts.
func TestHostileSessions(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.SMTP.MaxRecipients = 3
		// The early talker writes as soon as it is connected: half a second leaves it room on a busy machine.
		c.SMTP.PregreetDelay = 500 * time.Millisecond
		c.SMTP.DataTimeout = 1500 * time.Millisecond
		c.SMTP.SessionTimeout = 6 * time.Second
		c.SMTP.MaxErrors = 5
	})
	mx := e.mx(t, "dest.test", 11)
	evil := e.mx(t, "evil.test", 12)
	other := e.mx(t, "other.test", 13)
	addr := e.n.SMTPAddr
	// delivered lists what must reach dest.test, checked at the end.
	var delivered []string

	open := func(t *testing.T) *hostile {
		h, g := dialHostile(t, addr, "127.0.0.1", false)
		want(t, "greeting", g, "220 ")
		want(t, "EHLO", h.cmd("EHLO mta.acme.test"), "250 ")
		return h
	}

	t.Run("smuggling", func(t *testing.T) {
		// SMTP smuggling (CVE-2023-51764/51765/51766): only <CR><LF>.<CR><LF> ends DATA; every other line
		// ending is refused, and the "smuggled" commands after it are data, never commands.
		for name, v := range map[string]string{
			"bare LF":      "line\nmore",
			"bare CR":      "line\rmore",
			"LF.CRLF":      "line\n.\r\n",
			"CR.CRLF":      "line\r.\r\n",
			"LF.LF":        "line\n.\n",
			"CRLF.LF":      "line\r\n.\n",
			"NUL":          "line\x00more",
			"LF.LF at end": "\n.\n",
		} {
			h := open(t)
			want(t, name+" MAIL", h.cmd("MAIL FROM:<alice@acme.test>"), "250 ")
			want(t, name+" RCPT", h.cmd("RCPT TO:<bob@dest.test>"), "250 ")
			want(t, name+" DATA", h.cmd("DATA"), "354 ")
			h.send("From: alice@acme.test\r\nSubject: smuggle\r\n\r\n" + v +
				"MAIL FROM:<alice@acme.test>\r\nRCPT TO:<victim@dest.test>\r\nDATA\r\nFrom: alice@acme.test\r\n\r\nsmuggled\r\n.\r\n")
			want(t, name, h.reply(), "554 5.6.0")
			// The next reply is QUIT's: the smuggled commands got none.
			want(t, name+" QUIT", h.cmd("QUIT"), "221 ")
		}
	})

	t.Run("open relay patterns", func(t *testing.T) {
		h := open(t)
		want(t, "foreign sender", h.cmd("MAIL FROM:<mallory@evil.test>"), "550 5.7.1")
		want(t, "MAIL", h.cmd("MAIL FROM:<alice@acme.test>"), "250 ")
		want(t, "percent hack", h.cmd("RCPT TO:<victim%other.test@dest.test>"), "550 5.7.1")
		want(t, "bang path", h.cmd("RCPT TO:<other.test!victim@dest.test>"), "550 5.7.1")
		want(t, "quoted percent", h.cmd(`RCPT TO:<"victim%other.test"@dest.test>`), "550 5.7.1")
		want(t, "address literal", h.cmd("RCPT TO:<victim@[127.0.0.13]>"), "501 5.1.3")
		// A source route is ignored (RFC 5321 §3.6.1, Appendix C): the mail goes to the final mailbox
		// only, never through the route's hosts.
		want(t, "source route", h.cmd("RCPT TO:<@evil.test,@other.test:carol@dest.test>"), "250 ")
		// A quoted local part is accepted and passed on quoted.
		want(t, "quoted local part", h.cmd(`RCPT TO:<"john doe"@dest.test>`), "250 ")
		want(t, "DATA", h.cmd("DATA"), "354 ")
		want(t, "message", h.cmd("From: alice@acme.test\r\nSubject: routes\r\n\r\nhello\r\n."), "250 2.0.0")
		delivered = append(delivered, "routes")
		h.cmd("QUIT")
		got := mx.WaitMessages(t, 1, 15*time.Second)
		if len(got) != 1 || strings.Join(got[0].To, ",") != "carol@dest.test,john doe@dest.test" {
			t.Fatalf("delivered %d messages, the first to %q", len(got), got[0].To)
		}
	})

	t.Run("unregistered client", func(t *testing.T) {
		h, g := dialHostile(t, addr, "127.0.0.9", false)
		want(t, "greeting", g, "554 5.7.1")
		if !h.closedByServer() {
			t.Fatal("not disconnected")
		}
	})

	t.Run("early talker", func(t *testing.T) {
		h, _ := dialHostile(t, addr, "127.0.0.1", true)
		h.send("EHLO fast.test\r\nMAIL FROM:<alice@acme.test>\r\nRCPT TO:<bob@dest.test>\r\nDATA\r\n")
		want(t, "early talker", h.reply(), "554 5.5.1")
		if !h.closedByServer() {
			t.Fatal("not disconnected")
		}
	})

	t.Run("STARTTLS injection", func(t *testing.T) {
		h := open(t)
		h.send("STARTTLS\r\nMAIL FROM:<alice@acme.test>\r\nRCPT TO:<bob@dest.test>\r\n")
		want(t, "STARTTLS", h.reply(), "220 ")
		tc := tls.Client(h.conn, &tls.Config{InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		s := &hostile{t: t, conn: tc}
		want(t, "EHLO after TLS", s.cmd("EHLO mta.acme.test"), "250 ")
		want(t, "RCPT after TLS", s.cmd("RCPT TO:<bob@dest.test>"), "502 5.5.1")
		want(t, "NOOP", s.cmd("NOOP"), "250 ")
	})

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		h := open(t)
		want(t, "STARTTLS", h.cmd("STARTTLS"), "220 ")
		tc := tls.Client(h.conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err := tc.Handshake(); err == nil {
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})

	t.Run("oversized lines", func(t *testing.T) {
		h := open(t)
		want(t, "long command", h.cmd("MAIL FROM:<"+strings.Repeat("a", 3000)+"@acme.test>"), "500 5.4.0")
		if !h.closedByServer() {
			t.Fatal("not disconnected after a command line over 2000 bytes")
		}
		h = open(t)
		h.cmd("MAIL FROM:<alice@acme.test>")
		h.cmd("RCPT TO:<bob@dest.test>")
		want(t, "DATA", h.cmd("DATA"), "354 ")
		want(t, "long data line", h.cmd("From: alice@acme.test\r\n\r\n"+strings.Repeat("x", 3000)+"\r\n."), "554 5.6.0")
	})

	t.Run("too many recipients", func(t *testing.T) {
		h := open(t)
		h.cmd("MAIL FROM:<alice@acme.test>")
		for _, r := range []string{"r1", "r2", "r3"} {
			want(t, r, h.cmd("RCPT TO:<"+r+"@dest.test>"), "250 ")
		}
		want(t, "4th recipient", h.cmd("RCPT TO:<r4@dest.test>"), "452 4.5.3")
		want(t, "DATA", h.cmd("DATA"), "354 ")
		want(t, "message", h.cmd("From: alice@acme.test\r\nSubject: three\r\n\r\nx\r\n."), "250 2.0.0")
		delivered = append(delivered, "three")
	})

	t.Run("too many errors", func(t *testing.T) {
		h := open(t)
		for range 5 {
			want(t, "error", h.cmd("RCPT TO:<x@dest.test>"), "5")
			h.cmd("MAIL FROM:<mallory@evil.test>")
		}
		want(t, "over the error limit", h.cmd("MAIL FROM:<mallory@evil.test>"), "421 4.7.0")
		if !h.closedByServer() {
			t.Fatal("not disconnected after too many errors")
		}
	})

	t.Run("slow data", func(t *testing.T) {
		h := open(t)
		h.cmd("MAIL FROM:<alice@acme.test>")
		h.cmd("RCPT TO:<slow@dest.test>")
		want(t, "DATA", h.cmd("DATA"), "354 ")
		h.send("From: alice@acme.test\r\nSubject: slow\r\n\r\n")
		for range 5 {
			time.Sleep(400 * time.Millisecond)
			if _, err := h.conn.Write([]byte("x")); err != nil {
				break
			}
		}
		want(t, "slow data", h.reply(), "421 4.4.2")
		if !h.closedByServer() {
			t.Fatal("not disconnected after the data timeout")
		}
	})

	t.Run("slowloris session", func(t *testing.T) {
		// Timed from before the connection, so that the time measured is never shorter than the session's.
		start := time.Now()
		h := open(t)
		for time.Since(start) < 30*time.Second {
			time.Sleep(500 * time.Millisecond)
			h.send("NOOP\r\n")
			if r := h.reply(); strings.HasPrefix(r, "421 ") {
				want(t, "session timeout", r, "421 4.4.2")
				if el := time.Since(start); el < 5*time.Second {
					t.Fatalf("closed after %v, before the session timeout", el)
				}
				return
			}
		}
		t.Fatal("a slowloris session outlived the session timeout")
	})

	// Only the two intended messages reach dest.test; nothing reaches the hosts of the routes.
	mx.WaitMessages(t, len(delivered), 15*time.Second)
	// A moment for anything else to arrive (nothing may): an observation window, not a wait for an event.
	time.Sleep(500 * time.Millisecond)
	got := mx.Messages()
	if len(got) != len(delivered) {
		t.Fatalf("%d messages at dest.test, want %d", len(got), len(delivered))
	}
	for _, m := range got {
		for _, bad := range []string{"smuggled", "victim"} {
			if strings.Contains(string(m.Data), bad) || strings.Contains(strings.Join(m.To, ","), bad) {
				t.Fatalf("%q reached the MX: %+v", bad, m)
			}
		}
	}
	if n := len(evil.Messages()) + len(other.Messages()); n != 0 {
		t.Fatalf("%d messages reached the hosts of a source route or percent hack", n)
	}
}
