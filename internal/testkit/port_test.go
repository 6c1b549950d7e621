package testkit

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestMXPortRefusesUntilListening(t *testing.T) {
	p := ReserveMXPort(t, "127.0.0.11", "127.0.0.12")
	if p.Port() == 0 {
		t.Fatal("no port")
	}
	// Held but not listening: refused, like a host where nothing listens.
	if c, err := net.DialTimeout("tcp", p.Addr("127.0.0.11"), 2*time.Second); err == nil {
		c.Close()
		t.Fatal("connection to a held address accepted")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a held address: %v, want connection refused", err)
	}
	// Nobody else can take the port on a held address, with or without SO_REUSEADDR (Go sets it).
	for _, ip := range []string{"127.0.0.11", "127.0.0.12"} {
		if l, err := net.Listen("tcp", p.Addr(ip)); err == nil {
			l.Close()
			t.Fatalf("another listener got %s", p.Addr(ip))
		}
	}
	m := p.NewMX(t, "127.0.0.12")
	if m.Addr() != p.Addr("127.0.0.12") {
		t.Fatalf("MX on %s, want %s", m.Addr(), p.Addr("127.0.0.12"))
	}
	if err := send(dialMX(t, m), "a@sender.example", []string{"x@dest.example"}, "x\r\n"); err != nil {
		t.Fatal(err)
	}
	if len(m.Messages()) != 1 {
		t.Fatal("message not recorded")
	}
}

func TestMXPortDefaultAddrs(t *testing.T) {
	p := ReserveMXPort(t)
	for _, ip := range DefaultMXAddrs {
		if l, err := net.Listen("tcp", p.Addr(ip)); err == nil {
			l.Close()
			t.Fatalf("%s not held", p.Addr(ip))
		}
	}
	ln := p.Listen(t, "127.0.0.29")
	defer ln.Close()
	if ln.Addr().String() != p.Addr("127.0.0.29") {
		t.Fatalf("listener on %s", ln.Addr())
	}
}

func TestRefusedAddr(t *testing.T) {
	addr := RefusedAddr(t)
	if _, err := net.DialTimeout("tcp", addr, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatalf("%s could be taken", addr)
	}
}
