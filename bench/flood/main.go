// Command flood is the flood benchmark's attacker: while it runs, it hammers an SMTP listener with new
// connections from loopback addresses that belong to no customer (each must be refused at once with 554),
// with early talkers that send a command before the greeting, and keeps slowloris sessions open from a
// registered address (each sends a byte every few seconds, to hold its session as long as the server lets
// it). It stops on SIGINT or SIGTERM, or after -duration, and prints what happened.
//
// Usage:
//
//	flood -target 127.0.0.1:2525 -rate 500 -from 127.0.1.0/24 -slow 200 -slow-from 127.0.0.60 -duration 60s
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// counters are the outcomes, by kind.
type counters struct {
	dialed, refused554, refused421, greeted, failed, slowHeld, slowClosed atomic.Int64
}

func main() {
	target := flag.String("target", "127.0.0.1:2525", "SMTP listener to hammer")
	rate := flag.Int("rate", 500, "new unregistered connections per second")
	from := flag.String("from", "127.0.1.0/24", "IPv4 prefix (loopback, not registered) the unregistered connections come from")
	early := flag.Int("early", 10, "percent of the unregistered connections that talk before the greeting")
	slow := flag.Int("slow", 100, "slowloris sessions to keep open from -slow-from")
	slowFrom := flag.String("slow-from", "127.0.0.60", "registered address of the slowloris sessions")
	interval := flag.Duration("slow-interval", 5*time.Second, "time between two bytes of a slowloris session")
	duration := flag.Duration("duration", 0, "stop after this long (0: at SIGINT/SIGTERM)")
	flag.Parse()

	prefix, err := netip.ParsePrefix(*from)
	if err != nil || !prefix.Addr().Is4() || prefix.Bits() > 30 {
		fail("-from must be an IPv4 prefix of at least 4 addresses: %q", *from)
	}
	slowIP := net.ParseIP(*slowFrom)
	if slowIP == nil {
		fail("-slow-from is not an IP address: %q", *slowFrom)
	}
	if *rate < 0 || *slow < 0 || *early < 0 || *early > 100 {
		fail("-rate, -slow and -early must not be negative; -early is at most 100")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	var c counters
	var wg sync.WaitGroup
	for i := range *slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the start so that the slowloris sessions do not arrive as one burst.
			sleep(ctx, time.Duration(i)*10*time.Millisecond)
			slowloris(ctx, *target, slowIP, *interval, &c)
		}()
	}
	if *rate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hammer(ctx, *target, prefix, *rate, *early, &c)
		}()
	}
	start := time.Now()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			report(&c, time.Since(start))
		}
	}
	// The last report shows the sessions still open when the flood stopped.
	report(&c, time.Since(start))
	wg.Wait()
}

// hammer opens rate connections a second from the addresses of prefix, in turn.
func hammer(ctx context.Context, target string, prefix netip.Prefix, rate, earlyPct int, c *counters) {
	first := prefix.Masked().Addr().Next()
	n := 1 << (32 - prefix.Bits())
	period := time.Second / time.Duration(rate)
	tick := time.NewTicker(period)
	defer tick.Stop()
	var i int
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ip := first
		for range i % (n - 2) {
			ip = ip.Next()
		}
		talk := i%100 < earlyPct
		i++
		wg.Add(1)
		go func() {
			defer wg.Done()
			unregistered(target, ip, talk, c)
		}()
	}
}

// unregistered connects from ip, optionally talks first, and reads the server's first reply.
func unregistered(target string, ip netip.Addr, talk bool, c *counters) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}}
	conn, err := d.Dial("tcp", target)
	c.dialed.Add(1)
	if err != nil {
		c.failed.Add(1)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if talk {
		conn.Write([]byte("EHLO flood.test\r\nMAIL FROM:<x@flood.test>\r\n"))
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	switch {
	case err != nil && line == "":
		c.failed.Add(1)
	case strings.HasPrefix(line, "554 "):
		c.refused554.Add(1)
	case strings.HasPrefix(line, "421 "):
		c.refused421.Add(1)
	default:
		c.greeted.Add(1)
	}
}

// slowloris keeps one session open from ip, sending a byte every interval, and opens a new one whenever the
// server ends it, until ctx ends.
func slowloris(ctx context.Context, target string, ip net.IP, interval time.Duration, c *counters) {
	for ctx.Err() == nil {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}
		conn, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			c.failed.Add(1)
			sleep(ctx, interval)
			continue
		}
		stopOnCancel := context.AfterFunc(ctx, func() { conn.Close() })
		br := bufio.NewReader(conn)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := br.ReadString('\n')
		conn.SetReadDeadline(time.Time{})
		if err != nil || !strings.HasPrefix(line, "220") {
			// Refused (over a cap): try again later, as a patient attacker would.
			if strings.HasPrefix(line, "421 ") {
				c.refused421.Add(1)
			} else {
				c.failed.Add(1)
			}
			stopOnCancel()
			conn.Close()
			sleep(ctx, interval)
			continue
		}
		c.slowHeld.Add(1)
		// A command that never ends, one byte at a time.
		msg := "EHLO " + strings.Repeat("s", 1500)
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := conn.Write([]byte{msg[i%len(msg)]}); err != nil {
				break
			}
			if !sleep(ctx, interval) {
				break
			}
			conn.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := br.ReadByte(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
		}
		// A session ended by our own stop still counts as open: the last report shows what was held then.
		if ctx.Err() == nil {
			c.slowHeld.Add(-1)
			c.slowClosed.Add(1)
		}
		stopOnCancel()
		conn.Close()
	}
}

// sleep waits d or until ctx ends; it reports whether the whole wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func report(c *counters, el time.Duration) {
	fmt.Printf("flood: %5.0fs dialed %d (%.0f/s): refused 554 %d, refused 421 %d, greeted %d, failed %d; slowloris open %d, closed by the server %d\n",
		el.Seconds(), c.dialed.Load(), float64(c.dialed.Load())/el.Seconds(), c.refused554.Load(), c.refused421.Load(),
		c.greeted.Load(), c.failed.Load(), c.slowHeld.Load(), c.slowClosed.Load())
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "flood: "+format+"\n", args...)
	os.Exit(2)
}
