package scan_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/contentrules"
	"easymail/internal/contentrules/contentrulestest"
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

func (s barrier) Scan(ctx context.Context, _ scan.Envelope, _ scan.Message) (scan.Verdict, error) {
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

// TestRulesOverBudgetAndFailing: a message over the content rules' budgets is refused (or quarantined, per
// OverLimits) naming the budget, and counted; content rules that cannot run (no scratch directory for an
// archive) give a temporary failure, even under a bypass policy: they are the relay's own check.
func TestRulesOverBudgetAndFailing(t *testing.T) {
	bomb := scan.BytesMessage(contentrulestest.Message("alice@acme.test", "bomb.zip", contentrulestest.ZipBomb(3, 16, 1<<20)))
	lim := contentrules.Limits{MaxDecompressedBytes: 4 << 20, ScratchDir: t.TempDir()}
	for _, over := range []string{"", scan.Reject, scan.Quarantine} {
		reg := prometheus.NewRegistry()
		e := scan.New(scan.Options{Policies: policy(t, nil), Limits: lim, OverLimits: over, Registerer: reg})
		o := e.Check(context.Background(), env, bomb)
		want := over
		if want == "" {
			want = scan.Reject
		}
		if o.Action != want || o.Budget != contentrules.BudgetDecompressed || o.Report.Verdict != "rule" ||
			!strings.HasPrefix(o.Reply, "Message too complex to scan: archives that decompress to more than 4194304 bytes") {
			t.Errorf("over=%q: %+v", over, o)
		}
		if n := counterSum(t, reg, "easymail_contentrules_budget_exceeded_total"); n != 1 {
			t.Errorf("over=%q: budget metric %v", over, n)
		}
	}
	big := scan.BytesMessage(contentrulestest.Message("alice@acme.test", "big.zip", contentrulestest.ZipBomb(1, 1, 1<<20)))
	e := scan.New(scan.Options{Policies: policy(t, func(p *scan.Policy) { p.OnFailure = "bypass" }),
		Limits: contentrules.Limits{ScratchDir: "/nonexistent/scratch"}})
	if o := e.Check(context.Background(), env, big); o.Action != scan.Tempfail || o.Budget != "" {
		t.Errorf("rules failing: %+v", o)
	}
}
