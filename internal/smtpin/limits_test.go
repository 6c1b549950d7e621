package smtpin

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"easymail/internal/ratelimit"
)

// fixedPolicies gives every customer the same policy.
type fixedPolicies ratelimit.CustomerPolicy

func (p fixedPolicies) Policy(string) ratelimit.CustomerPolicy { return ratelimit.CustomerPolicy(p) }

func wantPrefix(t *testing.T, got, want string) {
	t.Helper()
	if !strings.HasPrefix(got, want) {
		t.Fatalf("reply %q, want %q", got, want)
	}
}

// greet connects and returns the greeting line.
func greet(t *testing.T, addr, localIP string) (*rawClient, string) {
	t.Helper()
	c := dialRaw(t, addr, localIP)
	return c, c.reply()
}

func TestUnregisteredClientRefusedAtConnect(t *testing.T) {
	ts := startServer(t, nil)
	_, g := greet(t, ts.addr, "127.0.0.9")
	wantPrefix(t, g, "554 5.7.1")
}

func TestSessionCaps(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.Protection = Protection{MaxConnections: 3, MaxConnectionsPerIP: 2} })
	a, g := greet(t, ts.addr, "127.0.0.1")
	wantPrefix(t, g, "220 ")
	_, g = greet(t, ts.addr, "127.0.0.1")
	wantPrefix(t, g, "220 ")
	c, g := greet(t, ts.addr, "127.0.0.1")
	wantPrefix(t, g, "421 4.7.0")
	if !c.closed() {
		t.Fatal("a client over the per-IP cap is not disconnected")
	}
	// Closing a session gives its slot back.
	a.cmd("QUIT")
	a.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for ts.srv.guard.slots.Count("127.0.0.1") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d slots taken after a QUIT, want 1", ts.srv.guard.slots.Count("127.0.0.1"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, g = greet(t, ts.addr, "127.0.0.1")
	wantPrefix(t, g, "220 ")
}

func TestGlobalSessionCap(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.Protection = Protection{MaxConnections: 1} })
	_, g := greet(t, ts.addr, "127.0.0.1")
	wantPrefix(t, g, "220 ")
	_, g = greet(t, ts.addr, "127.0.0.1")
	wantPrefix(t, g, "421 4.7.0 Too many connections,")
}

func TestConnectionRatePerIP(t *testing.T) {
	ts := startServer(t, func(o *Options) {
		o.Protection = Protection{ConnectionRatePerIP: ratelimit.Rule{Limit: 2, Per: time.Minute}}
	})
	for range 2 {
		c, g := greet(t, ts.addr, "127.0.0.1")
		wantPrefix(t, g, "220 ")
		c.cmd("QUIT")
	}
	_, g := greet(t, ts.addr, "127.0.0.1")
	wantPrefix(t, g, "421 4.7.0 Too many new connections")
}

