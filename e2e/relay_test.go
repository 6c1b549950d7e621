package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"easymail/internal/testkit"
)

func swaks(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(need(t, "swaks"), append([]string{"--timeout", "20"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestSwaksThroughTheBinary(t *testing.T) {
	w := newWorld(t)
	mx := w.mx(t, "dest.test", 11)
	r := w.start(t, t.TempDir())
	r.customer(t, "Acme", "acme.test", "127.0.0.1/32")

	out, err := swaks(t, "--server", r.smtpAddr, "--from", "alice@acme.test", "--to", "bob@dest.test",
		"--h-From", "Alice <alice@acme.test>", "--h-Subject", "swaks e2e", "--tls")
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if !strings.Contains(out, "250 2.0.0 Ok: queued as") {
		t.Fatalf("no 250 with a queue id:\n%s", out)
	}
	got := mx.WaitMessages(t, 1, 15*time.Second)[0]
	if got.From != "alice@acme.test" || got.To[0] != "bob@dest.test" || got.RemoteIP != "127.0.0.3" || got.HELO != "out3.e2e.test" {
		t.Fatalf("arrived %+v", got)
	}
	if !strings.Contains(string(got.Data), "Subject: swaks e2e") || !strings.Contains(string(got.Data), "with ESMTPS") {
		t.Fatalf("content:\n%s", got.Data)
	}

	// Unregistered client (swaks binds 127.0.0.9): refused in the greeting.
	out, _ = swaks(t, "--server", r.smtpAddr, "--local-interface", "127.0.0.9", "--from", "alice@acme.test",
		"--to", "bob@dest.test")
	if !strings.Contains(out, "554 5.7.1") {
		t.Fatalf("unregistered client not refused with 554 5.7.1:\n%s", out)
	}
	// Foreign sender domain.
	out, _ = swaks(t, "--server", r.smtpAddr, "--from", "x@other.test", "--to", "bob@dest.test")
	if !strings.Contains(out, "550 5.7.1") {
		t.Fatalf("foreign sender not refused with 550 5.7.1:\n%s", out)
	}
	// Spoofed header From.
	out, _ = swaks(t, "--server", r.smtpAddr, "--from", "alice@acme.test", "--to", "bob@dest.test",
		"--h-From", "ceo@bank.test")
	if !strings.Contains(out, "550 5.7.1") {
		t.Fatalf("spoofed header From not refused with 550 5.7.1:\n%s", out)
	}
	if n := len(mx.Messages()); n != 1 {
		t.Fatalf("%d messages at the MX, want 1", n)
	}
	// The trace is there, from the CLI.
	tr := r.cli(t, "messages", "search", "--recipient", "bob@dest.test")
	if !strings.Contains(tr, "delivered") || !strings.Contains(tr, "rejected") {
		t.Fatalf("messages search:\n%s", tr)
	}
}

func TestPostfixAsCustomerServer(t *testing.T) {
	need(t, "postfix")
	w := newWorld(t)
	mx := w.mx(t, "dest.test", 11)
	r := w.start(t, t.TempDir())
	r.customer(t, "Acme", "acme.test", "127.0.0.50")
	pf := testkit.StartPostfix(t, testkit.PostfixOptions{
		ListenAddr: "127.0.0.50:0",
		RelayHost:  "[127.0.0.1]:" + strings.Split(r.smtpAddr, ":")[1],
		Extra:      map[string]string{"smtp_bind_address": "127.0.0.50", "smtp_tls_security_level": "may"},
	})
	for i := range 3 {
		out, err := swaks(t, "--server", pf.Addr(), "--from", "alice@acme.test", "--to", fmt.Sprintf("user%d@dest.test", i),
			"--h-From", "alice@acme.test", "--h-Subject", fmt.Sprint("via postfix ", i))
		if err != nil {
			t.Fatalf("swaks to postfix: %v\n%s", err, out)
		}
	}
	got := mx.WaitMessages(t, 3, 60*time.Second)
	for _, m := range got {
		if m.From != "alice@acme.test" || m.RemoteIP != "127.0.0.3" || !strings.Contains(string(m.Data), "via postfix") {
			t.Fatalf("arrived %+v", m)
		}
	}
}

// TestCrashLosesNoAcknowledgedMessage kills the relay with SIGKILL while clients are sending, restarts it,
// and checks that every message that got a 250 arrives.
func TestCrashLosesNoAcknowledgedMessage(t *testing.T) {
	w := newWorld(t)
	mx := w.mx(t, "dest.test", 11)
	mx.SetDelay(5 * time.Millisecond)
	dir := t.TempDir()
	r := w.start(t, dir)
	r.customer(t, "Acme", "acme.test", "127.0.0.1/32")

	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("c%d-m%d", c, i)
				if sendOne(r.smtpAddr, id) == nil {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	// Crash once enough messages have been acknowledged for the test to prove something (however long the
	// machine takes to get there), while the clients go on sending.
	acks := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	deadline := time.Now().Add(60 * time.Second)
	for acks() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages acknowledged within 60s; the test would prove nothing", acks())
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.kill()
	close(stop)
	wg.Wait()
	n := acks()

	w.start(t, dir)
	deadline = time.Now().Add(90 * time.Second)
	for {
		arrived := map[string]bool{}
		for _, m := range mx.Messages() {
			arrived[seq(m.Data)] = true
		}
		missing := 0
		for id := range acked {
			if !arrived[id] {
				missing++
			}
		}
		if missing == 0 {
			t.Logf("%d acknowledged, %d distinct arrived, %d deliveries in all (repeats are allowed)", n, len(arrived), len(mx.Messages()))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages never arrived", missing, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func seq(data []byte) string {
	for _, l := range strings.Split(string(data), "\r\n") {
		if v, ok := strings.CutPrefix(l, "X-Seq: "); ok {
			return v
		}
	}
	return ""
}

func sendOne(addr, id string) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := smtp.NewClient(conn)
	defer c.Close()
	msg := "From: alice@acme.test\r\nTo: bob@dest.test\r\nSubject: crash\r\nX-Seq: " + id + "\r\n\r\n" +
		strings.Repeat("body line\r\n", 50)
	return c.SendMail("alice@acme.test", []string{"bob@dest.test"}, strings.NewReader(msg))
}

// TestKilledDeliveryIsRetriedAtOnce: a delivery in progress when the relay is killed (SIGKILL) is made again
// as soon as the relay is back, not at its retry time (10 minutes here): the claim of a dead process is
// released at start. It waited about the first retry step.
func TestKilledDeliveryIsRetriedAtOnce(t *testing.T) {
	w := newWorld(t)
	w.retry = "10m"
	mx := w.mx(t, "dest.test", 11)
	// Slow enough that the delivery is surely in progress when the relay dies.
	mx.SetDelay(time.Minute)
	dir := t.TempDir()
	r := w.start(t, dir)
	r.customer(t, "Acme", "acme.test", "127.0.0.1/32")
	if err := sendOne(r.smtpAddr, "in-flight"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for mx.Connections() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the relay did not connect to the MX within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.kill()
	mx.SetDelay(0)
	mx.DropConnections()

	r = w.start(t, dir)
	got := mx.WaitMessages(t, 1, 60*time.Second)
	if seq(got[0].Data) != "in-flight" {
		t.Fatalf("arrived %q", got[0].Data)
	}
	if !strings.Contains(r.log.String(), `"claims_released":1`) {
		t.Fatalf("the restart did not say it released the dead process's claim:\n%s", lastLines(r.log.String(), 30))
	}
}
