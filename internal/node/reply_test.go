package node_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/cli"
	"easymail/internal/config"
)

// TestTraceKeepsRemoteReply: the remote host's reply is kept as it wrote it for a delivery (it was once
// replaced by "250 2.0.0 Delivered"), a deferral and a bounce, in the attempt records and the recipients'
// last reply, shown by GET /messages/{id}, by `easymail trace` and in the DSN.
func TestTraceKeepsRemoteReply(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Delivery.Retry = []time.Duration{200 * time.Millisecond} })
	mx := e.mx(t, "dest.test", 11)
	senderMX := e.mx(t, "acme.test", 12)
	mx.ReplyData(250, [3]int{2, 0, 0}, "Ok: queued as FAKE123")
	mx.FailNext(1, 451, [3]int{4, 7, 1}, "Greylisted\x1b[31m, retry in 1s")
	mx.Reply("gone@dest.test", 550, [3]int{5, 1, 1}, "<gone@dest.test>: Recipient address rejected: User unknown")
	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test", "gone@dest.test"},
		message("alice@acme.test", "bob@dest.test", "replies"))
	if err != nil {
		t.Fatal(err)
	}
	id := queueID(t, reply)
	mx.WaitMessages(t, 1, 15*time.Second)
	e.waitStatus(t, id, "bounced") // one delivered, one bounced

	var tr api.Trace
	e.n.API(t, "GET", "/messages/"+id, nil, 200, &tr)
	var got []string
	for _, a := range tr.Attempts {
		got = append(got, a.Recipient+" "+a.Outcome+": "+a.RemoteReply)
	}
	want := []string{
		// The first attempt: MAIL FROM refused for both.
		"bob@dest.test deferred: 451 4.7.1 Greylisted [31m, retry in 1s",
		"gone@dest.test deferred: 451 4.7.1 Greylisted [31m, retry in 1s",
		"bob@dest.test delivered: 250 2.0.0 Ok: queued as FAKE123",
		"gone@dest.test bounced: 550 5.1.1 <gone@dest.test>: Recipient address rejected: User unknown",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("attempts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r := tr.Recipients; len(r) != 2 || r[0].LastRemoteReply != "250 2.0.0 Ok: queued as FAKE123" ||
		r[1].LastRemoteReply != "550 5.1.1 <gone@dest.test>: Recipient address rejected: User unknown" {
		t.Fatalf("recipients %+v", r)
	}

	var out, errs bytes.Buffer
	if code := cli.Main(context.Background(), []string{"--api", e.n.APIURL, "--token", e.n.Token, "trace", id}, &out, &errs); code != 0 {
		t.Fatalf("easymail trace: exit %d: %s", code, errs.String())
	}
	for _, w := range want {
		if _, remote, _ := strings.Cut(w, ": "); !strings.Contains(out.String(), remote) {
			t.Errorf("easymail trace does not show %q:\n%s", remote, out.String())
		}
	}
	if strings.Contains(out.String(), "\x1b") || strings.Contains(out.String(), "Delivered") {
		t.Errorf("easymail trace:\n%s", out.String())
	}

	// The DSN's diagnostic is the remote host's own reply (RFC 3464 §2.3.6).
	reps := waitDSN(t, senderMX, 1)
	if d := reps[0].Recipients[0].Diagnostic; d != "550 5.1.1 <gone@dest.test>: Recipient address rejected: User unknown" {
		t.Fatalf("DSN diagnostic %q", d)
	}

	// The original and its DSN link to each other, and the trace tells the story in time order.
	e.n.API(t, "GET", "/messages/"+id, nil, 200, &tr)
	if len(tr.DSNs) != 1 || tr.DSNFor != "" {
		t.Fatalf("original: dsns %v dsn_for %q", tr.DSNs, tr.DSNFor)
	}
	var dsnTrace api.Trace
	e.n.API(t, "GET", "/messages/"+tr.DSNs[0], nil, 200, &dsnTrace)
	if !dsnTrace.IsDSN || dsnTrace.DSNFor != id || len(dsnTrace.DSNs) != 0 {
		t.Fatalf("DSN %s: is_dsn %v dsn_for %q dsns %v", tr.DSNs[0], dsnTrace.IsDSN, dsnTrace.DSNFor, dsnTrace.DSNs)
	}
	var events []string
	for i, ev := range tr.Timeline {
		events = append(events, ev.Event)
		if i > 0 && ev.At.Before(tr.Timeline[i-1].At) {
			t.Errorf("timeline out of order at %d: %+v", i, tr.Timeline)
		}
	}
	wantEvents := "received scanned signed attempt attempt attempt attempt dsn bounced"
	if strings.Join(events, " ") != wantEvents {
		t.Fatalf("timeline events %q, want %q:\n%+v", strings.Join(events, " "), wantEvents, tr.Timeline)
	}
	if d := tr.Timeline[len(tr.Timeline)-2].Detail; !strings.Contains(d, tr.DSNs[0]) {
		t.Errorf("dsn event %q does not name the DSN", d)
	}
	out.Reset()
	if code := cli.Main(context.Background(), []string{"--api", e.n.APIURL, "--token", e.n.Token, "trace", id}, &out, &errs); code != 0 {
		t.Fatalf("easymail trace: exit %d: %s", code, errs.String())
	}
	for _, w := range []string{"Timeline:", "Authentication:", "dkim_aligned", "dsns", tr.DSNs[0],
		"signed", "DKIM d=acme.test"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("easymail trace lacks %q:\n%s", w, out.String())
		}
	}
}