func TestEarlyTalkerRefused(t *testing.T) {
	// A second: the early talker's bytes, sent as soon as it is connected, are there long before the delay
	// ends, however slow the machine.
	ts := startServer(t, func(o *Options) { o.Protection = Protection{PregreetDelay: time.Second} })
	c := dialRaw(t, ts.addr, "127.0.0.1")
	c.send("EHLO early.test\r\nMAIL FROM:<alice@acme.test>\r\n")
	wantPrefix(t, c.reply(), "554 5.5.1")
	if !c.closed() {
		t.Fatal("an early talker is not disconnected")
	}
	c.conn.Close()
	// A client that waits for the greeting is served.
	ok, g := greet(t, ts.addr, "127.0.0.1")
	wantPrefix(t, g, "220 ")
	wantPrefix(t, ok.cmd("EHLO patient.test"), "250 ")
	deadline := time.Now().Add(5 * time.Second)
	for ts.srv.guard.slots.Total() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d slots taken, want 1 (the early talker's must be given back)", ts.srv.guard.slots.Total())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMaxErrorsClosesSession(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.Protection = Protection{MaxErrors: 3} })
	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO a.test")
	for range 3 {
		wantPrefix(t, c.cmd("MAIL FROM:<mallory@evil.test>"), "550 5.7.1")
	}
	wantPrefix(t, c.cmd("MAIL FROM:<mallory@evil.test>"), "421 4.7.0")
	if !c.closed() {
		t.Fatal("the session is not closed after too many errors")
	}
	// An accepted message resets the count.
	c, _ = greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO a.test")
	for range 3 {
		wantPrefix(t, c.cmd("MAIL FROM:<mallory@evil.test>"), "550 5.7.1")
	}
	sendMessage(t, c, "alice@acme.test", "bob@dest.test")
	for range 3 {
		wantPrefix(t, c.cmd("MAIL FROM:<mallory@evil.test>"), "550 5.7.1")
	}
}

// sendMessage sends one message in an open session and checks the 250.
func sendMessage(t *testing.T, c *rawClient, from, to string) string {
	t.Helper()
	wantPrefix(t, c.cmd("MAIL FROM:<"+from+">"), "250 ")
	wantPrefix(t, c.cmd("RCPT TO:<"+to+">"), "250 ")
	wantPrefix(t, c.cmd("DATA"), "354 ")
	r := c.cmd("From: " + from + "\r\nSubject: t\r\n\r\nbody\r\n.")
	wantPrefix(t, r, "250 2.0.0")
	return r
}

func TestDataTimeoutClosesSession(t *testing.T) {
	// The read timeout is far longer than the data timeout, so that only the data timeout can end the wait.
	ts := startServer(t, func(o *Options) {
		o.Protection = Protection{DataTimeout: 500 * time.Millisecond}
		o.ReadTimeout = time.Minute
	})
	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO a.test")
	c.cmd("MAIL FROM:<alice@acme.test>")
	c.cmd("RCPT TO:<bob@dest.test>")
	wantPrefix(t, c.cmd("DATA"), "354 ")
	c.send("From: alice@acme.test\r\n\r\nslow")
	start := time.Now()
	wantPrefix(t, c.reply(), "421 4.4.2")
	if el := time.Since(start); el > 30*time.Second {
		t.Fatalf("the data deadline fired after %v", el)
	}
	// Whatever the client sends next is not read as commands.
	c.conn.Write([]byte("\r\n.\r\nMAIL FROM:<alice@acme.test>\r\n"))
	if !c.closed() {
		t.Fatal("the session is not closed after a data timeout")
	}
	if n := len(ts.q.all()); n != 0 {
		t.Fatalf("%d messages queued", n)
	}
}

func TestSessionTimeout(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.Protection = Protection{SessionTimeout: 800 * time.Millisecond} })
	// Timed from before the connection: the time measured is never shorter than the session's.
	start := time.Now()
	c, _ := greet(t, ts.addr, "127.0.0.1")
	// A slowloris keeps each command under the read timeout (5s) but the session still ends, with a 421
	// that comes unasked or as the answer to the next command.
	noops := 0
	for {
		time.Sleep(200 * time.Millisecond) // the slowloris's pace
		r := c.cmd("NOOP")
		if strings.HasPrefix(r, "421 ") {
			wantPrefix(t, r, "421 4.4.2")
			break
		}
		wantPrefix(t, r, "250 ")
		noops++
		if time.Since(start) > 20*time.Second {
			t.Fatal("the session outlived its deadline")
		}
	}
	if el := time.Since(start); el < 800*time.Millisecond || noops == 0 {
		t.Fatalf("the session ended after %v and %d NOOPs, before its deadline", el, noops)
	}
	if !c.closed() {
		t.Fatal("the session is not closed after its deadline")
	}
}

func TestCustomerRateLimits(t *testing.T) {
	pol := fixedPolicies{Limits: ratelimit.CustomerLimits{MessagesPerMinute: 2, RecipientsPerMinute: 3}}
	ts := startServer(t, func(o *Options) {
		o.Protection = Protection{Limiter: ratelimit.NewLocal(nil), Policies: pol}
	})
	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO a.test")
	sendMessage(t, c, "alice@acme.test", "a@dest.test")
	wantPrefix(t, c.cmd("MAIL FROM:<alice@acme.test>"), "250 ")
	wantPrefix(t, c.cmd("RCPT TO:<b@dest.test>"), "250 ")
	wantPrefix(t, c.cmd("RCPT TO:<c@dest.test>"), "250 ")
	wantPrefix(t, c.cmd("RCPT TO:<d@dest.test>"), "451 4.7.0 Rate limit exceeded for your recipients")
	c.cmd("RSET")
	wantPrefix(t, c.cmd("MAIL FROM:<alice@acme.test>"), "451 4.7.0 Rate limit exceeded for your messages")
}

func TestHeldCustomerMailIsQueuedHeld(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.Protection = Protection{Policies: fixedPolicies{Held: true}} })
	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO a.test")
	sendMessage(t, c, "alice@acme.test", "bob@dest.test")
	q := ts.q.all()
	if len(q) != 1 || !q[0].Held {
		t.Fatalf("queued %+v, want one held message", q)
	}
}

