package delivery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"easymail/internal/resolver"
)

var (
	mx1 = resolver.MX{Host: "mx1.dest.example", Pref: 10}
	mx2 = resolver.MX{Host: "mx2.dest.example", Pref: 20}
)

func TestDeliverEnvelopeSourceAndHELO(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.setMX("dest.example", mx1)
	d := e.deliverer(nil)

	j := job("dest.example", "x@dest.example", "y@dest.example")
	j.EightBit = true
	res := d.Deliver(context.Background(), j)
	wantOK(t, res)
	if res.RemoteMX != "mx1.dest.example" || res.RemoteIP != "127.0.0.11" || res.LocalIP != "127.0.0.2" {
		t.Errorf("result MX %q IP %q local %q", res.RemoteMX, res.RemoteIP, res.LocalIP)
	}
	if res.TLS != "" || res.Started.IsZero() || res.Duration <= 0 {
		t.Errorf("result TLS %q started %v duration %v", res.TLS, res.Started, res.Duration)
	}
	if len(res.Rcpts) != 2 || res.Rcpts[0].Rcpt != "x@dest.example" || res.Rcpts[1].Rcpt != "y@dest.example" {
		t.Errorf("recipient results %+v", res.Rcpts)
	}

	got := m.WaitMessages(t, 1, 5*time.Second)[0]
	if got.From != "a@sender.example" || !slices.Equal(got.To, []string{"x@dest.example", "y@dest.example"}) {
		t.Errorf("envelope %q -> %q", got.From, got.To)
	}
	if string(got.Data) != testBody {
		t.Errorf("data %q, want %q", got.Data, testBody)
	}
	if got.RemoteIP != "127.0.0.2" || got.HELO != "out1.relay.test" {
		t.Errorf("came from %s as %q, want 127.0.0.2 as out1.relay.test", got.RemoteIP, got.HELO)
	}
	if got.Body != "8BITMIME" || got.Size != int64(len(testBody)) || got.SMTPUTF8 {
		t.Errorf("MAIL parameters BODY=%q SIZE=%d SMTPUTF8=%v", got.Body, got.Size, got.SMTPUTF8)
	}

	// Another source address, another HELO; a 7-bit message goes without BODY.
	j = job("dest.example", "z@dest.example")
	j.Source = source2
	res = d.Deliver(context.Background(), j)
	wantOK(t, res)
	got = m.WaitMessages(t, 2, 5*time.Second)[1]
	if got.RemoteIP != "127.0.0.3" || got.HELO != "out2.relay.test" || res.LocalIP != "127.0.0.3" {
		t.Errorf("came from %s as %q (result says %s), want 127.0.0.3 as out2.relay.test",
			got.RemoteIP, got.HELO, res.LocalIP)
	}
	if got.Body != "" {
		t.Errorf("7-bit message sent with BODY=%s", got.Body)
	}
}

func TestDeliverMXPreference(t *testing.T) {
	e := newEnv(t)
	m1 := e.mx("mx1.dest.example", "127.0.0.11")
	m2 := e.mx("mx2.dest.example", "127.0.0.12")
	// Listed in the wrong order: the preference decides.
	e.dns.setMX("dest.example", mx2, mx1)
	d := e.deliverer(nil)

	res := d.Deliver(context.Background(), job("dest.example", "x@dest.example"))
	wantOK(t, res)
	if res.RemoteMX != "mx1.dest.example" || len(m1.Messages()) != 1 || m2.Connections() != 0 {
		t.Fatalf("delivered via %s; mx1 has %d messages, mx2 %d connections",
			res.RemoteMX, len(m1.Messages()), m2.Connections())
	}
	if !slices.Equal(e.dns.ipLookups, []string{"mx1.dest.example"}) {
		t.Fatalf("addresses looked up for %q, want only mx1's while it works", e.dns.ipLookups)
	}
}

