package testkit

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func dialMX(t *testing.T, m *MX) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(m.Addr())
	if err != nil {
		t.Fatalf("dial fake MX: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.example"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	return c
}

func send(c *smtp.Client, from string, to []string, body string) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	return w.Close()
}

func wantCode(t *testing.T, err error, code int, enhanced [3]int) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("error %v, want an SMTP reply %d", err, code)
	}
	if se.Code != code || [3]int(se.EnhancedCode) != enhanced {
		t.Fatalf("reply %d %v, want %d %v", se.Code, se.EnhancedCode, code, enhanced)
	}
}

func TestMXRecordsMessage(t *testing.T) {
	m := NewMX(t, "127.0.0.11:0")
	c := dialMX(t, m)
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "SIZE"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("fake MX does not advertise %s", ext)
		}
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("fake MX advertises STARTTLS without EnableTLS")
	}
	body := "Subject: hi\r\n\r\n.leading dot\r\nbye\r\n"
	if err := send(c, "a@sender.example", []string{"x@dest.example", "y@dest.example"}, body); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs := m.WaitMessages(t, 1, 5*time.Second)
	got := msgs[0]
	if got.From != "a@sender.example" || strings.Join(got.To, ",") != "x@dest.example,y@dest.example" {
		t.Errorf("envelope %q -> %q", got.From, got.To)
	}
	if string(got.Data) != body {
		t.Errorf("data %q, want %q", got.Data, body)
	}
	if got.HELO != "client.example" || got.RemoteIP != "127.0.0.1" || got.TLS || got.At.IsZero() {
		t.Errorf("HELO %q, remote IP %q, TLS %v, at %v", got.HELO, got.RemoteIP, got.TLS, got.At)
	}
	if got.Body != "8BITMIME" {
		t.Errorf("BODY parameter %q, want 8BITMIME (go-smtp's client always sends it)", got.Body)
	}
	if n := m.Connections(); n != 1 {
		t.Errorf("Connections() = %d, want 1", n)
	}
	// Messages returns copies.
	msgs[0].To[0] = "changed"
	if m.Messages()[0].To[0] != "x@dest.example" {
		t.Error("Messages shares its slices with the caller")
	}
}

func TestMXScriptedReplies(t *testing.T) {
	m := NewMX(t, "127.0.0.11:0")
	m.Reply("Bad@Dest.example", 550, [3]int{5, 1, 1}, "No such user")
	m.Reply("later@dest.example", 450, [3]int{4, 2, 1}, "Mailbox busy")
	c := dialMX(t, m)

	if err := c.Mail("a@sender.example", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("bad@dest.example", nil), 550, [3]int{5, 1, 1})
	wantCode(t, c.Rcpt("later@dest.example", nil), 450, [3]int{4, 2, 1})
	if err := c.Rcpt("good@dest.example", nil); err != nil {
		t.Fatalf("RCPT good: %v", err)
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}

	m.ReplyData(554, [3]int{5, 7, 1}, "Spam")
	wantCode(t, send(c, "a@sender.example", []string{"good@dest.example"}, "x\r\n"), 554, [3]int{5, 7, 1})
	m.ReplyData(0, [3]int{}, "")

	m.FailNext(1, 421, [3]int{4, 3, 2}, "Try later")
	wantCode(t, c.Mail("a@sender.example", nil), 421, [3]int{4, 3, 2})
	m.Reply("bad@dest.example", 0, [3]int{}, "")
	if err := send(c, "a@sender.example", []string{"bad@dest.example"}, "x\r\n"); err != nil {
		t.Fatalf("send after the scripts ran out: %v", err)
	}
	if n := len(m.WaitMessages(t, 1, 5*time.Second)); n != 1 {
		t.Fatalf("%d messages, want 1 (the one refused at DATA is not recorded)", n)
	}
}

func TestMXTLS(t *testing.T) {
	m := NewMX(t, "127.0.0.11:0")
	m.EnableTLS()
	c, err := smtp.DialStartTLS(m.Addr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer c.Close()
	if err := send(c, "a@sender.example", []string{"x@dest.example"}, "x\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := m.WaitMessages(t, 1, 5*time.Second)[0]; !got.TLS {
		t.Error("message over STARTTLS recorded with TLS false")
	}
}

func TestMXBrokenTLSAndNoSMTPUTF8(t *testing.T) {
	m := NewMX(t, "127.0.0.11:0")
	m.BreakTLS()
	m.DisableSMTPUTF8()
	c := dialMX(t, m)
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("BreakTLS: STARTTLS not advertised")
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok {
		t.Error("DisableSMTPUTF8: SMTPUTF8 still advertised")
	}
	// The handshake happens at the first exchange after STARTTLS.
	tc, err := smtp.DialStartTLS(m.Addr(), &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		defer tc.Close()
		err = tc.Noop()
	}
	if err == nil {
		t.Error("BreakTLS: TLS handshake succeeded")
	}
}

func TestMXHangUpAfterGreeting(t *testing.T) {
	m := NewMX(t, "127.0.0.11:0")
	m.HangUpAfterGreeting(true)
	c, err := smtp.Dial(m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err == nil {
		t.Fatal("EHLO succeeded on a fake MX that hangs up")
	}
	m.HangUpAfterGreeting(false)
	dialMX(t, m)
	if n := m.Connections(); n != 2 {
		t.Errorf("Connections() = %d, want 2", n)
	}
}

func TestMXDelayAndConcurrency(t *testing.T) {
	m := NewMX(t, "127.0.0.11:0")
	c1, c2 := dialMX(t, m), dialMX(t, m)
	const delay = 50 * time.Millisecond
	m.SetDelay(delay)
	start := time.Now()
	if err := c1.Mail("a@sender.example", nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < delay {
		t.Errorf("MAIL answered after %v, before the %v delay", d, delay)
	}
	m.SetDelay(0)
	if err := c2.Mail("b@sender.example", nil); err != nil {
		t.Fatal(err)
	}
	if n := m.MaxConcurrent(); n != 2 {
		t.Errorf("MaxConcurrent() = %d with two open transactions, want 2", n)
	}
}

func TestMXDropConnections(t *testing.T) {
	m := NewMX(t, "127.0.0.11:0")
	c := dialMX(t, m)
	m.DropConnections()
	if err := c.Noop(); err == nil {
		t.Fatal("NOOP succeeded on a dropped connection")
	}
	if err := send(dialMX(t, m), "a@sender.example", []string{"x@dest.example"}, "x\r\n"); err != nil {
		t.Fatalf("new connection after DropConnections: %v", err)
	}
}

// failTB records a failure instead of stopping the test.
type failTB struct {
	testing.TB
	failed bool
}

func (f *failTB) Helper() {}

func (f *failTB) Fatalf(string, ...any) { f.failed = true }

func TestMXWaitMessagesTimeout(t *testing.T) {
	m := NewMX(t, "127.0.0.11:0")
	ft := &failTB{TB: t}
	if got := m.WaitMessages(ft, 1, 50*time.Millisecond); got != nil || !ft.failed {
		t.Fatalf("WaitMessages without messages: got %v, failed %v", got, ft.failed)
	}
}
