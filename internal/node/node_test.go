package node_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"easymail/internal/api"
	"easymail/internal/config"
	"easymail/internal/dsn"
	"easymail/internal/testkit"
	"easymail/internal/testkit/testnode"
)

// env is a running node with a customer "acme.test" allowed from 127.0.0.1, and fake MX hosts on one port.
type env struct {
	n      *testnode.Node
	dns    *testkit.DNS
	mxp    *testkit.MXPort
	custID string
}

func newEnv(t *testing.T, configure func(*config.Config)) *env {
	t.Helper()
	dns := testkit.NewDNS(t)
	mxp := testkit.ReserveMXPort(t)
	n := testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), Configure: configure})
	e := &env{n: n, dns: dns, mxp: mxp}
	e.custID = n.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	return e
}

// mx starts a fake MX for domain on 127.0.0.<x> and publishes it in DNS.
func (e *env) mx(t *testing.T, domain string, x int) *testkit.MX {
	t.Helper()
	ip := fmt.Sprintf("127.0.0.%d", x)
	m := e.mxp.NewMX(t, ip)
	host := "mx." + domain
	e.dns.AddMX(domain, host, 10)
	e.dns.AddA(host, ip)
	return m
}

// send sends one message over SMTP from localIP and returns the final reply error (nil for 250) and the
// text of the 250 reply.
func send(t *testing.T, addr, localIP, from string, to []string, msg string) (string, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("mail.acme.test"); err != nil {
		return "", err
	}
	if err := c.Mail(from, nil); err != nil {
		return "", err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return "", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	c.Quit()
	return resp.StatusText, nil
}

// rawSession writes cmds, waits for the 354, writes data, and returns the reply to the data.
func rawSession(t *testing.T, addr, cmds, data string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var all strings.Builder
	buf := make([]byte, 4096)
	// read reads until the text after from contains until.
	read := func(from int, until string) {
		for !strings.Contains(all.String()[from:], until) {
			n, err := conn.Read(buf)
			all.Write(buf[:n])
			if err != nil {
				t.Fatalf("waiting for %q: %v; got %q", until, err, all.String())
			}
		}
	}
	read(0, "220 ")
	conn.Write([]byte(cmds))
	read(0, "354 ")
	mark := all.Len()
	conn.Write([]byte(data))
	read(mark, "\r\n")
	return all.String()[mark:]
}

func message(from, to, subject string, extra ...string) string {
	h := "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\n"
	for _, x := range extra {
		h += x + "\r\n"
	}
	return h + "\r\nHello,\r\n..this line starts with a dot.\r\nBye.\r\n"
}

func wantCode(t *testing.T, err error, code int, enhanced string) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("want %d %s, got %v", code, enhanced, err)
	}
	got := fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	if se.Code != code || got != enhanced {
		t.Fatalf("want %d %s, got %d %s %s", code, enhanced, se.Code, got, se.Message)
	}
}

type trace struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Recipients []struct {
		Address  string `json:"address"`
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
	} `json:"recipients"`
	Attempts []struct {
		Code       int    `json:"code"`
		Outcome    string `json:"outcome"`
		OutboundIP string `json:"outbound_ip"`
	} `json:"attempts"`
}

func (e *env) trace(t *testing.T, id string) trace {
	var tr trace
	e.n.API(t, "GET", "/messages/"+id, nil, 200, &tr)
	return tr
}