func TestDeliverFallsBackToNextMX(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		e := newEnv(t)
		e.dns.setIP("mx1.dest.example", "127.0.0.11") // nothing listens there (the port is held: refused)
		m2 := e.mx("mx2.dest.example", "127.0.0.12")
		e.dns.setMX("dest.example", mx1, mx2)
		res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
		wantOK(t, res)
		if res.RemoteMX != "mx2.dest.example" || len(m2.Messages()) != 1 {
			t.Fatalf("delivered via %s, mx2 has %d messages", res.RemoteMX, len(m2.Messages()))
		}
	})
	t.Run("hang-up after greeting", func(t *testing.T) {
		e := newEnv(t)
		m1 := e.mx("mx1.dest.example", "127.0.0.11")
		m1.HangUpAfterGreeting(true)
		m2 := e.mx("mx2.dest.example", "127.0.0.12")
		e.dns.setMX("dest.example", mx1, mx2)
		res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
		wantOK(t, res)
		if m1.Connections() != 1 || res.RemoteMX != "mx2.dest.example" || len(m2.Messages()) != 1 {
			t.Fatalf("mx1 %d connections; delivered via %s, mx2 has %d messages",
				m1.Connections(), res.RemoteMX, len(m2.Messages()))
		}
	})
	t.Run("slow server", func(t *testing.T) {
		e := newEnv(t)
		m1 := e.mx("mx1.dest.example", "127.0.0.11")
		// mx1 answers far later than the command timeout, which mx2 meets with ease on a busy machine.
		m1.SetDelay(10 * time.Second)
		m2 := e.mx("mx2.dest.example", "127.0.0.12")
		e.dns.setMX("dest.example", mx1, mx2)
		d := e.deliverer(func(o *Options) { o.CommandTimeout = 2 * time.Second })
		res := d.Deliver(context.Background(), job("dest.example", "x@dest.example"))
		wantOK(t, res)
		if res.RemoteMX != "mx2.dest.example" || len(m2.Messages()) != 1 || len(m1.Messages()) != 0 {
			t.Fatalf("delivered via %s; mx1 has %d messages, mx2 %d",
				res.RemoteMX, len(m1.Messages()), len(m2.Messages()))
		}
	})
	t.Run("421 at MAIL FROM", func(t *testing.T) {
		e := newEnv(t)
		m1 := e.mx("mx1.dest.example", "127.0.0.11")
		m1.FailNext(1, 421, [3]int{4, 3, 2}, "Shutting down")
		m2 := e.mx("mx2.dest.example", "127.0.0.12")
		e.dns.setMX("dest.example", mx1, mx2)
		res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
		wantOK(t, res)
		if res.RemoteMX != "mx2.dest.example" || len(m2.Messages()) != 1 {
			t.Fatalf("delivered via %s, mx2 has %d messages", res.RemoteMX, len(m2.Messages()))
		}
	})
	t.Run("421 at RCPT TO", func(t *testing.T) {
		e := newEnv(t)
		m1 := e.mx("mx1.dest.example", "127.0.0.11")
		m1.Reply("x@dest.example", 421, [3]int{4, 3, 2}, "Shutting down")
		m2 := e.mx("mx2.dest.example", "127.0.0.12")
		e.dns.setMX("dest.example", mx1, mx2)
		res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
		wantOK(t, res)
		if res.RemoteMX != "mx2.dest.example" || len(m2.Messages()) != 1 {
			t.Fatalf("delivered via %s, mx2 has %d messages", res.RemoteMX, len(m2.Messages()))
		}
	})
	t.Run("554 greeting", func(t *testing.T) {
		e := newEnv(t)
		refusingServer(t, e.mxp.Listen(t, "127.0.0.11"), "554 5.3.2 No service here")
		e.dns.setIP("mx1.dest.example", "127.0.0.11")
		m2 := e.mx("mx2.dest.example", "127.0.0.12")
		e.dns.setMX("dest.example", mx1, mx2)
		res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
		wantOK(t, res)
		if res.RemoteMX != "mx2.dest.example" || len(m2.Messages()) != 1 {
			t.Fatalf("delivered via %s, mx2 has %d messages", res.RemoteMX, len(m2.Messages()))
		}
	})
}

// refusingServer greets every connection accepted on ln with greeting, then closes it.
func refusingServer(t *testing.T, ln net.Listener, greeting string) {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\r\n", greeting)
			// Wait for QUIT (or anything) before closing.
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
	})
}

