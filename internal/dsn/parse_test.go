package dsn

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParsePostfixSample(t *testing.T) {
	data, err := os.ReadFile("testdata/postfix-bounce.eml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Report
	cet := time.FixedZone("", 3600)
	if r.ReportingMTA != "mail.example.org" || r.QueueID != "4Q8ZrT1xYzz9sWQ" ||
		r.Postmaster != "MAILER-DAEMON@mail.example.org" || r.Sender != "alice@example.com" ||
		!r.ArrivalDate.Equal(time.Date(2025, 3, 4, 10, 14, 58, 0, cet)) ||
		!r.Now.Equal(time.Date(2025, 3, 4, 10, 15, 2, 0, cet)) || r.ReturnFull || r.SMTPUTF8 {
		t.Errorf("per-message fields: %+v", r)
	}
	if len(r.Recipients) != 2 {
		t.Fatalf("got %d recipients: %+v", len(r.Recipients), r.Recipients)
	}
	bob, carol := r.Recipients[0], r.Recipients[1]
	if bob.Address != "bob@example.net" || bob.ORCPT != "Bob@Example.NET" || bob.Action != "failed" ||
		bob.Status != "5.1.1" || bob.RemoteMTA != "mx1.example.net" ||
		bob.Diagnostic != "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table" {
		t.Errorf("first recipient: %+v", bob)
	}
	if carol.Address != "carol@example.net" || carol.Action != "failed" || carol.Status != "4.4.1" ||
		carol.RemoteMTA != "" ||
		carol.Diagnostic != "delivery temporarily suspended: connect to mx1.example.net[192.0.2.25]:25: Connection timed out" ||
		!carol.LastAttempt.Equal(time.Date(2025, 3, 7, 10, 15, 1, 0, cet)) {
		t.Errorf("second recipient: %+v", carol)
	}
	if p.ReturnedType != "text/rfc822-headers" || !bytes.Contains(p.Returned, []byte("Subject: Quarterly figures")) {
		t.Errorf("returned %s %q", p.ReturnedType, p.Returned)
	}
	if !strings.Contains(p.Text, "This is the mail system at host mail.example.org.") {
		t.Errorf("text: %q", p.Text)
	}

	// The same message with LF line endings, as a file on a Unix system would have it.
	lf := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	r2, err := Parse(bytes.NewReader(lf))
	if err != nil {
		t.Fatalf("LF line endings: %v", err)
	}
	if len(r2.Recipients) != 2 || r2.Recipients[0].Diagnostic != bob.Diagnostic {
		t.Errorf("LF line endings: %+v", r2.Recipients)
	}
}

// dsnMessage wraps delivery-status fields in a minimal report.
func dsnMessage(status string) string {
	return "From: MAILER-DAEMON@mx.example\r\n" +
		"To: a@b.example\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=XX\r\n" +
		"\r\n" +
		"--XX\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"Your message bounced.\r\n" +
		"--XX\r\n" +
		"Content-Type: message/delivery-status\r\n" +
		"\r\n" +
		status +
		"--XX--\r\n"
}

func TestParseFieldVariants(t *testing.T) {
	status := "reporting-mta:dns;mx.example\r\n" +
		"ORIGINAL-ENVELOPE-ID: abc\r\n" +
		"\r\n" +
		"FINAL-RECIPIENT:rfc822;<x@y.example>\r\n" +
		"Action: Failed (bad address)\r\n" +
		"Status: 5.0.0 (permanent failure)\r\n" +
		"Remote-MTA: DNS;\r\n" +
		"  mx.y.example\r\n" +
		"Diagnostic-Code:\r\n" +
		"\tsmtp;550 no\r\n" +
		"\tsuch user\r\n" +
		"  \r\n" + // white space only separates groups too
		"Final-Recipient: utf-8; j\\x{F6}rg@y.example\r\n" +
		"Original-Recipient: utf-8;\r\n" +
		" j\\x{F6}\r\n" +
		" rg@y.example\r\n" +
		"Action: delivered\r\n" +
		"Status: 2.0.0\r\n" +
		"\r\n"
	r, err := Parse(strings.NewReader(dsnMessage(status)))
	if err != nil {
		t.Fatal(err)
	}
	if r.ReportingMTA != "mx.example" || r.EnvID != "abc" || len(r.Recipients) != 2 {
		t.Fatalf("got %+v", r)
	}
	x, j := r.Recipients[0], r.Recipients[1]
	if x.Address != "x@y.example" || x.Action != "failed" || x.Status != "5.0.0" || x.RemoteMTA != "mx.y.example" ||
		x.Diagnostic != "550 no such user" {
		t.Errorf("first recipient: %+v", x)
	}
	if j.Address != "jörg@y.example" || j.ORCPT != "jörg@y.example" || j.Action != "delivered" || j.Status != "2.0.0" {
		t.Errorf("second recipient: %+v", j)
	}
}

func TestParseNestedAndEncoded(t *testing.T) {
	// A report forwarded inside multipart/mixed, with its status part in quoted-printable.
	msg := "From: postmaster@x.example\r\n" +
		"To: a@b.example\r\n" +
		"Content-Type: multipart/mixed; boundary=OUTER\r\n" +
		"\r\n" +
		"--OUTER\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"See the attached report.\r\n" +
		"--OUTER\r\n" +
		"Content-Type: multipart/report; report-type=\"delivery-status\"; boundary=INNER\r\n" +
		"\r\n" +
		"--INNER\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"bounced\r\n" +
		"--INNER\r\n" +
		"Content-Type: message/delivery-status\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"Reporting-MTA: dns; mx.x.example\r\n" +
		"\r\n" +
		"Final-Recipient: rfc822; c@d.example\r\n" +
		"Action: failed\r\n" +
		"Status: 5.7.1\r\n" +
		"Diagnostic-Code: smtp; 554 5.7.1 rejected =3D spam, a very long line that is=\r\n" +
		" soft-broken\r\n" +
		"--INNER--\r\n" +
		"--OUTER--\r\n"
	r, err := Parse(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Recipients) != 1 || r.Recipients[0].Diagnostic != "554 5.7.1 rejected = spam, a very long line that is soft-broken" {
		t.Errorf("got %+v", r.Recipients)
	}
}

func TestParseRejects(t *testing.T) {
	okStatus := "Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; x@y.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
	cases := map[string]struct {
		msg    string
		notDSN bool
	}{
		"plain message": {msg: "From: a@b\r\nSubject: hi\r\n\r\nhello\r\n", notDSN: true},
		"disposition notification": {msg: strings.Replace(dsnMessage(okStatus), "report-type=delivery-status",
			"report-type=disposition-notification", 1), notDSN: true},
		"no status part": {msg: strings.Replace(dsnMessage(okStatus), "message/delivery-status", "text/plain", 1),
			notDSN: true},
		"mixed without report": {msg: "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\ntext\r\n--B--\r\n",
			notDSN: true},
		"empty status":               {msg: dsnMessage(""), notDSN: true},
		"no recipients":              {msg: dsnMessage("Reporting-MTA: dns; mx.example\r\n")},
		"no per-message fields":      {msg: dsnMessage("Final-Recipient: rfc822; x@y.example\r\nAction: failed\r\nStatus: 5.1.1\r\n")},
		"no Reporting-MTA":           {msg: dsnMessage("Arrival-Date: Tue, 4 Mar 2025 10:14:58 +0100\r\n\r\nFinal-Recipient: rfc822; x@y\r\nAction: failed\r\nStatus: 5.1.1\r\n")},
		"no Final-Recipient":         {msg: dsnMessage("Reporting-MTA: dns; m\r\n\r\nAction: failed\r\nStatus: 5.1.1\r\n")},
		"no Action":                  {msg: dsnMessage("Reporting-MTA: dns; m\r\n\r\nFinal-Recipient: rfc822; x@y\r\nStatus: 5.1.1\r\n")},
		"no Status":                  {msg: dsnMessage("Reporting-MTA: dns; m\r\n\r\nFinal-Recipient: rfc822; x@y\r\nAction: failed\r\n")},
		"bad Status":                 {msg: dsnMessage("Reporting-MTA: dns; m\r\n\r\nFinal-Recipient: rfc822; x@y\r\nAction: failed\r\nStatus: 550\r\n")},
		"bad Action":                 {msg: dsnMessage("Reporting-MTA: dns; m\r\n\r\nFinal-Recipient: rfc822; x@y\r\nAction: bounced\r\nStatus: 5.1.1\r\n")},
		"bad Arrival-Date":           {msg: dsnMessage("Reporting-MTA: dns; m\r\nArrival-Date: yesterday\r\n\r\nFinal-Recipient: rfc822; x@y\r\nAction: failed\r\nStatus: 5.1.1\r\n")},
		"bad escape":                 {msg: dsnMessage("Reporting-MTA: dns; m\r\n\r\nFinal-Recipient: utf-8; x\\x{D800}@y\r\nAction: failed\r\nStatus: 5.1.1\r\n")},
		"leading continuation":       {msg: dsnMessage(" Reporting-MTA: dns; m\r\n\r\nFinal-Recipient: rfc822; x@y\r\nAction: failed\r\nStatus: 5.1.1\r\n")},
		"line without colon":         {msg: dsnMessage("Reporting-MTA dns m\r\n\r\nFinal-Recipient: rfc822; x@y\r\nAction: failed\r\nStatus: 5.1.1\r\n")},
		"unterminated multipart":     {msg: strings.TrimSuffix(dsnMessage(okStatus), "--XX--\r\n")},
		"bad Date header":            {msg: strings.Replace(dsnMessage(okStatus), "To: a@b.example\r\n", "To: a@b.example\r\nDate: soon\r\n", 1)},
		"bad Last-Attempt-Date":      {msg: dsnMessage("Reporting-MTA: dns; m\r\n\r\nFinal-Recipient: rfc822; x@y\r\nAction: failed\r\nStatus: 5.1.1\r\nLast-Attempt-Date: 32 Foo 2025\r\n")},
		"malformed top-level header": {msg: "this is not a header\r\n\r\nbody\r\n"},
	}
	if _, err := Parse(strings.NewReader(dsnMessage(okStatus))); err != nil {
		t.Fatalf("the valid base message fails: %v", err)
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.msg))
			if err == nil {
				t.Fatalf("no error")
			}
			if c.notDSN && !errors.Is(err, ErrNotDSN) {
				t.Errorf("error %v does not wrap ErrNotDSN", err)
			}
		})
	}
}

func TestParseStatusPartTooLarge(t *testing.T) {
	status := "Reporting-MTA: dns; m\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 90)+"\r\n", maxStatusPart/90) +
		"\r\nFinal-Recipient: rfc822; x@y\r\nAction: failed\r\nStatus: 5.1.1\r\n"
	if _, err := Parse(strings.NewReader(dsnMessage(status))); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("got %v, want a size error", err)
	}
}