func (e *env) waitStatus(t *testing.T, id, status string) trace {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tr := e.trace(t, id)
		if tr.Status == status {
			return tr
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s status %q, want %q: %+v", id, tr.Status, status, tr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func queueID(t *testing.T, reply string) string {
	t.Helper()
	i := strings.LastIndex(reply, "queued as ")
	if i < 0 {
		t.Fatalf("no queue id in %q", reply)
	}
	return strings.TrimSpace(reply[i+len("queued as "):])
}

func TestRelayDeliversFromPoolIPWithHeaders(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Pools = []config.Pool{{Name: "default", IPs: []config.PoolAddr{{Address: "127.0.0.2", HELO: "out2.easymail.test"}}}}
	})
	mx := e.mx(t, "dest.test", 11)
	msg := message("Alice <alice@acme.test>", "bob@dest.test", "hello",
		"Received: from ws12.corp.acme.local (10.1.2.3) by exch.corp.acme.local",
		"X-Originating-IP: [10.1.2.3]")
	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test", "carol@dest.test"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reply, "Ok: queued as ") {
		t.Fatalf("reply %q", reply)
	}
	got := mx.WaitMessages(t, 1, 10*time.Second)[0]
	if got.From != "alice@acme.test" || strings.Join(got.To, ",") != "bob@dest.test,carol@dest.test" {
		t.Fatalf("envelope %s -> %v", got.From, got.To)
	}
	if got.RemoteIP != "127.0.0.2" || got.HELO != "out2.easymail.test" {
		t.Fatalf("delivered from %s as %s, want 127.0.0.2 as out2.easymail.test", got.RemoteIP, got.HELO)
	}
	data := string(got.Data)
	for _, leak := range []string{"10.1.2.3", "corp.acme.local", "X-Originating-IP"} {
		if strings.Contains(data, leak) {
			t.Errorf("internal topology %q leaked:\n%s", leak, data)
		}
	}
	if !strings.HasPrefix(data, "Received: ") || !strings.Contains(data, "by relay.easymail.test (Easymail)") {
		t.Errorf("missing our Received header:\n%s", data)
	}
	if !strings.Contains(data, "\r\n..this line starts with a dot.\r\n") {
		t.Errorf("dot-stuffing not preserved:\n%s", data)
	}
	if !strings.Contains(data, "Message-Id: <") {
		t.Errorf("no Message-Id added:\n%s", data)
	}
	tr := e.waitStatus(t, queueID(t, reply), "delivered")
	if len(tr.Recipients) != 2 || tr.Recipients[0].Status != "delivered" || len(tr.Attempts) != 2 ||
		tr.Attempts[0].OutboundIP != "127.0.0.2" {
		t.Fatalf("trace %+v", tr)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, nil)
	e.mx(t, "dest.test", 11)

	// An unregistered client is refused in the greeting.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}
	conn, err := d.Dial("tcp", e.n.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, _ := conn.Read(buf)
	conn.Close()
	if !strings.HasPrefix(string(buf[:n]), "554 ") || !strings.Contains(string(buf[:n]), "5.7.1") {
		t.Fatalf("unregistered client greeting %q", buf[:n])
	}

	_, err = send(t, e.n.SMTPAddr, "127.0.0.1", "mallory@evil.test", []string{"bob@dest.test"},
		message("mallory@evil.test", "bob@dest.test", "x"))
	wantCode(t, err, 550, "5.7.1")

	_, err = send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("ceo@bank.test", "bob@dest.test", "spoofed"))
	wantCode(t, err, 550, "5.7.1")

	// A subdomain of a registered domain is not the customer's unless the domain includes its subdomains
	// (TestSenderSubdomains).
	_, err = send(t, e.n.SMTPAddr, "127.0.0.1", "news@mail.acme.test", []string{"bob@dest.test"},
		message("news@mail.acme.test", "bob@dest.test", "x"))
	wantCode(t, err, 550, "5.7.1")
	// Bare LF could smuggle a second message past a next hop: refused. (A raw session: the SMTP client
	// library would normalise the line endings.)
	for _, body := range []string{"line\n.\nMAIL FROM:<x@evil.test>\r\n", "line\r\n.\nMAIL FROM:<x@evil.test>\r\n", "a\rb\r\n", "nul\x00\r\n"} {
		got := rawSession(t, e.n.SMTPAddr, "EHLO a.test\r\nMAIL FROM:<alice@acme.test>\r\nRCPT TO:<bob@dest.test>\r\nDATA\r\n",
			"From: alice@acme.test\r\nSubject: x\r\n\r\n"+body+"\r\n.\r\n")
		if !strings.Contains(got, "554 5.6.0") {
			t.Fatalf("body %q: reply %q, want 554 5.6.0", body, got)
		}
	}

	// Too large.
	big := message("alice@acme.test", "bob@dest.test", "big") + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 1000)
	e2 := newEnv(t, func(c *config.Config) { c.SMTP.MaxMessageSize = 65536 })
	_, err = send(t, e2.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"}, big)
	wantCode(t, err, 552, "5.3.4")

	// Too many recipients.
	e3 := newEnv(t, func(c *config.Config) { c.SMTP.MaxRecipients = 2 })
	_, err = send(t, e3.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"a@dest.test", "b@dest.test", "c@dest.test"},
		message("alice@acme.test", "a@dest.test", "x"))
	wantCode(t, err, 452, "4.5.3")

	// Mail loop.
	loop := message("alice@acme.test", "bob@dest.test", "loop", strings.Repeat("Received: from a by b\r\n", 50)[:len(strings.Repeat("Received: from a by b\r\n", 50))-2])
	_, err = send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"}, loop)
	wantCode(t, err, 554, "5.4.6")
}

