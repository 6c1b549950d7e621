package systemd

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestNotifySendsTheState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if sent, err := Notify("READY=1"); !sent || err != nil {
		t.Fatalf("Notify: %v %v", sent, err)
	}
	buf := make([]byte, 100)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("received %q, %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v %v", sent, err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_PID", "")
	t.Setenv("WATCHDOG_USEC", "30000000")
	if iv := WatchdogInterval(); iv != 30*time.Second {
		t.Fatalf("interval %v", iv)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if iv := WatchdogInterval(); iv != 0 {
		t.Fatalf("another process's watchdog: %v", iv)
	}
}

func TestTakeMatchesTheConfiguredAddress(t *testing.T) {
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ls := []net.Listener{a, b}
	if l, err := Take(&ls, b.Addr().String()); err != nil || l != b || len(ls) != 1 {
		t.Fatalf("Take b: %v %v %d", l, err, len(ls))
	}
	if _, err := Take(&ls, "127.0.0.1:0"); err != ErrNotListening {
		t.Fatalf("port 0 matched: %v", err)
	}
	if _, err := Take(&ls, b.Addr().String()); err != ErrNotListening {
		t.Fatalf("taken twice: %v", err)
	}
}
