package scan_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/contentrules"
	"easymail/internal/scan"
	"easymail/internal/testkit"
	"easymail/internal/testkit/scanners"
)

var env = scan.Envelope{QueueID: "Q1", CustomerID: "c1", From: "alice@acme.test", Rcpts: []string{"bob@dest.test"},
	IP: "203.0.113.5", Helo: "mail.acme.test", User: "c1"}

func msg(body string) scan.Message {
	return scan.BytesMessage([]byte(scanners.Message("alice@acme.test", "bob@dest.test", "Meeting notes", body)))
}

const clean = "Hi Bob,\n\nhere are the notes from today's meeting. We agreed to move the review to\nThursday.\n\nAlice"

// unixProxy serves a unix socket that forwards each connection to the TCP address, so that the unix://
// transport is tested against the real clamd. It counts the connections it accepted.
func unixProxy(t *testing.T, to string, conns *atomic.Int32) string {
	path := filepath.Join(t.TempDir(), "clamd.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, u)
			}()
		}
	}()
	return "unix://" + path
}

func TestRealScanners(t *testing.T) {
	sc := scanners.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var conns atomic.Int32
	for _, addr := range []string{sc.Clamd, unixProxy(t, sc.ClamdAddr, &conns)} {
		c, err := scan.NewClamd(addr, 2, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Scan(ctx, env, msg(clean))
		if err != nil || v.Result != scan.ResultClean {
			t.Fatalf("%s clean message: %+v %v", addr, v, err)
		}
		v, err = c.Scan(ctx, env, msg("see the file:\n"+scanners.EICAR()))
		if err != nil || v.Result != scan.ResultVirus || v.Name != "Eicar-Test-Signature.UNOFFICIAL" {
			t.Fatalf("%s EICAR: %+v %v", addr, v, err)
		}
	}
	// Sequential scans reuse one pooled connection (a clamd session).
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 2 scans through the unix socket, want 1", n)
	}
	// A message bigger than one INSTREAM chunk, with the virus at its end.
	c, _ := scan.NewClamd(sc.Clamd, 2, time.Second)
	v, err := c.Scan(ctx, env, msg(strings.Repeat("lorem ipsum dolor sit amet\n", 10000)+scanners.EICAR()))
	if err != nil || v.Result != scan.ResultVirus {
		t.Fatalf("large EICAR: %+v %v", v, err)
	}

	r, err := scan.NewRspamd(sc.Rspamd, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	v, err = r.Scan(ctx, env, msg(clean))
	if err != nil || v.Result != scan.ResultClean || v.Score >= 6 {
		t.Fatalf("rspamd clean: %+v %v", v, err)
	}
	v, err = r.Scan(ctx, env, msg("Buy now\n"+scanners.GTUBE()))
	if err != nil || v.Result != scan.ResultSpam || v.Score < 15 || !slices.Contains(v.Symbols, "GTUBE") || v.Action != "reject" {
		t.Fatalf("rspamd GTUBE: %+v %v", v, err)
	}
}

// policies is a fixed policy for every customer.
type policies struct{ p *scan.ResolvedPolicy }

func (p policies) For(string) *scan.ResolvedPolicy { return p.p }

func policy(t *testing.T, mod func(*scan.ResolvedPolicy)) policies {
	rules, err := contentrules.Compile([]contentrules.Rule{{Type: "extension", Values: []string{"exe"}, Action: "reject",
		Reason: "Executables refused"}, {Type: "body", Pattern: "(?i)unsubscribe", Action: "tag", Reason: "Newsletter"}}, "rules")
	if err != nil {
		t.Fatal(err)
	}
	p := &scan.ResolvedPolicy{SpamReject: 15, SpamTag: 6, VirusAction: "reject", OnFailure: "tempfail", Rules: rules}
	if mod != nil {
		mod(p)
	}
	return policies{p}
}

func TestEngineDecisions(t *testing.T) {
	sc := scanners.Start(t)
	clamd, _ := scan.NewClamd(sc.Clamd, 4, time.Second)
	rspamd, _ := scan.NewRspamd(sc.Rspamd, 4, time.Second)
	// A port held but not listening: connection refused at once.
	dead, _ := scan.NewClamd("tcp://"+testkit.RefusedAddr(t), 1, time.Second)

	notices := make(chan string, 10)
	newEngine := func(p policies, s ...scan.Scanner) (*scan.Engine, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		return scan.New(scan.Options{Scanners: s, Policies: p, Timeout: 20 * time.Second, Registerer: reg,
			Notify: func(_ context.Context, subject, _ string) { notices <- subject }}), reg
	}
	ctx := context.Background()
	e, _ := newEngine(policy(t, nil), clamd, rspamd)
	for _, c := range []struct {
		name, body, action, verdict, reply, header string
	}{
		{"clean", clean, scan.Accept, "clean", "", "X-Easymail-Scan: clean; clamd=clean; rspamd="},
		{"virus", "file:\n" + scanners.EICAR(), scan.Reject, "virus", "Virus found: Eicar-Test-Signature.UNOFFICIAL", ""},
		{"spam", "cheap\n" + scanners.GTUBE(), scan.Reject, "spam", "Spam message (score 15.0): Gtube pattern", ""},
		{"tag rule", clean + "\nTo unsubscribe, click.", scan.Tag, "tagged", "", "X-Easymail-Rule: body: Newsletter"},
	} {
		o := e.Check(ctx, env, msg(c.body))
		if o.Action != c.action || o.Report.Verdict != c.verdict || o.Reply != c.reply || !strings.Contains(o.Headers, c.header) {
			t.Errorf("%s: %+v", c.name, o)
		}
		if len(o.Report.Verdicts) != 2 {
			t.Errorf("%s: verdicts %+v", c.name, o.Report.Verdicts)
		}
	}

	// Quarantine per policy: GTUBE (15) over a quarantine threshold with reject off; EICAR with virus_action
	// quarantine.
	e, _ = newEngine(policy(t, func(p *scan.ResolvedPolicy) { p.SpamReject, p.SpamQuarantine, p.VirusAction = 0, 10, "quarantine" }), clamd, rspamd)
	if o := e.Check(ctx, env, msg(scanners.GTUBE())); o.Action != scan.Quarantine || o.Report.Verdict != "spam" {
		t.Errorf("GTUBE with quarantine policy: %+v", o)
	}
	if o := e.Check(ctx, env, msg(scanners.EICAR())); o.Action != scan.Quarantine || o.Report.Verdict != "virus" {
		t.Errorf("EICAR with quarantine policy: %+v", o)
	}

	// A scanner down: tempfail by default, and one notice however many failures.
	e, reg := newEngine(policy(t, nil), dead, rspamd)
	for range 3 {
		o := e.Check(ctx, env, msg(clean))
		if o.Action != scan.Tempfail || !strings.Contains(o.Reply, "clamd") {
			t.Fatalf("clamd down: %+v", o)
		}
	}
	if n := counterSum(t, reg, "easymail_scan_failures_total"); n != 3 {
		t.Errorf("failures metric %v, want 3", n)
	}
	if s := <-notices; s != "[easymail] Scanner clamd unavailable" {
		t.Errorf("notice %q", s)
	}
	// A definitive verdict of the other scanner still refuses.
	if o := e.Check(ctx, env, msg(scanners.GTUBE())); o.Action != scan.Reject {
		t.Errorf("GTUBE with clamd down: %+v", o)
	}
	// Bypass: accepted and tagged.
	e, _ = newEngine(policy(t, func(p *scan.ResolvedPolicy) { p.OnFailure = "bypass" }), dead, rspamd)
	o := e.Check(ctx, env, msg(clean))
	if o.Action != scan.Accept || o.Report.Verdict != "bypassed" || !strings.HasPrefix(o.Headers, "X-Easymail-Scan: bypassed; clamd=unavailable") {
		t.Errorf("bypass: %+v", o)
	}
	select {
	case s := <-notices:
		if s != "[easymail] Scanner clamd unavailable" {
			t.Errorf("notice %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Error("no notice from the second engine")
	}

	// Concurrent sessions scan concurrently and each gets its own verdict.
	e, _ = newEngine(policy(t, nil), clamd, rspamd)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, want := clean, scan.Accept
			if i%2 == 1 {
				body, want = scanners.EICAR(), scan.Reject
			}
			if o := e.Check(ctx, env, msg(body)); o.Action != want {
				t.Errorf("concurrent %d: %+v", i, o)
			}
		}()
	}
	wg.Wait()
}

// counterSum returns the sum of a counter family.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.Metric {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestClamdAddr(t *testing.T) {
	for _, bad := range []string{"127.0.0.1:3310", "tcp://127.0.0.1", "unix://host/x", "http://x:1", "unix://"} {
		if _, _, err := scan.ParseClamdAddr(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if n, a, err := scan.ParseClamdAddr("unix:///run/clamav/clamd.ctl"); err != nil || n != "unix" || a != "/run/clamav/clamd.ctl" {
		t.Errorf("unix: %s %s %v", n, a, err)
	}
}
