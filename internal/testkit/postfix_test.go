package testkit

import (
	"bytes"
	"fmt"
	"io"
	"net"
	netsmtp "net/smtp"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// postfixTestMessage is one message received by postfixTestSink.
type postfixTestMessage struct {
	from string
	to   []string
	data []byte
}

// postfixTestSink is a go-smtp server that plays the remote MX and hands every message to a channel.
type postfixTestSink struct {
	addr string
	msgs chan postfixTestMessage
}

func startPostfixTestSink(t *testing.T, addr string) *postfixTestSink {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return startPostfixTestSinkOn(t, l)
}

// startPostfixTestSinkOn serves the sink on l.
func startPostfixTestSinkOn(t *testing.T, l net.Listener) *postfixTestSink {
	t.Helper()
	s := &postfixTestSink{addr: l.Addr().String(), msgs: make(chan postfixTestMessage, 16)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &postfixTestSession{sink: s}, nil
	}))
	srv.Domain = "mx.dest.test"
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

// wait returns the next message or fails the test after timeout, showing the given logs.
func (s *postfixTestSink) wait(t *testing.T, timeout time.Duration, logs ...*Postfix) postfixTestMessage {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(timeout):
		var b strings.Builder
		for _, p := range logs {
			fmt.Fprintf(&b, "\n--- maillog of %s:\n%s", p.Addr(), p.Log())
		}
		t.Fatalf("no message reached the sink %s within %v%s", s.addr, timeout, b.String())
		return postfixTestMessage{}
	}
}

type postfixTestSession struct {
	sink *postfixTestSink
	msg  postfixTestMessage
}

func (s *postfixTestSession) Reset()        { s.msg = postfixTestMessage{} }
func (s *postfixTestSession) Logout() error { return nil }
func (s *postfixTestSession) Mail(from string, _ *smtp.MailOptions) error {
	s.msg.from = from
	return nil
}
func (s *postfixTestSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}
func (s *postfixTestSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = b
	s.sink.msgs <- s.msg
	return nil
}

// postfixSwaks submits one message with swaks to addr.
func postfixSwaks(t *testing.T, addr, from, to, subject string) {
	t.Helper()
	path, err := exec.LookPath("swaks")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("swaks is not installed: %v", err)
		}
		t.Fatalf("swaks is required when CI is set: %v", err)
	}
	out, err := exec.Command(path, "--server", addr, "--helo", "client.test", "--from", from, "--to", to,
		"--header", "Subject: "+subject, "--body", "Body of "+subject).CombinedOutput()
	if err != nil {
		t.Fatalf("swaks to %s: %v\n%s", addr, err, out)
	}
}