func TestAddressChecks(t *testing.T) {
	ts := startServer(t, nil)
	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO a.test")
	wantPrefix(t, c.cmd("MAIL FROM:<alice@acme.test>"), "250 ")
	for _, tc := range []struct{ rcpt, want string }{
		{"<user%other.test@dest.test>", "550 5.7.1"},
		{"<a!b@dest.test>", "550 5.7.1"},
		{"<\"a%b\"@dest.test>", "550 5.7.1"},
		{"<j\u00f6rg@dest.test>", "553 5.6.7"},
		{"<x@[192.0.2.1]>", "501 5.1.3"},
		{"<x@localhost>", "501 5.1.3"},
		{"<x@bad_domain!.test>", "501 5.1.3"},
		{"<\"john doe\"@dest.test>", "250 "},
		{"<@relay.test,@other.test:carol@dest.test>", "250 "},
	} {
		wantPrefix(t, c.cmd("RCPT TO:"+tc.rcpt), tc.want)
	}
	wantPrefix(t, c.cmd("DATA"), "354 ")
	wantPrefix(t, c.cmd("From: alice@acme.test\r\n\r\nx\r\n."), "250 ")
	q := ts.q.all()
	if len(q) != 1 || len(q[0].Recipients) != 2 || q[0].Recipients[0].Address != `"john doe"@dest.test` ||
		q[0].Recipients[1].Address != "carol@dest.test" {
		t.Fatalf("queued %+v", q)
	}
}

func TestNoAuthAdvertised(t *testing.T) {
	dir := t.TempDir()
	conf, err := TLSConfig("", "", dir, "relay.test")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) { o.TLS = conf })
	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.send("EHLO a.test\r\n")
	var lines []string
	for {
		l, err := c.readLineRaw()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
		if strings.HasPrefix(l, "250 ") {
			break
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "AUTH") {
			t.Fatalf("AUTH advertised: %q", lines)
		}
	}
	if !strings.Contains(strings.Join(lines, "\n"), "STARTTLS") {
		t.Fatalf("STARTTLS not advertised: %q", lines)
	}
	wantPrefix(t, c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), "5")
}

// readLineRaw reads one reply line.
func (c *rawClient) readLineRaw() (string, error) {
	for {
		if i := strings.Index(string(c.buf), "\r\n"); i >= 0 {
			line := string(c.buf[:i])
			c.buf = c.buf[i+2:]
			return line, nil
		}
		b := make([]byte, 4096)
		n, err := c.conn.Read(b)
		c.buf = append(c.buf, b[:n]...)
		if err != nil {
			return "", err
		}
	}
}

func TestTLSVersions(t *testing.T) {
	conf, err := TLSConfig("", "", t.TempDir(), "relay.test")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) { o.TLS = conf })
	for _, tc := range []struct {
		max uint16
		ok  bool
	}{{tls.VersionTLS10, false}, {tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		c, _ := greet(t, ts.addr, "127.0.0.1")
		c.cmd("EHLO a.test")
		wantPrefix(t, c.cmd("STARTTLS"), "220 ")
		tc2 := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tc.max})
		err := tc2.Handshake()
		if (err == nil) != tc.ok {
			t.Fatalf("TLS max version %x: handshake error %v, want ok=%v", tc.max, err, tc.ok)
		}
		c.conn.Close()
	}
}

func TestStartTLSDiscardsPipelinedCommands(t *testing.T) {
	conf, err := TLSConfig("", "", t.TempDir(), "relay.test")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) { o.TLS = conf })
	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO a.test")
	// CVE-2011-0411: commands injected after STARTTLS, in the same packet, must not survive the handshake.
	c.send("STARTTLS\r\nMAIL FROM:<alice@acme.test>\r\nRCPT TO:<bob@dest.test>\r\n")
	wantPrefix(t, c.reply(), "220 ")
	if len(c.buf) != 0 {
		t.Fatalf("replies to injected commands before TLS: %q", c.buf)
	}
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	s := &rawClient{tb: t, conn: tc}
	wantPrefix(t, s.cmd("EHLO a.test"), "250 ")
	// Had MAIL been kept, RCPT would be accepted; the session starts over instead.
	wantPrefix(t, s.cmd("RCPT TO:<bob@dest.test>"), "502 5.5.1")
	wantPrefix(t, s.cmd("NOOP"), "250 ")
}
