package scan_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"easymail/internal/scan"
)

// barrier is a scanner that returns only once n scans (of any barrier sharing it) are in progress at once:
// if the engine ran them one after the other, none would ever return before the deadline.
type barrier struct {
	name string
	b    *rendezvous
}

type rendezvous struct {
	mu   sync.Mutex
	n    int
	in   int
	done chan struct{}
}

func newRendezvous(n int) *rendezvous { return &rendezvous{n: n, done: make(chan struct{})} }

func (s barrier) Name() string { return s.name }

func (s barrier) Scan(ctx context.Context, _ scan.Envelope, _ []byte) (scan.Verdict, error) {
	s.b.mu.Lock()
	s.b.in++
	if s.b.in == s.b.n {
		close(s.b.done)
	}
	s.b.mu.Unlock()
	select {
	case <-s.b.done:
		return scan.Verdict{Result: scan.ResultClean}, nil
	case <-ctx.Done():
		return scan.Verdict{}, errors.New("not run concurrently")
	}
}

// TestScannersAndSessionsRunConcurrently: the scanners of one message run at the same time, and so do the
// scans of several sessions.
func TestScannersAndSessionsRunConcurrently(t *testing.T) {
	// Two scanners of one message meet.
	r := newRendezvous(2)
	e := scan.New(scan.Options{Scanners: []scan.Scanner{barrier{"clamd", r}, barrier{"rspamd", r}},
		Policies: policy(t, nil), Timeout: 10 * time.Second})
	if o := e.Check(context.Background(), env, msg(clean)); o.Action != scan.Accept {
		t.Fatalf("one message: %+v", o)
	}
	// Four sessions' scans meet (one scanner each).
	r = newRendezvous(4)
	e = scan.New(scan.Options{Scanners: []scan.Scanner{barrier{"clamd", r}}, Policies: policy(t, nil), Timeout: 10 * time.Second})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o := e.Check(context.Background(), env, msg(clean)); o.Action != scan.Accept {
				t.Errorf("session: %+v", o)
			}
		}()
	}
	wg.Wait()
}