func postfixPort(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPostfixRelayChain(t *testing.T) {
	t.Parallel()
	sink := startPostfixTestSink(t, "127.0.0.1:0")
	// B plays a second hop that delivers by transport; A plays the customer's server with a smarthost.
	b := StartPostfix(t, PostfixOptions{
		ListenAddr: "127.0.0.51:0",
		Transport:  "smtp:[127.0.0.1]:" + postfixPort(t, sink.addr),
	})
	a := StartPostfix(t, PostfixOptions{
		ListenAddr: "127.0.0.50:0",
		RelayHost:  "[127.0.0.51]:" + postfixPort(t, b.Addr()),
	})
	if a.Dir() == b.Dir() {
		t.Fatalf("two instances share %s", a.Dir())
	}

	postfixSwaks(t, a.Addr(), "sender@a.test", "rcpt@dest.test", "relay-chain-7f3a")
	m := sink.wait(t, 30*time.Second, a, b)
	if m.from != "sender@a.test" || len(m.to) != 1 || m.to[0] != "rcpt@dest.test" {
		t.Fatalf("envelope from %q to %q, want sender@a.test to [rcpt@dest.test]", m.from, m.to)
	}
	data := string(m.data)
	if !strings.Contains(data, "Subject: relay-chain-7f3a") || !strings.Contains(data, "Body of relay-chain-7f3a") {
		t.Fatalf("message lost its subject or body:\n%s", data)
	}
	// Each hop adds its own Received header (RFC 5321 §4.4): both instances handled the message.
	for _, p := range []*Postfix{a, b} {
		host := postfixHostname(p.Addr())
		if !strings.Contains(data, "by "+host) {
			t.Errorf("no Received header by %s:\n%s", host, data)
		}
	}

	a.WaitQueueEmpty(t, 10*time.Second)
	b.WaitQueueEmpty(t, 10*time.Second)
	// postlogd writes the log lines it is sent a little later than they happen: wait for them.
	postfixWaitLog(t, a, "relay=127.0.0.51[127.0.0.51]:"+postfixPort(t, b.Addr()))
	postfixWaitLog(t, b, "relay=127.0.0.1[127.0.0.1]:"+postfixPort(t, sink.addr))
	postfixWaitLog(t, b, "status=sent")
}

// postfixWaitLog waits until the instance's maillog contains substr.
func postfixWaitLog(t *testing.T, p *Postfix, substr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("the maillog of %s has no %q:\n%s", p.Addr(), substr, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPostfixRetryAndFlush(t *testing.T) {
	t.Parallel()
	// Nothing listens on the destination at first (its port is held, refusing connections, until the sink
	// listens on it): the message is deferred.
	destPort := ReserveMXPort(t, "127.0.0.1")
	dest := destPort.Addr("127.0.0.1")
	p := StartPostfix(t, PostfixOptions{
		ListenAddr: "127.0.0.52:0",
		Transport:  "smtp:[127.0.0.1]:" + postfixPort(t, dest),
		Extra:      map[string]string{"smtp_tls_security_level": "none"},
	})
	postfixSwaks(t, p.Addr(), "sender@a.test", "rcpt@dest.test", "retry-91c2")

	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.Log(), "status=deferred") {
		if time.Now().After(deadline) {
			t.Fatalf("no deferral logged:\n%s", p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p.QueueEmpty() {
		t.Fatalf("queue empty while the message is deferred:\n%s", p.Log())
	}

	sink := startPostfixTestSinkOn(t, destPort.Listen(t, "127.0.0.1"))
	p.Flush()
	m := sink.wait(t, 20*time.Second, p)
	if !bytes.Contains(m.data, []byte("Subject: retry-91c2")) {
		t.Fatalf("wrong message delivered:\n%s", m.data)
	}
	p.WaitQueueEmpty(t, 10*time.Second)
	if !p.QueueEmpty() {
		t.Fatal("QueueEmpty is false after WaitQueueEmpty returned")
	}

	// Stop ends the instance: its smtpd no longer answers.
	p.Stop()
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		_ = c.Close()
		t.Fatalf("%s still accepts connections after Stop", p.Addr())
	}
}

// postfixFakeTB records the failure StartPostfix reports instead of failing the real test.
type postfixFakeTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *postfixFakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *postfixFakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *postfixFakeTB) Skipf(format string, args ...any) { f.Fatalf("skipped: "+format, args...) }

// postfixStartFailure runs StartPostfix with o and returns the failure it reported, or "" if it started.
func postfixStartFailure(t *testing.T, o PostfixOptions) string {
	f := &postfixFakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartPostfix(f, o)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msg
}

func TestStartPostfixReportsErrors(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(postfixCommand); err != nil && os.Getenv("CI") == "" {
		t.Skip("Postfix is not installed")
	}
	cases := []struct {
		name string
		o    PostfixOptions
		want string
	}{
		{"no listen address", PostfixOptions{Transport: "discard:"}, "ListenAddr: required"},
		{"host name as listen address", PostfixOptions{ListenAddr: "localhost:25", Transport: "discard:"},
			"must be an IP address"},
		{"no route", PostfixOptions{ListenAddr: "127.0.0.53:0"}, "needs RelayHost or Transport"},
		{"multi-line extra", PostfixOptions{ListenAddr: "127.0.0.53:0", Transport: "discard:",
			Extra: map[string]string{"myhostname": "a\nrelayhost = x"}}, "must be one line"},
		// Postfix itself rejects this one; its message must reach the test output.
		{"bad setting", PostfixOptions{ListenAddr: "127.0.0.53:0", Transport: "discard:",
			Extra: map[string]string{"default_process_limit": "lots"}},
			"bad numerical configuration: default_process_limit = lots"},
	}
	for _, c := range cases {
		got := postfixStartFailure(t, c.o)
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: failure %q, want it to contain %q", c.name, got, c.want)
		}
	}
}

func TestPostfixMainCF(t *testing.T) {
	cf, err := postfixMainCF(PostfixOptions{
		RelayHost: "[127.0.0.1]:2525",
		Extra:     map[string]string{"smtp_tls_security_level": "encrypt", "message_size_limit": "1000000"},
	}, "127.0.0.50:2600", "/x", "/x/queue", "/x/data")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"relayhost = [127.0.0.1]:2525\n",
		"smtp_tls_security_level = encrypt\n",
		"message_size_limit = 1000000\n",
		"mynetworks = 127.0.0.0/8\n",
		"myhostname = postfix-127-0-0-50-2600.test\n",
		"inet_protocols = ipv4\n",
		"queue_directory = /x/queue\n",
	} {
		if !strings.Contains(cf, want) {
			t.Errorf("main.cf lacks %q:\n%s", want, cf)
		}
	}
	if strings.Contains(cf, "smtp_tls_security_level = may") {
		t.Errorf("Extra did not override the default:\n%s", cf)
	}
	if strings.Contains(cf, "default_transport") {
		t.Errorf("default_transport set without Transport:\n%s", cf)
	}
	v6, err := postfixMainCF(PostfixOptions{Transport: "smtp:[::1]:25"}, "[::1]:2600", "/x", "/x/q", "/x/d")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(v6, "inet_protocols = all\n") || !strings.Contains(v6, "default_transport = smtp:[::1]:25\n") {
		t.Errorf("IPv6 main.cf:\n%s", v6)
	}
	if _, err := postfixMainCF(PostfixOptions{Extra: map[string]string{"a b": "c"}}, "127.0.0.1:1", "/x", "/q", "/d"); err == nil {
		t.Error("a parameter name with a space was accepted")
	}
}

func TestPostfixIPv6Listener(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	_ = l.Close()
	sink := startPostfixTestSink(t, "127.0.0.1:0")
	p := StartPostfix(t, PostfixOptions{
		ListenAddr: "[::1]:0",
		MyNetworks: "127.0.0.0/8 [::1]/128",
		Transport:  "smtp:[127.0.0.1]:" + postfixPort(t, sink.addr),
	})
	// swaks needs an extra Perl module for IPv6; Go's client has none to need.
	msg := "From: <sender@a.test>\r\nTo: <rcpt@dest.test>\r\nSubject: ipv6-5d10\r\n\r\nBody\r\n"
	if err := netsmtp.SendMail(p.Addr(), nil, "sender@a.test", []string{"rcpt@dest.test"}, []byte(msg)); err != nil {
		t.Fatalf("sending to %s: %v\n%s", p.Addr(), err, p.Log())
	}
	m := sink.wait(t, 20*time.Second, p)
	if !bytes.Contains(m.data, []byte("Subject: ipv6-5d10")) {
		t.Fatalf("wrong message delivered:\n%s", m.data)
	}
}
