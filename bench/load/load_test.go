package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func TestMakeBody(t *testing.T) {
	for _, size := range []int{2, 3, 73, 74, 75, 1024, 5120, 102400} {
		b := makeBody(size)
		if len(b) != size {
			t.Errorf("size %d: body of %d bytes", size, len(b))
		}
		if !bytes.HasSuffix(b, []byte("\r\n")) {
			t.Errorf("size %d: the body does not end with CRLF", size)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
		for i, l := range lines {
			if strings.HasPrefix(l, ".") {
				t.Errorf("size %d: line %d starts with a dot", size, i)
			}
			if strings.ContainsAny(l, "\r\n") {
				t.Errorf("size %d: line %d holds a bare CR or LF: %q", size, i, l)
			}
			if len(l) > maxLine+1 {
				t.Errorf("size %d: line %d is %d characters long", size, i, len(l))
			}
		}
		if !bytes.Equal(b, makeBody(size)) {
			t.Errorf("size %d: two bodies differ", size)
		}
	}
}

func TestLastCount(t *testing.T) {
	// What smtp-sink -c wrote for three messages (one session each).
	out := "sess=0 quit=0 mesg=1\rsess=1 quit=1 mesg=1\rsess=1 quit=1 mesg=2\rsess=2 quit=2 mesg=2\r" +
		"sess=2 quit=2 mesg=3\rsess=3 quit=3 mesg=3\r"
	if n := lastCount([]byte(out)); n != 3 {
		t.Errorf("lastCount = %d, want 3", n)
	}
	// A counter cut in the middle of its writing does not count: "mesg=1" may be the start of "mesg=12".
	if n := lastCount([]byte("sess=9 quit=9 mesg=11\rsess=10 quit=10 mesg=1")); n != 11 {
		t.Errorf("lastCount of a cut update = %d, want 11", n)
	}
	if n := lastCount(nil); n != 0 {
		t.Errorf("lastCount(nil) = %d", n)
	}
	path := filepath.Join(t.TempDir(), "sink.out")
	if n, err := sinkCount(path); err != nil || n != 0 {
		t.Errorf("sinkCount of a missing file = %d, %v", n, err)
	}
	// Only the file's tail is read.
	long := strings.Repeat("sess=1 quit=1 mesg=1\r", 1000) + "sess=1 quit=1 mesg=1234\r"
	if err := os.WriteFile(path, []byte(long), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := sinkCount(path); err != nil || n != 1234 {
		t.Errorf("sinkCount = %d, %v; want 1234", n, err)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(ds, 50); p != 50*time.Millisecond {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(ds, 99); p != 99*time.Millisecond {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile(ds, 100); p != 100*time.Millisecond {
		t.Errorf("p100 = %v", p)
	}
	if p := percentile([]time.Duration{7}, 99); p != 7 {
		t.Errorf("p99 of one = %v", p)
	}
	if p := percentile(nil, 50); p != 0 {
		t.Errorf("p50 of none = %v", p)
	}
}

// testServer is a go-smtp server on loopback that keeps every message, or refuses those holding reject.
type testServer struct {
	addr   string
	reject string
	mu     sync.Mutex
	msgs   [][]byte
	froms  []string
}

func startServer(t *testing.T, reject string) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{addr: l.Addr().String(), reject: reject}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &testSession{s: s}, nil }))
	srv.Domain = "relay.test"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

type testSession struct {
	s    *testServer
	from string
}

func (s *testSession) Reset()        {}
func (s *testSession) Logout() error { return nil }
func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *testSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *testSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.s.reject != "" && bytes.Contains(b, []byte(s.s.reject)) {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Gtube pattern"}
	}
	s.s.mu.Lock()
	defer s.s.mu.Unlock()
	s.s.msgs = append(s.s.msgs, b)
	s.s.froms = append(s.s.froms, s.from)
	return nil
}

func TestLoadRun(t *testing.T) {
	srv := startServer(t, "")
	body := makeBody(5120)
	l := Load{Addr: srv.addr, Helo: "client.test", From: "sender@bench.test", To: "rcpt@dest.test",
		Sessions: 4, Messages: 25, Body: body, Timeout: 30 * time.Second, RunID: 42}
	res, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Latencies) != 25 {
		t.Fatalf("%d latencies, want 25", len(res.Latencies))
	}
	for i, d := range res.Latencies {
		if d <= 0 {
			t.Errorf("message %d: latency %v", i+1, d)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.msgs) != 25 {
		t.Fatalf("the server received %d messages, want 25", len(srv.msgs))
	}
	ids := map[string]bool{}
	for i, m := range srv.msgs {
		if srv.froms[i] != "sender@bench.test" {
			t.Errorf("message %d: MAIL FROM %q", i, srv.froms[i])
		}
		if !bytes.HasSuffix(m, body) {
			t.Errorf("message %d does not end with the body", i)
		}
		h, _, _ := strings.Cut(string(m), "\r\n\r\n")
		for _, f := range []string{"From: Bench <sender@bench.test>", "To: <rcpt@dest.test>", "Date: ", "MIME-Version: 1.0"} {
			if !strings.Contains(h, f) {
				t.Errorf("message %d: no %q in the header:\n%s", i, f, h)
			}
		}
		for _, line := range strings.Split(h, "\r\n") {
			if v, ok := strings.CutPrefix(line, "Message-ID: "); ok {
				ids[v] = true
			}
		}
	}
	if len(ids) != 25 {
		t.Errorf("%d distinct Message-IDs, want 25", len(ids))
	}
}

func TestLoadRunStopsAtARefusal(t *testing.T) {
	srv := startServer(t, "GTUBE")
	l := Load{Addr: srv.addr, Helo: "client.test", From: "sender@bench.test", To: "rcpt@dest.test",
		Sessions: 2, Messages: 10, Body: []byte(gtube + "\r\n"), Timeout: 30 * time.Second}
	_, err := l.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "end of data: 554") {
		t.Fatalf("Run = %v, want the 554 at the end of data", err)
	}
}

