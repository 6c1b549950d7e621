package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/textproto"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Load is one run's SMTP load: Messages messages over Sessions concurrent sessions, one message per
// connection, as smtp-source -s Sessions -m Messages does.
type Load struct {
	Addr     string        // the relay's SMTP listener
	Helo     string        // the EHLO name
	From, To string        // envelope sender and recipient (also the From and To header fields)
	Sessions int           // concurrent sessions
	Messages int           // messages in all
	Body     []byte        // the body of every message (CRLF lines, none starting with ".")
	Timeout  time.Duration // bound of each session, from the connect to the reply to QUIT
	RunID    int64         // makes the Message-IDs unique across runs
}

// LoadResult is what a load measured.
type LoadResult struct {
	Wall      time.Duration   // from the first connect to the last session's end
	Latencies []time.Duration // per message, from writing the "." to reading the 250
}

// Run sends the load and returns when every message was accepted, or at the first failure (a connection or
// protocol error, or any reply other than the expected one: a benchmark must not count refused mail).
func (l Load) Run(ctx context.Context) (LoadResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lat := make([]time.Duration, l.Messages)
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	for range min(l.Sessions, l.Messages) {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := int(next.Add(1))
				if n > l.Messages {
					return
				}
				d, err := l.send(ctx, n)
				if err != nil {
					once.Do(func() { first = fmt.Errorf("message %d: %w", n, err); cancel() })
					return
				}
				lat[n-1] = d
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if first != nil {
		return LoadResult{}, first
	}
	if err := ctx.Err(); err != nil {
		return LoadResult{}, err
	}
	return LoadResult{Wall: wall, Latencies: lat}, nil
}

// send delivers message n in a session of its own and returns the time from the "." to the 250.
func (l Load) send(ctx context.Context, n int) (time.Duration, error) {
	hdr := header(n, l.RunID, l.From, l.To, time.Now())
	return session(ctx, l.Addr, l.Helo, l.From, l.To, hdr, l.Body, l.Timeout, true)
}

// replyError is a reply the client did not expect, with the command it answered.
type replyError struct {
	Stage string
	Code  int
	Msg   string
}

func (e *replyError) Error() string { return fmt.Sprintf("%s: %d %s", e.Stage, e.Code, e.Msg) }

// session runs one SMTP session (RFC 5321 §3.3): greeting, EHLO, MAIL, RCPT, DATA, the message, QUIT. It
// returns the time from writing the final "." to reading the reply. With strict false, a 4xx or 5xx reply
// to the end of DATA is returned as a *replyError with that time, after QUIT, rather than as a failure of the
// session (the probes expect some messages to be refused).
func session(ctx context.Context, addr, helo, from, to string, hdr, body []byte, timeout time.Duration,
	strict bool) (time.Duration, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	// A cancelled run closes the connections at once rather than waiting for the deadline.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	tp := textproto.NewConn(c)
	expect := func(stage string, code int) error {
		got, msg, err := tp.ReadResponse(code)
		if err != nil {
			var te *textproto.Error
			if errors.As(err, &te) {
				return &replyError{Stage: stage, Code: got, Msg: msg}
			}
			return fmt.Errorf("%s: %w", stage, err)
		}
		return nil
	}
	command := func(stage string, code int, format string, args ...any) error {
		if err := tp.PrintfLine(format, args...); err != nil {
			return fmt.Errorf("%s: %w", stage, err)
		}
		return expect(stage, code)
	}
	if err := expect("greeting", 220); err != nil {
		return 0, err
	}
	if err := command("EHLO", 250, "EHLO %s", helo); err != nil {
		return 0, err
	}
	if err := command("MAIL", 250, "MAIL FROM:<%s>", from); err != nil {
		return 0, err
	}
	if err := command("RCPT", 25, "RCPT TO:<%s>", to); err != nil {
		return 0, err
	}
	if err := command("DATA", 354, "DATA"); err != nil {
		return 0, err
	}
	w := tp.W
	if _, err := w.Write(hdr); err != nil {
		return 0, err
	}
	if _, err := w.Write(body); err != nil {
		return 0, err
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("message: %w", err)
	}
	t0 := time.Now()
	if _, err := w.WriteString(".\r\n"); err != nil {
		return 0, err
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("end of data: %w", err)
	}
	dataErr := expect("end of data", 250)
	lat := time.Since(t0)
	var re *replyError
	if dataErr != nil && (strict || !errors.As(dataErr, &re)) {
		return 0, dataErr
	}
	if err := command("QUIT", 221, "QUIT"); err != nil {
		return 0, err
	}
	return lat, dataErr
}

// percentile returns the p-th percentile (0 < p <= 100) of ds by the nearest-rank method; ds is sorted in
// place. It returns 0 for an empty slice.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := int(math.Ceil(float64(len(ds)) * p / 100))
	rank = max(1, min(rank, len(ds)))
	return ds[rank-1]
}