func TestTemporaryFailureIsRetried(t *testing.T) {
	e := newEnv(t, nil)
	mx := e.mx(t, "dest.test", 11)
	mx.FailNext(1, 451, [3]int{4, 3, 0}, "try later")
	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "retry"))
	if err != nil {
		t.Fatal(err)
	}
	mx.WaitMessages(t, 1, 15*time.Second)
	tr := e.waitStatus(t, queueID(t, reply), "delivered")
	if len(tr.Attempts) != 2 || tr.Attempts[0].Code != 451 || tr.Attempts[0].Outcome != "deferred" || tr.Attempts[1].Code != 250 {
		t.Fatalf("attempts %+v", tr.Attempts)
	}
}

func waitDSN(t *testing.T, mx *testkit.MX, n int) []*dsn.Report {
	t.Helper()
	msgs := mx.WaitMessages(t, n, 20*time.Second)
	var out []*dsn.Report
	for _, m := range msgs {
		if m.From != "" {
			t.Fatalf("DSN sent with sender %q, want the null sender", m.From)
		}
		r, err := dsn.Parse(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("DSN does not parse: %v\n%s", err, m.Data)
		}
		out = append(out, r)
	}
	return out
}

func TestPermanentFailureBouncesWithDSN(t *testing.T) {
	e := newEnv(t, nil)
	mx := e.mx(t, "dest.test", 11)
	senderMX := e.mx(t, "acme.test", 12)
	mx.Reply("nobody@dest.test", 550, [3]int{5, 1, 1}, "no such user")
	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"nobody@dest.test", "bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "bounce me"))
	if err != nil {
		t.Fatal(err)
	}
	got := mx.WaitMessages(t, 1, 10*time.Second)
	if strings.Join(got[0].To, ",") != "bob@dest.test" {
		t.Fatalf("delivered to %v", got[0].To)
	}
	reps := waitDSN(t, senderMX, 1)
	if senderMX.Messages()[0].To[0] != "alice@acme.test" {
		t.Fatalf("DSN to %v", senderMX.Messages()[0].To)
	}
	r := reps[0]
	if len(r.Recipients) != 1 || r.Recipients[0].Address != "nobody@dest.test" || r.Recipients[0].Action != "failed" ||
		r.Recipients[0].Status != "5.1.1" || !strings.Contains(r.Recipients[0].Diagnostic, "no such user") {
		t.Fatalf("DSN %+v", r.Recipients)
	}
	if r.ReportingMTA != "relay.easymail.test" {
		t.Fatalf("reporting MTA %q", r.ReportingMTA)
	}
	tr := e.waitStatus(t, queueID(t, reply), "bounced")
	if tr.Recipients[0].Status != "bounced" || tr.Recipients[1].Status != "delivered" {
		t.Fatalf("recipients %+v", tr.Recipients)
	}
}

func TestNullMXBouncesAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	senderMX := e.mx(t, "acme.test", 12)
	e.dns.AddNullMX("nomail.test")
	if _, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"x@nomail.test"},
		message("alice@acme.test", "x@nomail.test", "null mx")); err != nil {
		t.Fatal(err)
	}
	r := waitDSN(t, senderMX, 1)[0]
	if r.Recipients[0].Status != "5.1.10" || r.Recipients[0].Action != "failed" {
		t.Fatalf("DSN %+v", r.Recipients)
	}
}

