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

func (s barrier) Judge(a scan.Answer, _ *scan.ResolvedPolicy) scan.Judgement {
	return scan.Judgement{Summary: a.Result}
}

func (s barrier) Scan(ctx context.Context, _ scan.Envelope, _ scan.Message) (scan.Answer, error) {
	s.b.mu.Lock()
	s.b.in++
	if s.b.in == s.b.n {
		close(s.b.done)
	}
	s.b.mu.Unlock()
	select {
	case <-s.b.done:
		return scan.Answer{Result: scan.ResultClean}, nil
	case <-ctx.Done():
		return scan.Answer{}, errors.New("not run concurrently")
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
	e := scan.New(scan.Options{Policies: policy(t, func(p *scan.ResolvedPolicy) { p.OnFailure = "bypass" }),
		Limits: contentrules.Limits{ScratchDir: "/nonexistent/scratch"}})
	if o := e.Check(context.Background(), env, big); o.Action != scan.Tempfail || o.Budget != "" {
		t.Errorf("rules failing: %+v", o)
	}
}

// TestJudge: each scanner turns its own answer into an action under the policy: clamd a virus into the
// virus action, rspamd a score against the thresholds (the highest first), with its header fields.
func TestJudge(t *testing.T) {
	pol := &scan.ResolvedPolicy{SpamReject: 15, SpamQuarantine: 10, SpamTag: 6, VirusAction: scan.Reject}
	clamd, rspamd := &scan.Clamd{}, &scan.Rspamd{}
	for _, c := range []struct {
		name string
		s    scan.Scanner
		a    scan.Answer
		pol  *scan.ResolvedPolicy
		want scan.Judgement
	}{
		{"clamd clean", clamd, scan.Answer{Result: scan.ResultClean}, pol, scan.Judgement{Summary: "clean"}},
		{"clamd virus", clamd, scan.Answer{Result: scan.ResultVirus, Name: "Eicar\r\nX"}, pol, scan.Judgement{Action: scan.Reject,
			Verdict: scan.ResultVirus, Reason: "Virus found: Eicar  X", Summary: "virus"}},
		{"clamd virus quarantined", clamd, scan.Answer{Result: scan.ResultVirus, Name: "Eicar"},
			&scan.ResolvedPolicy{VirusAction: scan.Quarantine}, scan.Judgement{Action: scan.Quarantine, Verdict: scan.ResultVirus,
				Reason: "Virus found: Eicar", Summary: "virus"}},
		{"rspamd under", rspamd, scan.Answer{Result: scan.ResultSpam, Score: 5.996}, pol, scan.Judgement{Summary: "6.00"}},
		{"rspamd tag", rspamd, scan.Answer{Result: scan.ResultClean, Score: 6, Symbols: []string{"A", "B", "C", "D"}}, pol,
			scan.Judgement{Action: scan.Tag, Verdict: scan.ResultSpam, Reason: "Spam message (score 6.0): A, B, C", Summary: "6.00",
				Headers: "X-Spam-Flag: YES\r\nX-Spam-Score: 6.00\r\n"}},
		{"rspamd quarantine", rspamd, scan.Answer{Score: 12.5, Reason: "Go away"}, pol, scan.Judgement{Action: scan.Quarantine,
			Verdict: scan.ResultSpam, Reason: "Spam message (score 12.5): Go away", Summary: "12.50",
			Headers: "X-Spam-Flag: YES\r\nX-Spam-Score: 12.50\r\n"}},
		{"rspamd reject", rspamd, scan.Answer{Score: 20}, pol, scan.Judgement{Action: scan.Reject, Verdict: scan.ResultSpam,
			Reason: "Spam message (score 20.0)", Summary: "20.00", Headers: "X-Spam-Flag: YES\r\nX-Spam-Score: 20.00\r\n"}},
		{"rspamd thresholds off", rspamd, scan.Answer{Score: 100}, &scan.ResolvedPolicy{}, scan.Judgement{Summary: "100.00"}},
	} {
		if got := c.s.Judge(c.a, c.pol); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