func TestDeliverNoHostReached(t *testing.T) {
	t.Run("all refuse connections", func(t *testing.T) {
		e := newEnv(t)
		e.dns.setIP("mx1.dest.example", "127.0.0.11")
		e.dns.setIP("mx2.dest.example", "127.0.0.12")
		e.dns.setMX("dest.example", mx1, mx2)
		res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example", "y@dest.example"))
		err := wantAll(t, res, 451, [3]int{4, 4, 1})
		if !strings.Contains(err.Message, "No MX host could be reached") {
			t.Errorf("message %q", err.Message)
		}
		if res.RemoteMX != "mx2.dest.example" || res.RemoteIP != "127.0.0.12" {
			t.Errorf("last MX tried %s [%s], want mx2.dest.example", res.RemoteMX, res.RemoteIP)
		}
	})
	t.Run("greeting refusal kept", func(t *testing.T) {
		e := newEnv(t)
		refusingServer(t, e.mxp.Listen(t, "127.0.0.11"), "554 5.3.2 No service here")
		e.dns.setIP("mx1.dest.example", "127.0.0.11")
		e.dns.setMX("dest.example", mx1)
		res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
		err := wantAll(t, res, 451, [3]int{4, 4, 1})
		want := "remote host mx1.dest.example said: 554 5.3.2 No service here"
		if !strings.Contains(err.Message, "No MX host could be reached") || !strings.Contains(err.Message, want) {
			t.Errorf("message %q, want the last reply %q in it", err.Message, want)
		}
	})
	t.Run("no address of the source's family", func(t *testing.T) {
		e := newEnv(t)
		e.dns.setIP("mx1.dest.example", "::1")
		e.dns.setMX("dest.example", mx1)
		res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
		wantAll(t, res, 451, [3]int{4, 4, 1})
	})
}

func TestDeliverUsesOnlySourceFamily(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.ip["mx1.dest.example"] = []net.IP{net.ParseIP("::1"), net.ParseIP("127.0.0.11")}
	e.dns.setMX("dest.example", mx1)
	var mu sync.Mutex
	var dialed []string
	d := e.deliverer(func(o *Options) {
		o.Dial = func(ctx context.Context, network string, local, remote netip.AddrPort) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, network+" "+local.Addr().String()+" "+remote.String())
			mu.Unlock()
			return dialFrom(ctx, network, local, remote)
		}
	})
	wantOK(t, d.Deliver(context.Background(), job("dest.example", "x@dest.example")))
	want := []string{fmt.Sprintf("tcp4 127.0.0.2 127.0.0.11:%d", e.mxp.Port())}
	if !slices.Equal(dialed, want) || len(m.Messages()) != 1 {
		t.Fatalf("dialed %q, want %q", dialed, want)
	}
}

func TestDeliverImplicitMX(t *testing.T) {
	e := newEnv(t)
	m := e.mx("dest.example", "127.0.0.11") // an A record for the domain, no MX
	res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
	wantOK(t, res)
	if res.RemoteMX != "dest.example" || len(m.Messages()) != 1 {
		t.Fatalf("delivered via %q, %d messages", res.RemoteMX, len(m.Messages()))
	}
}

func TestDeliverNoSuchDomain(t *testing.T) {
	e := newEnv(t)
	res := e.deliverer(nil).Deliver(context.Background(), job("nowhere.example", "x@nowhere.example"))
	wantAll(t, res, 550, [3]int{5, 1, 2})
}

func TestDeliverNullMX(t *testing.T) {
	e := newEnv(t)
	m := e.mx("dest.example", "127.0.0.11") // would be the implicit MX: must not be used
	e.dns.setMX("dest.example", resolver.MX{Host: "", Pref: 0})
	res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example", "y@dest.example"))
	wantAll(t, res, 556, [3]int{5, 1, 10})
	if m.Connections() != 0 {
		t.Fatal("connected to a domain with a null MX")
	}
	e.dns.setMX("dest.example", resolver.MX{Host: "", Pref: 0}, resolver.MX{Host: "", Pref: 10})
	res = e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
	wantAll(t, res, 556, [3]int{5, 1, 10})
}

