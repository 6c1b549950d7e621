package smtpin

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"easymail/internal/access"
	"easymail/internal/ratelimit"
	"easymail/internal/smtperr"
)

// gatedListener decides at accept time, before go-smtp greets, whether a client may talk to us at all. It
// runs its own accept loop and hands go-smtp only the connections that passed, so that no check ever holds
// up the next accept:
//   - a client whose IP belongs to no customer gets "554 5.7.1" as its greeting and is disconnected (RFC 5321
//     §3.1 allows a 554 greeting); nothing else is read from it;
//   - a registered client over the global or per-IP session caps, or over its IP's connection rate, gets
//     "421 4.7.0" (RFC 5321 §3.8: 421 may be sent at any time before closing);
//   - a registered client that sends anything before the greeting (an early talker: no SMTP client may, RFC
//     5321 §3.1 and §4.3.1) gets "554 5.5.1".
//
// The checks cost no more than a map lookup and a token bucket, and the slower pregreet watch runs in its own
// goroutine, so a flood of unregistered or abusive connections cannot starve registered customers.
type gatedListener struct {
	net.Listener
	srv *Server

	initOnce  sync.Once
	ready     chan net.Conn
	errc      chan error
	done      chan struct{}
	closeOnce sync.Once
}

func (l *gatedListener) init() {
	l.initOnce.Do(func() {
		l.ready = make(chan net.Conn)
		l.errc = make(chan error, 1)
		l.done = make(chan struct{})
		go l.loop()
	})
}

// Accept returns the next connection that passed the gate.
func (l *gatedListener) Accept() (net.Conn, error) {
	l.init()
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops the accept loop and closes the listener.
func (l *gatedListener) Close() error {
	l.init()
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// loop accepts connections and gates them until the listener is closed. Temporary accept errors (out of file
// descriptors) are retried with a growing pause, as net/http does.
func (l *gatedListener) loop() {
	var pause time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				l.srv.log.Warn("smtp: accept failed; retrying", "err", err, "pause", pause)
				time.Sleep(pause)
				continue
			}
			select {
			case l.errc <- err:
			case <-l.done:
			}
			return
		}
		pause = 0
		if cc := l.srv.guard.admit(c); cc != nil {
			go l.vet(cc)
		}
	}
}

// vet watches a registered client before the greeting and hands it to go-smtp when it stayed silent.
func (l *gatedListener) vet(cc *clientConn) {
	if !l.srv.guard.quietBeforeGreeting(cc) {
		return
	}
	select {
	case l.ready <- cc:
	case <-l.done:
		cc.Close()
	}
}

// clientConn is an accepted connection of a known customer. It enforces the session deadline and the data
// deadline on every read deadline go-smtp sets (go-smtp sets only a per-command one), gives back the
// client's session slot when closed, and can close itself right after the next reply.
type clientConn struct {
	net.Conn
	customer *access.Customer
	ip       netip.Addr
	id       string

	// sessionEnd is when the whole session must be over; zero for no limit. Set before go-smtp sees the
	// connection, never changed.
	sessionEnd time.Time
	release    func()
	closeOnce  sync.Once

	mu      sync.Mutex
	dataEnd time.Time // during DATA/BDAT: when the transfer must be over

	// closeAfterReply makes the next Write (go-smtp's next reply) the last one.
	closeAfterReply atomic.Bool

	// The STARTTLS check (starttls.go): the TLS state, the input not yet handed to go-smtp before TLS
	// (rbuf[rpos:wpos]), the head of the line go-smtp reads, and whether the greeting was written. Only
	// go-smtp's connection goroutine reads and writes these, except tlsState.
	tlsState   atomic.Int32
	rbuf       []byte
	rpos, wpos int
	line       lineHead
	greeted    bool
}

// clamp returns deadline t brought forward to the session and data deadlines.
func (c *clientConn) clamp(t time.Time) time.Time {
	for _, end := range []time.Time{c.sessionEnd, c.dataDeadline()} {
		if !end.IsZero() && (t.IsZero() || t.After(end)) {
			t = end
		}
	}
	return t
}

func (c *clientConn) dataDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dataEnd
}

// SetReadDeadline sets the read deadline, never later than the session or data deadline.
func (c *clientConn) SetReadDeadline(t time.Time) error { return c.Conn.SetReadDeadline(c.clamp(t)) }

// SetDeadline sets the write deadline as asked and the read deadline as SetReadDeadline does.
func (c *clientConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// beginData starts the data deadline d from now and applies it to reads.
func (c *clientConn) beginData(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.dataEnd = time.Now().Add(d)
	c.mu.Unlock()
	c.SetReadDeadline(time.Time{})
}

// endData ends the data deadline and reports whether it had passed.
func (c *clientConn) endData() (expired bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	expired = !c.dataEnd.IsZero() && !time.Now().Before(c.dataEnd)
	c.dataEnd = time.Time{}
	return expired
}

// Write writes a reply; after a reply marked as the last one it closes the connection.
func (c *clientConn) Write(p []byte) (int, error) {
	out, send := c.startTLSReply(p)
	if !send {
		return len(p), nil
	}
	n, err := c.Conn.Write(out)
	if len(out) != len(p) && err == nil {
		n = len(p)
	}
	if c.closeAfterReply.Load() {
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		c.Close()
	}
	return n, err
}

// Close closes the connection and gives back its session slot (once).
func (c *clientConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		if c.release != nil {
			c.release()
		}
	})
	return err
}

