package smtpin

import (
	"crypto/tls"
	"net"
	"net/netip"
	"time"

	"easymail/internal/access"
	"easymail/internal/smtperr"
)

// gatedListener decides at accept time, before go-smtp greets, whether a client may talk to us at all: a
// client whose IP belongs to no customer gets "554 5.7.1" as its greeting and is disconnected (RFC 5321
// §3.1 allows a 554 greeting). Nothing else is read from it.
type gatedListener struct {
	net.Listener
	srv *Server
}

// clientConn is an accepted connection of a known customer.
type clientConn struct {
	net.Conn
	customer *access.Customer
	ip       netip.Addr
	id       string
}

func (l *gatedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		cust, ok := l.srv.o.Access.Identify(ip)
		if !ok {
			l.srv.m.connections.WithLabelValues("unregistered").Inc()
			l.srv.log.Info("smtp: refused unregistered client", "ip", ip.String())
			go refuse(c, smtperr.ClientNotRegistered.Wrap(nil), l.srv.o.Hostname, ip)
			continue
		}
		l.srv.m.connections.WithLabelValues("accepted").Inc()
		return &clientConn{Conn: c, customer: cust, ip: ip, id: newConnID()}, nil
	}
}

// refuse sends a one-line refusal as the greeting and closes the connection. The enhanced status code
// comes first, as Postfix does, so that clients and logs show "554 5.7.1"; the host name follows.
func refuse(c net.Conn, e *smtperr.Error, hostname string, ip netip.Addr) {
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(e.Reply() + " (client " + ip.String() + ", " + hostname + ")\r\n"))
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
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
