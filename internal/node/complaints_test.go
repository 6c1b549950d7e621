package node_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"easymail/internal/api"
	"easymail/internal/config"
)

// arfReport wraps the header of a delivered message in an ARF feedback report (RFC 5965 §5), as a
// receiver's feedback loop sends it; rcptField is the Original-Rcpt-To line ("" for none, as JMRP redacts).
func arfReport(origHeader []byte, rcptField string) string {
	var b strings.Builder
	b.WriteString("From: <staff@fbl.dest.test>\r\nTo: <fbl@relay.easymail.test>\r\nSubject: FW: hi\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report;\r\n\tboundary=\"part1_13d.2e68ed54\"\r\n\r\n" +
		"--part1_13d.2e68ed54\r\nContent-Type: text/plain; charset=\"US-ASCII\"\r\n\r\nThis is an email abuse report.\r\n\r\n" +
		"--part1_13d.2e68ed54\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: DestFBL/1.0\r\n" +
		"Version: 1\r\nSource-IP: 127.0.0.1\r\n")
	if rcptField != "" {
		b.WriteString(rcptField + "\r\n")
	}
	b.WriteString("\r\n--part1_13d.2e68ed54\r\nContent-Type: text/rfc822-headers\r\n\r\n")
	b.Write(origHeader)
	b.WriteString("\r\n--part1_13d.2e68ed54--\r\n")
	return b.String()
}

// sendTo sends msg over SMTP to addr (any client) for rcpt and returns the reply to DATA (nil for 250).
func sendTo(t *testing.T, addr, rcpt, msg string) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("fbl.dest.test"); err != nil {
		return err
	}
	if err := c.Mail("staff@fbl.dest.test", nil); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	w.Write([]byte(msg))
	return w.Close()
}

// TestComplaintSuppressesAndHolds: a message relayed to bob is delivered; the receiver's ARF report about
// it, received over SMTP on the feedback listener, matches it by the relay's Received field: bob is on the
// customer's suppression list (its next mail to him is refused at RCPT), the complaint is counted for the
// customer and the outbound IP, a complained event goes to the webhook, and the complaint rate (1 of 1) holds
// the customer. Mail for another address and a message that is no report are refused.
func TestComplaintSuppressesAndHolds(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Complaints.Address = "fbl@relay.easymail.test"
		c.Complaints.RateMin = 1
		c.Complaints.RateThreshold = 0.5
		c.Compromise.Interval = 50 * time.Millisecond
	})
	mx := e.mx(t, "dest.test", 11)
	rcv := &hookReceiver{}
	srv := newHookServer(t, rcv)
	var hook api.Webhook
	e.n.API(t, "POST", "/customers/"+e.custID+"/webhooks", api.WebhookRequest{URL: srv, Events: []string{"complained"}}, 201, &hook)
	rcv.mu.Lock()
	rcv.secret = hook.Secret
	rcv.mu.Unlock()

	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "Bob <bob@dest.test>", "hi", "Message-ID: <c1@acme.test>"))
	if err != nil {
		t.Fatal(err)
	}
	id := queueID(t, reply)
	got := mx.WaitMessages(t, 1, 10*time.Second)[0]
	header, _, _ := bytes.Cut(got.Data, []byte("\r\n\r\n"))
	if !bytes.Contains(header, []byte("(Easymail) with ESMTP id "+id)) {
		t.Fatalf("no Received field with the queue id in\n%s", header)
	}
	e.waitStatus(t, id, "delivered")

	// Refusals of the feedback listener.
	wantCode(t, sendTo(t, e.n.FeedbackAddr, "someone@relay.easymail.test", "Subject: x\r\n\r\nx\r\n"), 550, "5.1.1")
	wantCode(t, sendTo(t, e.n.FeedbackAddr, "fbl@relay.easymail.test", "Subject: not a report\r\n\r\nhello\r\n"), 554, "5.6.0")

	// The report, with the complainant redacted as Microsoft's JMRP does: the message's single recipient.
	if err := sendTo(t, e.n.FeedbackAddr, "FBL@relay.easymail.test", arfReport(header, "")); err != nil {
		t.Fatal(err)
	}
	var sups []api.Suppression
	e.n.API(t, "GET", "/customers/"+e.custID+"/suppressions", nil, 200, &sups)
	if len(sups) != 1 || sups[0].Address != "bob@dest.test" || sups[0].Source != "complaint" || sups[0].QueueID != id {
		t.Fatalf("suppressions %+v", sups)
	}
	var rates api.ComplaintRates
	e.n.API(t, "GET", "/complaints", nil, 200, &rates)
	if len(rates.Customers) != 1 || rates.Customers[0].Key != e.custID || rates.Customers[0].Complaints != 1 ||
		rates.Customers[0].Delivered != 1 || len(rates.IPs) != 1 || rates.IPs[0].Key != "127.0.0.1" {
		t.Fatalf("rates %+v", rates)
	}
	m := metricsText(t, e.n)
	if !strings.Contains(m, `easymail_complaints_total{customer="`+e.custID+`"} 1`) ||
		!strings.Contains(m, `easymail_complaints_by_ip_total{ip="127.0.0.1"} 1`) ||
		!strings.Contains(m, `easymail_feedback_reports_total{result="invalid"} 1`) {
		t.Fatalf("metrics:\n%s", grepLines(m, "complaint"))
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(rcv.events()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no complained event")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ev := rcv.events()[0]; ev.Event != "complained" || ev.QueueID != id || ev.Recipient != "bob@dest.test" || ev.FeedbackType != "abuse" {
		t.Fatalf("event %+v", ev)
	}
	// The rate (1 complaint for 1 delivery) holds the customer.
	for {
		var c api.Customer
		e.n.API(t, "GET", "/customers/"+e.custID, nil, 200, &c)
		if c.Held {
			if !strings.Contains(c.HeldReason, "complaints") {
				t.Fatalf("held for %q", c.HeldReason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("customer not held")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Its next mail to bob is refused at RCPT.
	_, err = send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"}, message("alice@acme.test", "bob@dest.test", "again"))
	wantCode(t, err, 550, "5.1.1")
}