// guard holds the connection-level protection state of a Server.
type guard struct {
	srv   *Server
	p     Protection
	slots *ratelimit.Slots
	rate  ratelimit.Limiter
	pm    *protectMetrics
}

// admit applies the accept-time checks to a new connection. It refuses the connection itself (in another
// goroutine) and returns nil, or returns the connection of a registered client holding a session slot.
func (g *guard) admit(c net.Conn) *clientConn {
	s := g.srv
	ip := remoteIP(c)
	cust, ok := s.o.Access.Identify(ip)
	if !ok {
		s.m.connections.WithLabelValues("unregistered").Inc()
		s.rejectConnect(ip, "", "not a registered source IP or relay host", smtperr.ClientNotRegistered)
		go refuse(c, smtperr.ClientNotRegistered, s.o.Hostname, ip, false)
		return nil
	}
	key := ip.String()
	if err := g.slots.Acquire(key, g.p.MaxConnections, g.p.MaxConnectionsPerIP); err != nil {
		s.m.connections.WithLabelValues("over_limit").Inc()
		e := errTooManySessions
		if errors.Is(err, ratelimit.ErrKeyCap) {
			e = errTooManySessionsIP
		}
		s.rejectConnect(ip, cust.ID, "over the session cap: "+err.Error(), e)
		go refuse(c, e, s.o.Hostname, ip, false)
		return nil
	}
	release := func() { g.slots.Release(key) }
	if !g.p.ConnectionRatePerIP.Unlimited() {
		d, err := g.rate.Allow(context.Background(), key, 1, g.p.ConnectionRatePerIP)
		if err == nil && !d.Allowed {
			release()
			s.m.connections.WithLabelValues("rate_limited").Inc()
			s.rejectConnect(ip, cust.ID, "over its connection rate "+g.p.ConnectionRatePerIP.String(), errConnectionRate)
			go refuse(c, errConnectionRate, s.o.Hostname, ip, false)
			return nil
		}
	}
	cc := &clientConn{Conn: c, customer: cust, ip: ip, id: newConnID(), release: release}
	if g.p.SessionTimeout > 0 {
		cc.sessionEnd = time.Now().Add(g.p.SessionTimeout)
	}
	return cc
}

// pregreetPeek is how long a client is watched for bytes already sent when no pregreet delay is set: long
// enough to see what had arrived at accept time, short enough not to delay the greeting.
const pregreetPeek = time.Millisecond

// quietBeforeGreeting watches the client for the pregreet delay. A client that sends anything is refused
// with "554 5.5.1" and false is returned; so is false for a client that went away. The connection's read
// deadline is left at the session deadline.
func (g *guard) quietBeforeGreeting(cc *clientConn) bool {
	s := g.srv
	wait := g.p.PregreetDelay
	if wait <= 0 {
		wait = pregreetPeek
	}
	cc.Conn.SetReadDeadline(time.Now().Add(wait))
	var b [1]byte
	n, err := cc.Conn.Read(b[:])
	var ne net.Error
	switch {
	case n > 0:
		s.m.connections.WithLabelValues("early_talker").Inc()
		s.rejectConnect(cc.ip, cc.customer.ID, "early talker: sent before the greeting", errEarlyTalker)
		refuse(cc, errEarlyTalker, s.o.Hostname, cc.ip, true)
		return false
	case errors.As(err, &ne) && ne.Timeout():
		// Silent, as a client must be.
	default:
		cc.Close()
		return false
	}
	if err := cc.SetReadDeadline(time.Time{}); err != nil {
		cc.Close()
		return false
	}
	s.m.connections.WithLabelValues("accepted").Inc()
	return true
}

// refuse sends a one-line refusal as the greeting and closes the connection. The enhanced status code
// comes first, as Postfix does, so that clients and logs show "554 5.7.1"; the host name follows. With
// drain, what the client already sent is read (for a moment) before closing, so that the close is not a
// reset that could destroy the reply before the client reads it (RFC 1122 §4.2.2.13).
func refuse(c net.Conn, e *smtperr.Error, hostname string, ip netip.Addr, drain bool) {
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(e.Reply() + " (client " + ip.String() + ", " + hostname + ")\r\n"))
	raw := c
	if cc, ok := c.(*clientConn); ok {
		raw = cc.Conn
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.CloseWrite()
		if drain {
			tc.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 4096)
			for total := 0; total < 64<<10; {
				n, err := tc.Read(buf)
				total += n
				if err != nil {
					break
				}
			}
		}
	}
	c.Close()
}

func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// unwrapClient finds our clientConn below a TLS connection.
func unwrapClient(c net.Conn) (*clientConn, bool) {
	for {
		switch v := c.(type) {
		case *clientConn:
			return v, true
		case *tls.Conn:
			c = v.NetConn()
		default:
			return nil, false
		}
	}
}