func TestProbe(t *testing.T) {
	srv := startServer(t, "GTUBE")
	var out bytes.Buffer
	if err := probeCmd([]string{"-addr", srv.addr, "-kind", "gtube"}, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "554 5.7.1 Gtube pattern") {
		t.Errorf("gtube probe printed %q", got)
	}
	out.Reset()
	if err := probeCmd([]string{"-addr", srv.addr, "-kind", "clean", "-id", "p1"}, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "250\n" {
		t.Errorf("clean probe printed %q", got)
	}
	srv.mu.Lock()
	n := len(srv.msgs)
	has := n == 1 && bytes.Contains(srv.msgs[0], []byte("Message-ID: <p1@bench.test>"))
	srv.mu.Unlock()
	if !has {
		t.Errorf("the server has %d messages, want the clean probe with its Message-ID", n)
	}
	if err := probeCmd([]string{"-addr", srv.addr, "-kind", "spam"}, &out); err == nil {
		t.Error("an unknown -kind was accepted")
	}
	if b, _ := probeBody("eicar"); !bytes.Contains(b, []byte("EICAR-STANDARD-ANTIVIRUS-TEST-FILE")) || len(eicar()) != 68 {
		t.Errorf("the EICAR probe is wrong: %q", b)
	}
}

func TestMeter(t *testing.T) {
	// A root process with a child that burns CPU and ends (its CPU then moves to the root's cutime), and a
	// child that stays.
	dir := t.TempDir()
	done := filepath.Join(dir, "done")
	cmd := exec.Command("sh", "-c", `i=0; (while [ $i -lt 300000 ]; do i=$((i+1)); done); : > "$1"; sleep 60 & wait`,
		"sh", done)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range children(cmd.Process.Pid) {
			if pr, err := os.FindProcess(p); err == nil {
				_ = pr.Kill()
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	m, err := StartMeter([]Group{{Name: "tree", Roots: []int{cmd.Process.Pid}}}, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(done); err == nil && len(children(cmd.Process.Pid)) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the busy child did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := m.Stop()
	if err != nil {
		t.Fatal(err)
	}
	g := res[0]
	if g.CPUTicks <= 0 {
		t.Errorf("CPU ticks %d: the reaped child's CPU was not counted", g.CPUTicks)
	}
	if g.PeakRSSKB <= 0 || g.PeakPSSKB <= 0 || g.PeakPSSKB > g.PeakRSSKB || g.Procs < 2 {
		t.Errorf("memory: %+v", g)
	}

	if _, err := StartMeter([]Group{{Name: "gone", Roots: []int{1 << 30}}}, time.Second); err == nil {
		t.Error("StartMeter accepted a PID that does not exist")
	}
	if _, err := parseGroup("relay=12,x"); err == nil {
		t.Error("parseGroup accepted x as a PID")
	}
	if g, err := parseGroup("milters=12, 34"); err != nil || g.Name != "milters" || len(g.Roots) != 2 || g.Roots[1] != 34 {
		t.Errorf("parseGroup = %+v, %v", g, err)
	}
}

func TestReport(t *testing.T) {
	res := func(mode, relay, side string, round int, acc, p50, cpuRelay, cpuMilters float64, rssKB int64) Result {
		return Result{Mode: mode, Relay: relay, Side: side, Round: round, Tool: "load", Size: 5120, Messages: 100,
			AcceptedPerS: acc, DeliveredPerS: acc, LatencyP50Ms: p50, LatencyP99Ms: 2 * p50,
			Groups: map[string]GroupStats{
				"relay":   {CPUMsPerMsg: cpuRelay, PeakRSSKB: rssKB, PeakPSSKB: rssKB / 2},
				"milters": {CPUMsPerMsg: cpuMilters, PeakRSSKB: 1024, PeakPSSKB: 1024},
			}}
	}
	rs := []Result{
		// Round 1: Easymail 200 vs 100 (2.0); round 2: 150 vs 100 (1.5); round 3: 300 vs 100 (3.0).
		res("sign", "easymail-sign", "easymail", 1, 200, 1, 3, 0, 10240),
		res("sign", "postfix-dkim", "anchor", 1, 100, 2, 2, 2, 20480),
		res("sign", "easymail-sign", "easymail", 2, 150, 1, 3, 0, 10240),
		res("sign", "postfix-dkim", "anchor", 2, 100, 2, 2, 2, 20480),
		res("sign", "easymail-sign", "easymail", 3, 300, 1, 3, 0, 10240),
		res("sign", "postfix-dkim", "anchor", 3, 100, 2, 2, 2, 20480),
		{Mode: "sign", Relay: "postfix-dkim", Side: "anchor", Round: 1, Tool: "smtp-source", Size: 5120, AcceptedPerS: 99},
		res("plain", "postfix", "anchor", 1, 400, 1, 4, 0, 20480),
		res("plain", "easymail", "easymail", 1, 440, 1, 2, 0, 10240),
		// The tls mode: two policies against the baseline, one ratio row each.
		res("tls", "easymail-tls-sts", "easymail", 1, 380, 1, 2.1, 0, 10240),
		res("tls", "easymail-tls-verify", "easymail", 1, 390, 1, 2.2, 0, 10240),
		res("tls", "easymail-tls-may", "anchor", 1, 400, 1, 2, 0, 10240),
	}
	var b strings.Builder
	if err := writeReport(&b, rs, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(out, "\n")
	var rows []string
	for _, l := range lines {
		if strings.HasPrefix(l, "plain ") || strings.HasPrefix(l, "sign ") || strings.HasPrefix(l, "tls ") {
			rows = append(rows, strings.Join(strings.Fields(l), " "))
		}
	}
	want := []string{
		// mode size relay n acc del p50 p99 cpu-relay milters scanners total RSS PSS scannersRSS smtp-source
		"plain 5 KB easymail 1 440.0 440.0 1.00 2.00 2.00 0.00 0.00 2.00 11.0 6.0 0.0 -",
		"plain 5 KB postfix 1 400.0 400.0 1.00 2.00 4.00 0.00 0.00 4.00 21.0 11.0 0.0 -",
		"plain 5 KB ratio EM/anchor 1 1.10 1.10 1.00 1.00 0.50 - 0.50 0.52 0.55",
		"sign 5 KB easymail-sign 3 200.0 200.0 1.00 2.00 3.00 0.00 0.00 3.00 11.0 6.0 0.0 -",
		"sign 5 KB postfix-dkim 3 100.0 100.0 2.00 4.00 2.00 2.00 0.00 4.00 21.0 11.0 0.0 99.0",
		"sign 5 KB ratio EM/anchor 3 2.00 2.00 0.50 0.50 1.50 - 0.75 0.52 0.55",
		"tls 5 KB easymail-tls-sts 1 380.0 380.0 1.00 2.00 2.10 0.00 0.00 2.10 11.0 6.0 0.0 -",
		"tls 5 KB easymail-tls-verify 1 390.0 390.0 1.00 2.00 2.20 0.00 0.00 2.20 11.0 6.0 0.0 -",
		"tls 5 KB easymail-tls-may 1 400.0 400.0 1.00 2.00 2.00 0.00 0.00 2.00 11.0 6.0 0.0 -",
		"tls 5 KB ratio easymail-tls-sts/easymail-tls-may 1 0.95 0.95 1.00 1.00 1.05 - 1.05 1.00 1.00",
		"tls 5 KB ratio easymail-tls-verify/easymail-tls-may 1 0.97 0.97 1.00 1.00 1.10 - 1.10 1.00 1.00",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s\nfull output:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"), out)
	}
	b.Reset()
	if err := writeReport(&b, rs, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| sign | 5 KB | ratio EM/anchor | 3 | 2.00 |") {
		t.Errorf("markdown:\n%s", b.String())
	}
}
