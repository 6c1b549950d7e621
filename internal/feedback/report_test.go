package feedback

import (
	"errors"
	"strings"
	"testing"
)

// A Yahoo CFL style report: the whole original as message/rfc822, the complainant in Original-Rcpt-To.
const cflReport = "From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>\r\n" +
	"To: fbl@relay.example.net\r\nSubject: Email Feedback Report for IP 192.0.2.7\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/report; boundary=\"----=Part_1\"; report-type=\"feedback-report\"\r\n\r\n" +
	"------=Part_1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThis is an email abuse report for an email message from relay.example.net\r\n" +
	"------=Part_1\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: Yahoo!-Mail-Feedback/2.0\r\n" +
	"Version: 0.1\r\nOriginal-Mail-From: <alice@acme.example>\r\nOriginal-Rcpt-To: <Bob@Yahoo.example>\r\n" +
	"Received-Date: Mon, 1 Mar 2030 10:00:00 +0000\r\nSource-IP: 192.0.2.7\r\nReported-Domain: acme.example\r\n\r\n" +
	"------=Part_1\r\nContent-Type: message/rfc822\r\n\r\n" +
	"Received: from mta.acme.example (mta.acme.example [198.51.100.4])\r\n\tby relay.example.net (Easymail) with ESMTPS id 06H3R980FDHNX05P68X5;\r\n\tMon, 1 Mar 2030 09:59:00 +0000\r\n" +
	"From: Alice <alice@acme.example>\r\nTo: bob@yahoo.example\r\nMessage-ID: <abc@acme.example>\r\nSubject: Offer\r\n\r\nBuy now.\r\n" +
	"------=Part_1--\r\n"

func TestParseFeedbackReports(t *testing.T) {
	rep, err := Parse(strings.NewReader(cflReport))
	if err != nil {
		t.Fatal(err)
	}
	if rep.FeedbackType != "abuse" || rep.OriginalRcpt != "bob@yahoo.example" || rep.SourceIP != "192.0.2.7" ||
		rep.Reporter != "feedback@arf.mail.yahoo.com" || rep.MessageID != "abc@acme.example" ||
		len(rep.Received) != 1 || rep.Received[0] != (ReceivedID{Host: "relay.example.net", QueueID: "06H3R980FDHNX05P68X5"}) {
		t.Fatalf("parsed %+v", rep)
	}
	// Without Original-Rcpt-To (JMRP), the original's single To address stands for the complainant.
	jmrp := strings.Replace(cflReport, "Original-Rcpt-To: <Bob@Yahoo.example>\r\n", "", 1)
	if rep, err := Parse(strings.NewReader(jmrp)); err != nil || rep.OriginalRcpt != "bob@yahoo.example" {
		t.Fatalf("jmrp: %+v %v", rep, err)
	}
	for name, msg := range map[string]string{
		"plain":          "Subject: hi\r\n\r\nhello\r\n",
		"mixed":          strings.Replace(cflReport, "multipart/report", "multipart/mixed", 1),
		"other report":   strings.Replace(cflReport, `report-type="feedback-report"`, "report-type=delivery-status", 1),
		"no type":        strings.Replace(cflReport, "Feedback-Type: abuse\r\n", "", 1),
		"no report part": strings.Replace(cflReport, "message/feedback-report", "text/plain", 1),
	} {
		if _, err := Parse(strings.NewReader(msg)); !errors.Is(err, ErrNotReport) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
