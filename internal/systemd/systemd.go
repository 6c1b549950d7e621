// Package systemd speaks systemd's service protocols: readiness, reload and watchdog notifications over
// $NOTIFY_SOCKET (sd_notify(3)), and the listening sockets passed by socket activation ($LISTEN_FDS,
// sd_listen_fds(3)). Outside systemd (no variables set) every function does nothing.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Notify sends state ("READY=1", "RELOADING=1", "STOPPING=1", "WATCHDOG=1", "STATUS=...") to the socket named
// by $NOTIFY_SOCKET. It returns false, nil when the variable is not set.
func Notify(state string) (bool, error) {
	return notifyTo(os.Getenv("NOTIFY_SOCKET"), state)
}

func notifyTo(socket, state string) (bool, error) {
	if socket == "" {
		return false, nil
	}
	// A leading @ names a socket in the abstract namespace.
	if strings.HasPrefix(socket, "@") {
		socket = "\x00" + socket[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	return true, nil
}

// WatchdogInterval returns the interval at which systemd expects WATCHDOG=1 ($WATCHDOG_USEC, when
// $WATCHDOG_PID is unset or this process), or 0 when no watchdog is enabled.
func WatchdogInterval() time.Duration {
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// Watchdog sends WATCHDOG=1 at half the watchdog interval while alive reports true, until ctx ends. It
// returns at once when no watchdog is enabled.
func Watchdog(ctx context.Context, alive func() bool) {
	iv := WatchdogInterval()
	if iv <= 0 {
		return
	}
	t := time.NewTicker(iv / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if alive == nil || alive() {
				Notify("WATCHDOG=1")
			}
		}
	}
}

// listenFDsStart is the first descriptor passed by socket activation.
const listenFDsStart = 3

// Listeners returns the listening TCP sockets passed by socket activation ($LISTEN_FDS for this process,
// $LISTEN_PID), and unsets the variables so that child processes do not take them. None when not
// activated.
func Listeners() ([]net.Listener, error) {
	pid, fds := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	if fds == "" {
		return nil, nil
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if pid != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > 1000 {
		return nil, fmt.Errorf("LISTEN_FDS=%q is not a count of descriptors", fds)
	}
	var out []net.Listener
	for fd := listenFDsStart; fd < listenFDsStart+n; fd++ {
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd))
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, fmt.Errorf("socket activation: descriptor %d: %w", fd, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// ErrNotListening is returned by Take when no passed socket has the address.
var ErrNotListening = errors.New("no socket passed for this address")

// Take removes from ls and returns the listener bound to addr (as written in the configuration: an
// unspecified host matches every address of that family, port 0 never matches).
func Take(ls *[]net.Listener, addr string) (net.Listener, error) {
	want, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	for i, l := range *ls {
		got, ok := l.Addr().(*net.TCPAddr)
		if !ok || got.Port != want.Port || want.Port == 0 {
			continue
		}
		if (want.IP == nil || want.IP.IsUnspecified()) && got.IP.IsUnspecified() || want.IP.Equal(got.IP) {
			*ls = append((*ls)[:i], (*ls)[i+1:]...)
			return l, nil
		}
	}
	return nil, ErrNotListening
}