func TestDeliverDNSFailure(t *testing.T) {
	t.Run("MX", func(t *testing.T) {
		e := newEnv(t)
		e.dns.mxErr["dest.example"] = errServFail
		res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
		if err := wantAll(t, res, 451, [3]int{4, 4, 3}); !err.Temporary() {
			t.Fatal("DNS failure is not temporary")
		}
	})
	t.Run("address of the only MX", func(t *testing.T) {
		e := newEnv(t)
		e.dns.setMX("dest.example", mx1)
		e.dns.ipErr["mx1.dest.example"] = errServFail
		res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
		wantAll(t, res, 451, [3]int{4, 4, 3})
	})
	t.Run("address of one MX", func(t *testing.T) {
		e := newEnv(t)
		e.dns.setMX("dest.example", mx1, mx2)
		e.dns.ipErr["mx1.dest.example"] = errServFail
		m2 := e.mx("mx2.dest.example", "127.0.0.12")
		wantOK(t, e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example")))
		if len(m2.Messages()) != 1 {
			t.Fatal("not delivered to the MX whose address resolved")
		}
	})
}

func TestDeliverRecipientReplies(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.setMX("dest.example", mx1)
	m.Reply("bad@dest.example", 550, [3]int{5, 1, 1}, "No such user")
	m.Reply("busy@dest.example", 450, [3]int{4, 2, 1}, "Mailbox busy")
	d := e.deliverer(nil)

	res := d.Deliver(context.Background(), job("dest.example", "bad@dest.example", "good@dest.example", "busy@dest.example"))
	wantErr(t, res.Rcpts[0], 550, [3]int{5, 1, 1})
	if res.Rcpts[1].Err != nil {
		t.Fatalf("good recipient: %v", res.Rcpts[1].Err)
	}
	wantErr(t, res.Rcpts[2], 450, [3]int{4, 2, 1})
	if want := "remote host mx1.dest.example said: 550 5.1.1 No such user"; res.Rcpts[0].Err.Message != want {
		t.Errorf("message %q, want %q", res.Rcpts[0].Err.Message, want)
	}
	if res.Rcpts[0].Err.Temporary() || !res.Rcpts[2].Err.Temporary() {
		t.Error("550 must be permanent and 450 temporary")
	}
	got := m.WaitMessages(t, 1, 5*time.Second)[0]
	if !slices.Equal(got.To, []string{"good@dest.example"}) {
		t.Errorf("message went to %q", got.To)
	}

	// No recipient accepted: no DATA, and the connection stays usable.
	res = d.Deliver(context.Background(), job("dest.example", "bad@dest.example", "busy@dest.example"))
	wantErr(t, res.Rcpts[0], 550, [3]int{5, 1, 1})
	wantErr(t, res.Rcpts[1], 450, [3]int{4, 2, 1})
	wantOK(t, d.Deliver(context.Background(), job("dest.example", "good@dest.example")))
	if n, c := len(m.Messages()), m.Connections(); n != 2 || c != 1 {
		t.Fatalf("%d messages over %d connections, want 2 over 1", n, c)
	}
}

func TestDeliverDataReplyAppliesToAll(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.setMX("dest.example", mx1)
	m.Reply("bad@dest.example", 550, [3]int{5, 1, 1}, "No such user")
	m.ReplyData(554, [3]int{5, 7, 1}, "Message refused as spam")
	d := e.deliverer(nil)

	res := d.Deliver(context.Background(), job("dest.example", "x@dest.example", "bad@dest.example", "y@dest.example"))
	wantErr(t, res.Rcpts[0], 554, [3]int{5, 7, 1})
	wantErr(t, res.Rcpts[1], 550, [3]int{5, 1, 1})
	wantErr(t, res.Rcpts[2], 554, [3]int{5, 7, 1})
	if want := "remote host mx1.dest.example said: 554 5.7.1 Message refused as spam"; res.Rcpts[0].Err.Message != want {
		t.Errorf("message %q, want %q", res.Rcpts[0].Err.Message, want)
	}

	m.ReplyData(451, [3]int{4, 7, 1}, "Greylisted")
	res = d.Deliver(context.Background(), job("dest.example", "x@dest.example"))
	wantAll(t, res, 451, [3]int{4, 7, 1})
}

func TestDeliverMailFromRefused(t *testing.T) {
	e := newEnv(t)
	m1 := e.mx("mx1.dest.example", "127.0.0.11")
	m2 := e.mx("mx2.dest.example", "127.0.0.12")
	e.dns.setMX("dest.example", mx1, mx2)
	d := e.deliverer(nil)

	m1.FailNext(1, 550, [3]int{5, 7, 1}, "Sender blocked")
	res := d.Deliver(context.Background(), job("dest.example", "x@dest.example", "y@dest.example"))
	wantAll(t, res, 550, [3]int{5, 7, 1})

	m1.FailNext(1, 451, [3]int{4, 7, 1}, "Try again later")
	res = d.Deliver(context.Background(), job("dest.example", "x@dest.example"))
	wantAll(t, res, 451, [3]int{4, 7, 1})
	if m2.Connections() != 0 {
		t.Fatal("a transaction refusal made the next MX be tried")
	}
}

func TestDeliverSTARTTLS(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	m.EnableTLS()
	e.dns.setMX("dest.example", mx1)
	res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
	wantOK(t, res)
	got := m.WaitMessages(t, 1, 5*time.Second)[0]
	if !got.TLS || got.HELO != "out1.relay.test" {
		t.Fatalf("received with TLS %v, HELO %q", got.TLS, got.HELO)
	}
	if !strings.HasPrefix(res.TLS, "TLS1.") || !strings.Contains(res.TLS, " TLS_") {
		t.Fatalf("result TLS %q, want like \"TLS1.3 TLS_AES_128_GCM_SHA256\"", res.TLS)
	}
}

func TestDeliverTLSHandshakeFailureFallsBackToPlain(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	m.BreakTLS()
	e.dns.setMX("dest.example", mx1)
	res := e.deliverer(nil).Deliver(context.Background(), job("dest.example", "x@dest.example"))
	wantOK(t, res)
	got := m.WaitMessages(t, 1, 5*time.Second)[0]
	if got.TLS || res.TLS != "" || m.Connections() != 2 {
		t.Fatalf("TLS %v / %q over %d connections, want plain text on a second connection",
			got.TLS, res.TLS, m.Connections())
	}
}

func TestDeliverReusesConnection(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	m.EnableTLS()
	e.dns.setMX("dest.example", mx1)
	d := e.deliverer(nil)

	for i := range 3 {
		res := d.Deliver(context.Background(), job("dest.example", fmt.Sprintf("r%d@dest.example", i)))
		wantOK(t, res)
		if res.TLS == "" {
			t.Fatalf("delivery %d: reused connection lost its TLS description", i)
		}
	}
	if n, c := len(m.Messages()), m.Connections(); n != 3 || c != 1 {
		t.Fatalf("%d messages over %d connections, want 3 over 1", n, c)
	}
	for _, msg := range m.Messages() {
		if !msg.TLS || msg.HELO != "out1.relay.test" {
			t.Fatalf("message over a reused connection: TLS %v, HELO %q", msg.TLS, msg.HELO)
		}
	}

	// Another source address needs its own connection.
	j := job("dest.example", "s2@dest.example")
	j.Source = source2
	wantOK(t, d.Deliver(context.Background(), j))
	if c := m.Connections(); c != 2 {
		t.Fatalf("%d connections after a delivery from another source, want 2", c)
	}

	if n := d.pool.size(); n != 2 {
		t.Fatalf("%d idle connections, want 2", n)
	}
	d.Close()
	if n := d.pool.size(); n != 0 {
		t.Fatalf("%d idle connections after Close", n)
	}
}

func TestDeliverIdleConnectionExpires(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.setMX("dest.example", mx1)
	d := e.deliverer(func(o *Options) { o.IdleTimeout = 50 * time.Millisecond })

	wantOK(t, d.Deliver(context.Background(), job("dest.example", "x@dest.example")))
	deadline := time.Now().Add(5 * time.Second)
	for d.pool.size() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle connection not closed after IdleTimeout")
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantOK(t, d.Deliver(context.Background(), job("dest.example", "y@dest.example")))
	if c := m.Connections(); c != 2 {
		t.Fatalf("%d connections, want 2 (the first one expired)", c)
	}
}

func TestDeliverRedialsDeadIdleConnection(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.setMX("dest.example", mx1)
	d := e.deliverer(nil)

	wantOK(t, d.Deliver(context.Background(), job("dest.example", "x@dest.example")))
	m.DropConnections()
	res := d.Deliver(context.Background(), job("dest.example", "y@dest.example"))
	wantOK(t, res)
	if n, c := len(m.Messages()), m.Connections(); n != 2 || c != 2 {
		t.Fatalf("%d messages over %d connections, want 2 over 2", n, c)
	}
}

func TestDeliverPerDestinationLimit(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	m.SetDelay(20 * time.Millisecond)
	e.dns.setMX("dest.example", mx1)
	const limit, jobs = 2, 8
	d := e.deliverer(func(o *Options) { o.MaxPerDestination = limit })

	var wg sync.WaitGroup
	results := make([]Result, jobs)
	for i := range jobs {
		wg.Go(func() {
			results[i] = d.Deliver(context.Background(), job("dest.example", fmt.Sprintf("r%d@dest.example", i)))
		})
	}
	wg.Wait()
	for _, res := range results {
		wantOK(t, res)
	}
	if n := len(m.Messages()); n != jobs {
		t.Fatalf("%d messages, want %d", n, jobs)
	}
	if n := m.MaxConcurrent(); n > limit {
		t.Fatalf("%d concurrent transactions at the MX, limit %d", n, limit)
	}
	if c := m.Connections(); c > limit {
		t.Fatalf("%d connections, want at most %d (reused)", c, limit)
	}
	if n := d.limits.size(); n != 0 {
		t.Fatalf("%d destination semaphores left after the deliveries", n)
	}
}

func TestDeliverLimitWaitRespectsContext(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.setMX("dest.example", mx1)
	d := e.deliverer(func(o *Options) { o.MaxPerDestination = 1 })

	// Hold the destination's only place.
	release, err := d.limits.acquire(context.Background(), "dest.example")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := d.Deliver(ctx, job("dest.example", "x@dest.example"))
	wantAll(t, res, 451, [3]int{4, 3, 0})
	if m.Connections() != 0 {
		t.Fatal("connected while the destination was at its limit")
	}
	release()
	wantOK(t, d.Deliver(context.Background(), job("dest.example", "x@dest.example")))
}

func TestDeliverContextCancelAbortsSession(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.setMX("dest.example", mx1)
	m.SetDelay(2 * time.Second)
	d := e.deliverer(func(o *Options) { o.CommandTimeout = 10 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res := d.Deliver(ctx, job("dest.example", "x@dest.example"))
	wantAll(t, res, 451, [3]int{4, 3, 0})
	if n := d.pool.size(); n != 0 {
		t.Fatal("aborted connection kept for reuse")
	}
}

func TestDeliverSMTPUTF8(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.setMX("dest.example", mx1)
	d := e.deliverer(nil)

	j := job("dest.example", "δοκιμή@dest.example")
	j.SMTPUTF8 = true
	wantOK(t, d.Deliver(context.Background(), j))
	if got := m.WaitMessages(t, 1, 5*time.Second)[0]; !got.SMTPUTF8 || got.To[0] != "δοκιμή@dest.example" {
		t.Fatalf("SMTPUTF8 %v, to %q", got.SMTPUTF8, got.To)
	}

	e2 := newEnv(t)
	m2 := e2.mx("mx1.dest.example", "127.0.0.11")
	m2.DisableSMTPUTF8()
	e2.dns.setMX("dest.example", mx1)
	res := e2.deliverer(nil).Deliver(context.Background(), j)
	err := wantAll(t, res, 553, [3]int{5, 6, 7})
	if !strings.Contains(err.Message, "SMTPUTF8") || len(m2.Messages()) != 0 {
		t.Fatalf("message %q, %d messages at the MX", err.Message, len(m2.Messages()))
	}
}

func TestDeliverBadJob(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.setMX("dest.example", mx1)
	d := e.deliverer(nil)

	res := d.Deliver(context.Background(), job("dest.example", "x@dest.example", "bad\r\nRCPT TO:<y@dest.example>", ""))
	if res.Rcpts[0].Err != nil {
		t.Fatalf("good recipient: %v", res.Rcpts[0].Err)
	}
	wantErr(t, res.Rcpts[1], 501, [3]int{5, 1, 3})
	wantErr(t, res.Rcpts[2], 501, [3]int{5, 1, 3})
	if got := m.WaitMessages(t, 1, 5*time.Second)[0]; !slices.Equal(got.To, []string{"x@dest.example"}) {
		t.Fatalf("message went to %q", got.To)
	}

	j := job("dest.example", "x@dest.example")
	j.Sender = "a@sender.example> SMTPUTF8"
	wantAll(t, d.Deliver(context.Background(), j), 501, [3]int{5, 1, 7})

	j = job("dest.example", "x@dest.example")
	j.Open = nil
	wantAll(t, d.Deliver(context.Background(), j), 451, [3]int{4, 3, 0})

	j = job("dest.example", "x@dest.example")
	j.Source = Source{}
	wantAll(t, d.Deliver(context.Background(), j), 451, [3]int{4, 3, 0})

	j = job("dest.example", "x@dest.example")
	j.Source.HELO = "two words"
	wantAll(t, d.Deliver(context.Background(), j), 451, [3]int{4, 3, 0})

	if res := d.Deliver(context.Background(), job("dest.example")); len(res.Rcpts) != 0 {
		t.Fatalf("results for a job without recipients: %+v", res.Rcpts)
	}
}

// failingReader returns n bytes of 80-character lines and then an error.
type failingReader struct{ n, off int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), r.n)
	for i := range n {
		switch r.off % 80 {
		case 78:
			p[i] = '\r'
		case 79:
			p[i] = '\n'
		default:
			p[i] = 'a'
		}
		r.off++
	}
	r.n -= n
	return n, nil
}

func TestDeliverContentErrors(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.setMX("dest.example", mx1)
	d := e.deliverer(nil)

	j := job("dest.example", "x@dest.example", "y@dest.example")
	j.Open = func() (io.ReadCloser, error) { return nil, errors.New("spool file missing") }
	wantAll(t, d.Deliver(context.Background(), j), 451, [3]int{4, 3, 0})

	j.Open = func() (io.ReadCloser, error) { return io.NopCloser(&failingReader{n: 100 << 10}), nil }
	err := wantAll(t, d.Deliver(context.Background(), j), 451, [3]int{4, 3, 0})
	if !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("error %v does not keep its cause", err)
	}
	if n := len(m.Messages()); n != 0 {
		t.Fatalf("%d messages at the MX, want none (transfer broken off)", n)
	}
	// The broken connection was not kept: the next delivery dials again and succeeds.
	wantOK(t, d.Deliver(context.Background(), job("dest.example", "x@dest.example")))
	if c := m.Connections(); c != 2 {
		t.Fatalf("%d connections, want 2", c)
	}
}

func TestDeliverLargeMessage(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	e.dns.setMX("dest.example", mx1)
	d := e.deliverer(nil)

	var b strings.Builder
	b.WriteString("Subject: big\r\n\r\n")
	for i := 0; b.Len() < 3<<20; i++ {
		fmt.Fprintf(&b, "line %d %s\r\n", i, strings.Repeat("x", 70))
		if i%1000 == 0 {
			b.WriteString(".\r\n..\r\n")
		}
	}
	body := b.String()
	j := job("dest.example", "x@dest.example")
	j.Size = int64(len(body))
	j.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	wantOK(t, d.Deliver(context.Background(), j))
	if got := m.WaitMessages(t, 1, 10*time.Second)[0]; string(got.Data) != body {
		t.Fatalf("received %d bytes, not the %d sent", len(got.Data), len(body))
	}
}
