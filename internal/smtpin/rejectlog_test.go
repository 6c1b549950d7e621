package smtpin

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"easymail/internal/testkit"
)

// TestRejectLines: every refused connection and command gets one INFO line starting "reject:", with the
// client, the stage and the reply (and the envelope so far), as operators grep Postfix's logs; no line of a
// normal session carries an empty err attribute.
func TestRejectLines(t *testing.T) {
	var buf testkit.SyncBuffer
	ts := startServer(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	// An unregistered client (127.0.0.2 is no customer's) is refused at the greeting.
	stranger := dialRaw(t, ts.addr, "127.0.0.2")
	wantPrefix(t, stranger.reply(), "554 5.7.1")

	c, _ := greet(t, ts.addr, "127.0.0.1")
	c.cmd("EHLO client.acme.test")
	wantPrefix(t, c.cmd("MAIL FROM:<mallory@evil.test>"), "550 5.7.1")
	wantPrefix(t, c.cmd("MAIL FROM:<alice@acme.test>"), "250 ")
	wantPrefix(t, c.cmd("RCPT TO:<bob@localhost>"), "501 5.1.3")
	wantPrefix(t, c.cmd("RCPT TO:<bob@dest.test>"), "250 ")
	wantPrefix(t, c.cmd("DATA"), "354 ")
	wantPrefix(t, c.cmd("From: alice@acme.test\r\n\r\nbare\nLF\r\n."), "554 5.6.0")
	c.cmd("QUIT")

	want := []struct{ line, attrs string }{
		{"reject: CONNECT", `stage=connect ip=127.0.0.2 reason="not a registered source IP or relay host" reply="554 5.7.1`},
		{"reject: MAIL", `reply="550 5.7.1`},
		{"reject: RCPT", `reply="501 5.1.3`},
		{"reject: DATA", `reply="554 5.6.0`},
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, w := range want {
		for {
			if line := findLine(buf.String(), w.line); line != "" {
				if !strings.Contains(line, "level=INFO") || !strings.Contains(line, w.attrs) {
					t.Errorf("%s line: %s\nwant level=INFO and %s", w.line, line, w.attrs)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q line in the log:\n%s", w.line, buf.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	mail := findLine(buf.String(), "reject: MAIL")
	rcpt := findLine(buf.String(), "reject: RCPT")
	data := findLine(buf.String(), "reject: DATA")
	for name, w := range map[string][]string{
		mail: {"from=<mallory@evil.test>", "ip=127.0.0.1", "customer=C1", "helo=client.acme.test"},
		rcpt: {"from=<alice@acme.test>", "to=<bob@localhost>"},
		data: {"from=<alice@acme.test>", "stage=data"},
	} {
		for _, attr := range w {
			if !strings.Contains(name, attr) {
				t.Errorf("line %s lacks %s", name, attr)
			}
		}
	}
	if strings.Contains(buf.String(), `err=""`) {
		t.Errorf("a line carries an empty err:\n%s", buf.String())
	}
}

func findLine(log, msg string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `msg="`+msg+`"`) {
			return l
		}
	}
	return ""
}

// TestRejectLinesAreRateLimited: past rejectLinesPerSecond lines in a second, the next are left out and
// counted in the next line written.
func TestRejectLinesAreRateLimited(t *testing.T) {
	var r rejectLog
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for i := range rejectLinesPerSecond {
		if ok, _ := r.allow(t0.Add(time.Duration(i) * time.Millisecond)); !ok {
			t.Fatalf("line %d refused", i)
		}
	}
	for i := range 5 {
		if ok, _ := r.allow(t0.Add(500*time.Millisecond + time.Duration(i))); ok {
			t.Fatalf("line %d past the limit written", rejectLinesPerSecond+i)
		}
	}
	ok, left := r.allow(t0.Add(time.Second))
	if !ok || left != 5 {
		t.Fatalf("next second: ok=%v left out %d, want true 5", ok, left)
	}
}