func TestExpiryBouncesAndDelayNotice(t *testing.T) {
	// The delay notice is due at the first retry after a second; the lifetime leaves several seconds more for
	// it, however late the retries run on a busy machine.
	e := newEnv(t, func(c *config.Config) {
		c.Delivery.MaxQueueLifetime = 6 * time.Second
		c.Delivery.DelayNotice = time.Second
		c.Delivery.Retry = []time.Duration{700 * time.Millisecond}
	})
	mx := e.mx(t, "dest.test", 11)
	senderMX := e.mx(t, "acme.test", 12)
	mx.Reply("bob@dest.test", 451, [3]int{4, 2, 0}, "mailbox busy")
	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "expire"))
	if err != nil {
		t.Fatal(err)
	}
	reps := waitDSN(t, senderMX, 2)
	if reps[0].Recipients[0].Action != "delayed" {
		t.Fatalf("first DSN %+v, want a delay notice", reps[0].Recipients)
	}
	if reps[1].Recipients[0].Action != "failed" || reps[1].Recipients[0].Status != "5.4.7" {
		t.Fatalf("second DSN %+v, want failed 5.4.7", reps[1].Recipients)
	}
	e.waitStatus(t, queueID(t, reply), "bounced")
	time.Sleep(1500 * time.Millisecond)
	if n := len(senderMX.Messages()); n != 2 {
		t.Fatalf("%d DSNs, want exactly 2", n)
	}
}

func TestNoDSNForNullSender(t *testing.T) {
	e := newEnv(t, nil)
	mx := e.mx(t, "dest.test", 11)
	senderMX := e.mx(t, "acme.test", 12)
	mx.Reply("nobody@dest.test", 550, [3]int{5, 1, 1}, "no such user")
	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "", []string{"nobody@dest.test"},
		message("MAILER-DAEMON@acme.test", "nobody@dest.test", "a bounce"))
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus(t, queueID(t, reply), "bounced")
	time.Sleep(1500 * time.Millisecond)
	if n := len(senderMX.Messages()); n != 0 {
		t.Fatalf("%d DSNs sent for a null-sender message", n)
	}
}

func TestQueueOperations(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Delivery.Retry = []time.Duration{time.Hour} })
	mx := e.mx(t, "dest.test", 11)
	mx.FailNext(1, 451, [3]int{4, 3, 0}, "busy")
	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "ops"))
	if err != nil {
		t.Fatal(err)
	}
	id := queueID(t, reply)
	e.waitStatus(t, id, "deferred")

	var q api.QueuePage
	e.n.API(t, "GET", "/queue", nil, 200, &q)
	if len(q.Messages) != 1 || q.Messages[0].ID != id {
		t.Fatalf("queue %+v", q)
	}
	e.n.API(t, "POST", "/queue/"+id+"/hold", nil, 200, nil)
	e.waitStatus(t, id, "held")
	// A retry does not deliver a held message: it is refused (docs/operations.md), so it claims nothing.
	e.n.API(t, "POST", "/queue/"+id+"/retry", nil, 409, nil)
	time.Sleep(1500 * time.Millisecond)
	if len(mx.Messages()) != 0 {
		t.Fatal("a held message was delivered")
	}
	e.n.API(t, "POST", "/queue/"+id+"/release", nil, 200, nil)
	mx.WaitMessages(t, 1, 10*time.Second)
	e.waitStatus(t, id, "delivered")
	e.n.API(t, "POST", "/queue/"+id+"/retry", nil, 409, nil)
	e.n.API(t, "POST", "/queue/NOSUCHID/retry", nil, 404, nil)

	mx.FailNext(1, 451, [3]int{4, 3, 0}, "busy")
	reply, err = send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "delete me"))
	if err != nil {
		t.Fatal(err)
	}
	id = queueID(t, reply)
	e.waitStatus(t, id, "deferred")
	e.n.API(t, "DELETE", "/queue/"+id, nil, 204, nil)
	e.waitStatus(t, id, "deleted")
}

func TestQueueSurvivesRestart(t *testing.T) {
	dns := testkit.NewDNS(t)
	mxp := testkit.ReserveMXPort(t)
	dir := t.TempDir()
	n := testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), DataDir: dir})
	n.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	// No MX listening yet: the messages wait in the queue.
	dns.AddMX("dest.test", "mx.dest.test", 10)
	dns.AddA("mx.dest.test", "127.0.0.11")
	for i := range 5 {
		if _, err := send(t, n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
			message("alice@acme.test", "bob@dest.test", fmt.Sprint("restart ", i))); err != nil {
			t.Fatal(err)
		}
	}
	n.Stop(t)
	mx := mxp.NewMX(t, "127.0.0.11")
	testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), DataDir: dir})
	got := mx.WaitMessages(t, 5, 20*time.Second)
	if len(got) != 5 {
		t.Fatalf("%d messages after restart, want 5", len(got))
	}
}
