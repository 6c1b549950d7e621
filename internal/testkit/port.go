package testkit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
)

// MXPort is one TCP port held on several loopback addresses, for fake MX hosts that must share a port (a
// relay delivers to one configured port, whatever the MX host's address). Each address's socket is bound but
// not listening until the address is turned into a listener: connections to it are refused, as to a host
// where nothing listens, and no other program can take the port in the meantime. Nothing is closed and
// bound again later, so no other test can slip in between. Everything is released when the test ends.
type MXPort struct {
	port int

	mu   sync.Mutex
	held map[string]int // IP address → descriptor of a bound socket not yet listening
}

// DefaultMXAddrs are the addresses ReserveMXPort holds when given none: 127.0.0.10 to 127.0.0.29.
var DefaultMXAddrs = func() []string {
	var a []string
	for i := 10; i <= 29; i++ {
		a = append(a, fmt.Sprintf("127.0.0.%d", i))
	}
	return a
}()

// ReserveMXPort holds one port on each of the IPv4 addresses ips (DefaultMXAddrs when none are given). The
// first address is bound on port 0, so the kernel picks a port free there, and the others on that port; if
// one of them has it taken already, everything is released and another port is tried.
func ReserveMXPort(t testing.TB, ips ...string) *MXPort {
	t.Helper()
	if len(ips) == 0 {
		ips = DefaultMXAddrs
	}
	addrs := make([][4]byte, len(ips))
	for i, s := range ips {
		ip := net.ParseIP(s).To4()
		if ip == nil {
			t.Fatalf("testkit: ReserveMXPort: %q is not an IPv4 address", s)
		}
		addrs[i] = [4]byte(ip)
	}
	var lastErr error
	for range 100 {
		p := &MXPort{held: make(map[string]int, len(ips))}
		err := p.bindAll(ips, addrs)
		if err == nil {
			t.Cleanup(p.release)
			return p
		}
		p.release()
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("testkit: ReserveMXPort: %v", err)
		}
		lastErr = err
	}
	t.Fatalf("testkit: ReserveMXPort: no port free on all of %v: %v", ips, lastErr)
	return nil
}

func (p *MXPort) bindAll(ips []string, addrs [][4]byte) error {
	for i, a := range addrs {
		// No SO_REUSEADDR: with it, Linux lets another socket that sets it bind the same address and port
		// while neither listens.
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: p.port, Addr: a}); err != nil {
			syscall.Close(fd)
			return fmt.Errorf("bind %s:%d: %w", ips[i], p.port, err)
		}
		p.held[ips[i]] = fd
		if i == 0 {
			sa, err := syscall.Getsockname(fd)
			if err != nil {
				return fmt.Errorf("getsockname: %w", err)
			}
			p.port = sa.(*syscall.SockaddrInet4).Port
		}
	}
	return nil
}

func (p *MXPort) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ip, fd := range p.held {
		syscall.Close(fd)
		delete(p.held, ip)
	}
}

// Port returns the port held on every address.
func (p *MXPort) Port() int { return p.port }

// Addr returns ip:port.
func (p *MXPort) Addr(ip string) string { return net.JoinHostPort(ip, fmt.Sprint(p.port)) }

// Listen turns the socket held on ip into a listener (it must be one of the reserved addresses, not yet
// listening). Connections queue from then on; closing the listener gives the port up.
func (p *MXPort) Listen(t testing.TB, ip string) net.Listener {
	t.Helper()
	p.mu.Lock()
	fd, ok := p.held[ip]
	delete(p.held, ip)
	p.mu.Unlock()
	if !ok {
		t.Fatalf("testkit: %s is not an address held by this MXPort, or it listens already", ip)
	}
	if err := syscall.Listen(fd, syscall.SOMAXCONN); err != nil {
		syscall.Close(fd)
		t.Fatalf("testkit: listen on %s: %v", p.Addr(ip), err)
	}
	f := os.NewFile(uintptr(fd), p.Addr(ip))
	ln, err := net.FileListener(f) // a duplicate of fd
	f.Close()
	if err != nil {
		t.Fatalf("testkit: listener on %s: %v", p.Addr(ip), err)
	}
	return ln
}

// NewMX starts a fake MX on ip at the held port (see Listen).
func (p *MXPort) NewMX(t testing.TB, ip string) *MX {
	t.Helper()
	return NewMXOn(t, p.Listen(t, ip))
}

// RefusedAddr returns "127.0.0.1:port" for a port held (bound, never listening) until the test ends:
// connections to it are refused, and nothing else can start listening there meanwhile, unlike the port of
// a listener that was opened and closed again.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	return ReserveMXPort(t, "127.0.0.1").Addr("127.0.0.1")
}
