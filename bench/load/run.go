package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Result is one run of one relay: a JSON line of the benchmark's results file.
type Result struct {
	Mode     string `json:"mode"`  // plain, sign or scan: which pair of relays this run belongs to
	Relay    string `json:"relay"` // the relay's name, e.g. postfix-dkim
	Side     string `json:"side"`  // easymail or anchor
	Round    int    `json:"round"`
	Tool     string `json:"tool"` // the load client: load (this program) or smtp-source
	Size     int    `json:"size"` // body bytes of each message
	Messages int    `json:"messages"`
	Sessions int    `json:"sessions"`

	AcceptedPerS  float64 `json:"accepted_per_s"`  // messages / wall time of the load (every 250 received)
	DeliveredPerS float64 `json:"delivered_per_s"` // messages / time until the sink has received all of them
	// The time from the end of DATA (writing the ".") to the 250, in milliseconds; 0 for smtp-source.
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`

	Groups map[string]GroupStats `json:"groups"` // by group name: relay, milters, scanners
	// The load client's own CPU per message (this program, or smtp-source), which the relays compete with.
	LoadCPUMsPerMsg float64 `json:"load_cpu_ms_per_msg"`
}

// GroupStats is one watched group's figures in a Result.
type GroupStats struct {
	CPUMsPerMsg float64 `json:"cpu_ms_per_msg"`
	PeakRSSKB   int64   `json:"peak_rss_kb"`
	PeakPSSKB   int64   `json:"peak_pss_kb"`
	Procs       int     `json:"procs"`
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	addr := fs.String("addr", "", "the relay's SMTP listener, host:port")
	sessions := fs.Int("sessions", 20, "concurrent sessions")
	messages := fs.Int("messages", 2000, "messages in all, one per connection")
	size := fs.Int("size", 5120, "body bytes of each message (smtp-source's -l)")
	from := fs.String("from", "sender@bench.test", "envelope sender and header From")
	to := fs.String("to", "rcpt@dest.test", "envelope recipient and header To")
	helo := fs.String("helo", "client.bench.test", "EHLO name")
	sinkOut := fs.String("sink-out", "", "smtp-sink -c output file: the run ends when it has counted every message")
	timeout := fs.Duration("timeout", 300*time.Second, "bound of the whole run, and of each session")
	interval := fs.Duration("interval", 100*time.Millisecond, "memory sampling interval")
	tool := fs.String("tool", "load", "load: this program's client; smtp-source: run smtp-source with the same load")
	var watch multiFlag
	fs.Var(&watch, "watch", "NAME=PID[,PID...]: process trees to measure together (repeatable)")
	var r Result
	fs.StringVar(&r.Mode, "mode", "", "label: the mode (plain, sign, scan)")
	fs.StringVar(&r.Relay, "relay", "", "label: the relay's name")
	fs.StringVar(&r.Side, "side", "", "label: easymail or anchor")
	fs.IntVar(&r.Round, "round", 0, "label: the round")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *addr == "":
		return errors.New("-addr is required")
	case *sinkOut == "":
		return errors.New("-sink-out is required")
	case *sessions < 1 || *messages < 1 || *size < 2:
		return errors.New("-sessions and -messages must be at least 1, -size at least 2")
	case *tool != "load" && *tool != "smtp-source":
		return fmt.Errorf("-tool must be load or smtp-source, not %q", *tool)
	}
	var groups []Group
	for _, w := range watch {
		g, err := parseGroup(w)
		if err != nil {
			return err
		}
		groups = append(groups, g)
	}
	r.Tool, r.Size, r.Messages, r.Sessions = *tool, *size, *messages, *sessions

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	base, err := sinkCount(*sinkOut)
	if err != nil {
		return err
	}
	m, err := StartMeter(groups, *interval)
	if err != nil {
		return err
	}
	cpu0 := ownCPU()
	t0 := time.Now()
	var lats []time.Duration
	if *tool == "load" {
		l := Load{Addr: *addr, Helo: *helo, From: *from, To: *to, Sessions: *sessions, Messages: *messages,
			Body: makeBody(*size), Timeout: *timeout, RunID: t0.UnixNano()}
		res, err := l.Run(ctx)
		if err != nil {
			_, _ = m.Stop()
			return err
		}
		lats = res.Latencies
	} else {
		cmd := exec.CommandContext(ctx, "smtp-source", "-s", strconv.Itoa(*sessions), "-m", strconv.Itoa(*messages),
			"-l", strconv.Itoa(*size), "-M", *helo, "-f", *from, "-t", *to, *addr)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			_, _ = m.Stop()
			return fmt.Errorf("smtp-source (it stops at the first reply that is not 2xx): %v: %s", err,
				strings.TrimSpace(out.String()))
		}
	}
	accepted := time.Since(t0)
	if err := waitSink(ctx, *sinkOut, base+*messages); err != nil {
		_, _ = m.Stop()
		got, _ := sinkCount(*sinkOut)
		return fmt.Errorf("the sink received %d of %d messages: %w", got-base, *messages, err)
	}
	delivered := time.Since(t0)
	r.LoadCPUMsPerMsg = float64((ownCPU() - cpu0).Microseconds()) / 1000 / float64(*messages)
	gr, err := m.Stop()
	if err != nil {
		return err
	}
	n := float64(*messages)
	r.AcceptedPerS = round1(n / accepted.Seconds())
	r.DeliveredPerS = round1(n / delivered.Seconds())
	if len(lats) > 0 {
		r.LatencyP50Ms = ms(percentile(lats, 50))
		r.LatencyP99Ms = ms(percentile(lats, 99))
	}
	r.Groups = map[string]GroupStats{}
	for i, g := range groups {
		r.Groups[g.Name] = GroupStats{
			CPUMsPerMsg: float64(gr[i].CPUTicks) * 1000 / userHZ / n,
			PeakRSSKB:   gr[i].PeakRSSKB, PeakPSSKB: gr[i].PeakPSSKB, Procs: gr[i].Procs,
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// ownCPU returns the user+system CPU of this process and of the children it waited for (smtp-source).
func ownCPU() time.Duration {
	var t time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			t += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return t
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// sinkCount returns the number of messages smtp-sink has counted so far: the last "mesg=N" that its -c
// option writes to its output, rewriting the line after a "\r" at every message. A missing or empty file
// counts 0.
func sinkCount(path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	const tail = 256
	off := max(st.Size()-tail, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	return lastCount(b), nil
}

// lastCount returns N of the last complete "mesg=N\r" in b, or 0 (smtp-sink ends each update with "\r"; a
// number without it may be cut in the middle of its writing).
func lastCount(b []byte) int {
	for end := len(b); ; {
		i := bytes.LastIndex(b[:end], []byte("mesg="))
		if i < 0 {
			return 0
		}
		j := i + len("mesg=")
		k := j
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if k > j && k < len(b) && b[k] == '\r' {
			n, err := strconv.Atoi(string(b[j:k]))
			if err == nil {
				return n
			}
		}
		end = i
	}
}

// waitSink polls the sink's counter until it reaches want.
func waitSink(ctx context.Context, path string, want int) error {
	for {
		n, err := sinkCount(path)
		if err != nil {
			return err
		}
		if n >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func probeCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	addr := fs.String("addr", "", "the relay's SMTP listener, host:port")
	kind := fs.String("kind", "clean", "the message: clean, gtube (rspamd's test pattern) or eicar (the antivirus test file)")
	from := fs.String("from", "sender@bench.test", "envelope sender and header From")
	to := fs.String("to", "rcpt@dest.test", "envelope recipient and header To")
	id := fs.String("id", "probe", "Message-ID local part prefix, to find the message at the sink")
	timeout := fs.Duration("timeout", 60*time.Second, "bound of the session")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		return errors.New("-addr is required")
	}
	body, err := probeBody(*kind)
	if err != nil {
		return err
	}
	hdr := fmt.Appendf(nil, "From: Bench <%s>\r\nTo: <%s>\r\nSubject: Benchmark probe %s\r\nDate: %s\r\n"+
		"Message-ID: <%s@bench.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
		*from, *to, *kind, time.Now().Format(time.RFC1123Z), *id)
	_, err = session(context.Background(), *addr, "client.bench.test", *from, *to, hdr, body, *timeout, false)
	var re *replyError
	switch {
	case err == nil:
		_, err = fmt.Fprintln(stdout, "250")
		return err
	case errors.As(err, &re) && re.Stage == "end of data":
		_, err = fmt.Fprintf(stdout, "%d %s\n", re.Code, strings.ReplaceAll(re.Msg, "\n", " "))
		return err
	}
	return err
}
