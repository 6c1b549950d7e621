package dsn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3600))

const testOriginal = "Received: from client.customer.example by relay.example.net\r\n" +
	"\twith ESMTPS id 01HXYZ; Tue, 04 Mar 2025 04:06:07 +0000\r\n" +
	"From: Alice <alice@customer.example>\r\n" +
	"To: bob@dest.example\r\n" +
	"Subject: Quarterly figures\r\n" +
	"Message-ID: <c0ffee@customer.example>\r\n" +
	"\r\n" +
	"Hello Bob,\r\n" +
	"BODY-MARKER the figures are attached.\r\n"

func failedReport() Report {
	return Report{
		ReportingMTA: "relay.example.net",
		QueueID:      "01HXYZABCDEFGHJKMNPQ",
		EnvID:        "QQ314159",
		ArrivalDate:  testNow.Add(-time.Hour),
		Sender:       "alice@customer.example",
		Postmaster:   "MAILER-DAEMON@relay.example.net",
		Now:          testNow,
		Recipients: []Recipient{{
			Address:     "bob@dest.example",
			ORCPT:       "Bob@Dest.example",
			Action:      ActionFailed,
			Status:      "5.1.1",
			RemoteMTA:   "mx1.dest.example",
			Diagnostic:  "550 5.1.1 <bob@dest.example>: Recipient address rejected: User unknown",
			LastAttempt: testNow.Add(-time.Minute),
		}},
	}
}

func delayedReport() Report {
	r := failedReport()
	r.Recipients = []Recipient{{
		Address:        "carol@slow.example",
		Action:         ActionDelayed,
		Status:         "4.4.1",
		Diagnostic:     "connect to mx.slow.example[192.0.2.7]:25: Connection timed out",
		LastAttempt:    testNow.Add(-2 * time.Minute),
		WillRetryUntil: testNow.Add(5 * 24 * time.Hour),
	}}
	return r
}

// build runs Build and checks that the result is a well-formed message.
func build(t *testing.T, r Report, original string, max int64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Build(&b, r, strings.NewReader(original), max); err != nil {
		t.Fatalf("Build: %v", err)
	}
	checkWellFormed(t, b.Bytes())
	return b.Bytes()
}

var boundaryRE = regexp.MustCompile(`boundary="([^"]+)"`)

// checkWellFormed checks CRLF line endings, line lengths, the header fields every report needs and that the
// boundary occurs only on delimiter lines.
func checkWellFormed(t *testing.T, msg []byte) {
	t.Helper()
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		t.Errorf("message does not end in CRLF")
	}
	lines := bytes.Split(bytes.TrimSuffix(msg, []byte("\r\n")), []byte("\r\n"))
	for i, l := range lines {
		if bytes.ContainsAny(l, "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %q", i+1, l)
		}
		if len(l) > 998 {
			t.Errorf("line %d is %d octets long", i+1, len(l))
		}
	}
	hdrEnd := bytes.Index(msg, []byte("\r\n\r\n"))
	if hdrEnd < 0 {
		t.Fatalf("no end of header")
	}
	hdr := string(msg[:hdrEnd+2])
	for _, l := range strings.Split(strings.TrimSuffix(hdr, "\r\n"), "\r\n") {
		if len(l) > 78 {
			t.Errorf("header line longer than 78 characters: %q", l)
		}
		if strings.TrimSpace(l) == "" {
			t.Errorf("header has a line of white space only")
		}
	}
	for _, name := range []string{"From:", "To:", "Subject:", "Date:", "Message-ID:", "Auto-Submitted: auto-replied",
		"MIME-Version: 1.0", "Content-Type: multipart/report;"} {
		if !strings.Contains(hdr, "\r\n"+name) && !strings.HasPrefix(hdr, name) {
			t.Errorf("header lacks %q:\n%s", name, hdr)
		}
	}
	m := boundaryRE.FindStringSubmatch(strings.ReplaceAll(hdr, "\r\n ", " "))
	if m == nil {
		t.Fatalf("no boundary in header:\n%s", hdr)
	}
	delims := 0
	for _, l := range lines {
		if bytes.Contains(l, []byte(m[1])) {
			switch string(l) {
			case "--" + m[1], "--" + m[1] + "--":
				delims++
			default:
				if !bytes.HasPrefix(l, []byte(" boundary=")) && !bytes.HasPrefix(l, []byte("Content-Type:")) {
					t.Errorf("boundary occurs in content: %q", l)
				}
			}
		}
	}
	if delims < 3 {
		t.Errorf("%d delimiter lines, want at least 3", delims)
	}
}

// sameTime compares times to the second, as RFC 5322 dates carry them.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Second).Equal(b.Truncate(time.Second))
}

// checkRoundTrip compares a parsed report with the one that was built.
func checkRoundTrip(t *testing.T, got *Report, want Report) {
	t.Helper()
	if got.ReportingMTA != want.ReportingMTA || got.QueueID != want.QueueID || got.EnvID != want.EnvID ||
		got.Sender != want.Sender || got.Postmaster != want.Postmaster || got.SMTPUTF8 != want.SMTPUTF8 {
		t.Errorf("per-message fields: got %+v, want %+v", *got, want)
	}
	if !sameTime(got.ArrivalDate, want.ArrivalDate) || !sameTime(got.Now, want.Now) {
		t.Errorf("dates: got arrival %v now %v, want %v %v", got.ArrivalDate, got.Now, want.ArrivalDate, want.Now)
	}
	if len(got.Recipients) != len(want.Recipients) {
		t.Fatalf("got %d recipients, want %d", len(got.Recipients), len(want.Recipients))
	}
	for i, g := range got.Recipients {
		w := want.Recipients[i]
		if w.Action != ActionDelayed {
			w.WillRetryUntil = time.Time{}
		}
		w.ORCPT = stripAddressType(w.ORCPT)
		if g.Address != w.Address || g.ORCPT != w.ORCPT || g.Action != w.Action || g.Status != w.Status ||
			g.RemoteMTA != w.RemoteMTA || g.Diagnostic != w.Diagnostic ||
			!sameTime(g.LastAttempt, w.LastAttempt) || !sameTime(g.WillRetryUntil, w.WillRetryUntil) {
			t.Errorf("recipient %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func parseMsg(t *testing.T, msg []byte) *Parsed {
	t.Helper()
	p, err := ParseMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("ParseMessage: %v\n%s", err, msg)
	}
	return p
}

func TestRoundTripFailed(t *testing.T) {
	r := failedReport()
	msg := build(t, r, testOriginal, 1<<20)
	p := parseMsg(t, msg)
	checkRoundTrip(t, &p.Report, r)
	if !bytes.Contains(msg, []byte("\r\nSubject: Undelivered Mail Returned to Sender\r\n")) {
		t.Errorf("wrong subject:\n%s", msg)
	}
	if !bytes.Contains(msg, []byte("\r\nX-Easymail-Queue-ID: 01HXYZABCDEFGHJKMNPQ\r\n")) {
		t.Errorf("no queue id header field")
	}
	for _, want := range []string{"01HXYZABCDEFGHJKMNPQ", "bob@dest.example", "5.1.1", "mx1.dest.example",
		"User unknown", "does not exist", "we will not try again"} {
		if !strings.Contains(strings.Join(strings.Fields(p.Text), " "), want) {
			t.Errorf("text lacks %q:\n%s", want, p.Text)
		}
	}
	// The status fields exactly as RFC 3464 §2.2 and §2.3 have them, in order, groups separated by a blank line.
	wantStatus := "Original-Envelope-Id: QQ314159\r\n" +
		"Reporting-MTA: dns; relay.example.net\r\n" +
		"X-Easymail-Queue-ID: 01HXYZABCDEFGHJKMNPQ\r\n" +
		"Arrival-Date: Tue, 04 Mar 2025 04:06:07 +0100\r\n" +
		"\r\n" +
		"Original-Recipient: rfc822; Bob@Dest.example\r\n" +
		"Final-Recipient: rfc822; bob@dest.example\r\n" +
		"Action: failed\r\n" +
		"Status: 5.1.1\r\n" +
		"Remote-MTA: dns; mx1.dest.example\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 <bob@dest.example>: Recipient address\r\n" +
		" rejected: User unknown\r\n" +
		"Last-Attempt-Date: Tue, 04 Mar 2025 05:05:07 +0100\r\n"
	if !bytes.Contains(msg, []byte("Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"+wantStatus+"\r\n--")) {
		t.Errorf("status part is not as expected:\n%s", msg)
	}
	if !bytes.Contains(msg, []byte("report-type=delivery-status;")) {
		t.Errorf("report-type is not delivery-status")
	}
}

func TestRoundTripDelayed(t *testing.T) {
	r := delayedReport()
	r.ReturnFull = true // RET=FULL does not apply to delay reports
	msg := build(t, r, testOriginal, 1<<20)
	p := parseMsg(t, msg)
	checkRoundTrip(t, &p.Report, r)
	if !bytes.Contains(msg, []byte("\r\nSubject: Delayed Mail (still being retried)\r\n")) {
		t.Errorf("wrong subject:\n%s", msg)
	}
	if !bytes.Contains(msg, []byte("\r\nWill-Retry-Until: Sun, 09 Mar 2025 05:06:07 +0100\r\n")) {
		t.Errorf("no Will-Retry-Until:\n%s", msg)
	}
	if p.ReturnedType != "text/rfc822-headers" || bytes.Contains(p.Returned, []byte("BODY-MARKER")) {
		t.Errorf("a delay report returned %s %q, want the header only", p.ReturnedType, p.Returned)
	}
	if p.Report.ReturnFull {
		t.Errorf("parsed ReturnFull for a header-only report")
	}
	if !strings.Contains(p.Text, "still trying") || !strings.Contains(p.Text, "do not need to send the message again") {
		t.Errorf("text does not say delivery continues:\n%s", p.Text)
	}
}

func TestWillRetryUntilOnlyForDelayed(t *testing.T) {
	r := failedReport()
	r.Recipients[0].WillRetryUntil = testNow.Add(time.Hour)
	msg := build(t, r, testOriginal, 1<<20)
	if bytes.Contains(msg, []byte("Will-Retry-Until")) {
		t.Errorf("Will-Retry-Until written for a failed recipient (RFC 3464 §2.3.8)")
	}
}

func TestMultipleRecipients(t *testing.T) {
	r := failedReport()
	r.Recipients = append(r.Recipients,
		Recipient{Address: "dave@dest.example", ORCPT: "rfc822;dave+x@dest.example", Action: ActionFailed, Status: "5.2.2",
			RemoteMTA: "mx2.dest.example", Diagnostic: "552 5.2.2 Mailbox full", LastAttempt: testNow},
		Recipient{Address: "erin@gone.example", Action: ActionFailed, Status: "4.4.7", LastAttempt: testNow},
		Recipient{Address: "frank@slow.example", Action: ActionDelayed, Status: "4.4.1", WillRetryUntil: testNow.Add(time.Hour)},
	)
	msg := build(t, r, testOriginal, 1<<20)
	p := parseMsg(t, msg)
	checkRoundTrip(t, &p.Report, r)
	if p.Report.Recipients[1].ORCPT != "dave+x@dest.example" {
		t.Errorf("ORCPT with a type prefix: got %q", p.Report.Recipients[1].ORCPT)
	}
	for _, want := range []string{"delivered to 3 recipients", "delivered to one recipient", "dave@dest.example", "mailbox is full",
		"erin@gone.example", "expired", "frank@slow.example", "one recipient"} {
		if !strings.Contains(strings.Join(strings.Fields(p.Text), " "), want) {
			t.Errorf("text lacks %q:\n%s", want, p.Text)
		}
	}
}

func TestReturnHeadersOnly(t *testing.T) {
	r := failedReport()
	r.ReturnFull = false
	msg := build(t, r, testOriginal, 1<<20)
	if bytes.Contains(msg, []byte("BODY-MARKER")) {
		t.Fatalf("RET=HDRS report contains the body:\n%s", msg)
	}
	p := parseMsg(t, msg)
	if p.ReturnedType != "text/rfc822-headers" {
		t.Errorf("returned type %q, want text/rfc822-headers", p.ReturnedType)
	}
	wantHdr := testOriginal[:strings.Index(testOriginal, "\r\n\r\n")+2]
	if string(p.Returned) != wantHdr {
		t.Errorf("returned header:\n%q\nwant\n%q", p.Returned, wantHdr)
	}
	if !strings.Contains(p.Text, "The header of your original message is attached.") {
		t.Errorf("text does not say the header is attached:\n%s", p.Text)
	}
}

func TestReturnFull(t *testing.T) {
	r := failedReport()
	r.ReturnFull = true
	msg := build(t, r, testOriginal, 1<<20)
	p := parseMsg(t, msg)
	if p.ReturnedType != "message/rfc822" || !p.Report.ReturnFull {
		t.Errorf("returned type %q (ReturnFull %v), want message/rfc822", p.ReturnedType, p.Report.ReturnFull)
	}
	if string(p.Returned) != testOriginal {
		t.Errorf("returned message:\n%q\nwant\n%q", p.Returned, testOriginal)
	}
	if !strings.Contains(p.Text, "Your original message is attached.") {
		t.Errorf("text does not say the message is attached:\n%s", p.Text)
	}
}

func TestReturnFullLineEndingsNormalised(t *testing.T) {
	r := failedReport()
	r.ReturnFull = true
	lf := strings.ReplaceAll(testOriginal, "\r\n", "\n")
	msg := build(t, r, lf, 1<<20)
	p := parseMsg(t, msg)
	if string(p.Returned) != testOriginal {
		t.Errorf("returned message:\n%q\nwant\n%q", p.Returned, testOriginal)
	}
}

func bigOriginal(lines int) string {
	var b strings.Builder
	b.WriteString("From: alice@customer.example\r\nTo: bob@dest.example\r\nSubject: big\r\n\r\n")
	for i := range lines {
		fmt.Fprintf(&b, "line %06d of a big message, padded to be a bit longer than usual\r\n", i)
	}
	return b.String()
}

func TestTruncateBigOriginal(t *testing.T) {
	orig := bigOriginal(20000) // about 1.3 MB
	r := failedReport()
	r.ReturnFull = true
	const max = 10000
	msg := build(t, r, orig, max)
	if len(msg) > max+10000 {
		t.Errorf("report is %d bytes for a limit of %d", len(msg), max)
	}
	p := parseMsg(t, msg)
	if p.ReturnedType != "message/rfc822" {
		t.Fatalf("returned type %q", p.ReturnedType)
	}
	if len(p.Returned) > max || len(p.Returned) < max-200 {
		t.Errorf("returned %d bytes, want just under %d", len(p.Returned), max)
	}
	if !strings.HasPrefix(orig, string(p.Returned)) || !bytes.HasSuffix(p.Returned, []byte("\r\n")) {
		t.Errorf("returned content is not a prefix of the original cut after a line")
	}
	if !strings.Contains(p.Text, fmt.Sprintf("cut short to %d bytes", len(p.Returned))) {
		t.Errorf("text does not mention the truncation:\n%s", p.Text)
	}
}

func TestTruncateHugeHeader(t *testing.T) {
	var b strings.Builder
	for i := range 400 {
		fmt.Fprintf(&b, "X-Filler-%03d: some value that takes room\r\n\tand is folded\r\n", i)
	}
	hdr := b.String()
	orig := hdr + "\r\nBODY-MARKER\r\n"
	for _, full := range []bool{true, false} {
		r := failedReport()
		r.ReturnFull = full
		const max = 5000
		msg := build(t, r, orig, max)
		p := parseMsg(t, msg)
		if p.ReturnedType != "text/rfc822-headers" {
			t.Errorf("full=%v: returned type %q, want text/rfc822-headers", full, p.ReturnedType)
		}
		if len(p.Returned) > max || !strings.HasPrefix(hdr, string(p.Returned)) {
			t.Errorf("full=%v: returned %d bytes, not a prefix of the header", full, len(p.Returned))
		}
		// Cut after a whole field: the next line of the original is a new field, not a continuation.
		if rest := hdr[len(p.Returned):]; !strings.HasPrefix(rest, "X-Filler-") {
			t.Errorf("full=%v: header cut inside a folded field; rest starts %q", full, rest[:20])
		}
		if full && !strings.Contains(p.Text, "could not be returned in full") {
			t.Errorf("text does not explain the downgrade:\n%s", p.Text)
		}
	}
}

func TestOverlongLineReturnsHeaderOnly(t *testing.T) {
	orig := "From: a@b.example\r\nSubject: x\r\n\r\n" + strings.Repeat("y", 2000) + "\r\n"
	r := failedReport()
	r.ReturnFull = true
	msg := build(t, r, orig, 1<<20)
	p := parseMsg(t, msg)
	if p.ReturnedType != "text/rfc822-headers" || string(p.Returned) != "From: a@b.example\r\nSubject: x\r\n" {
		t.Errorf("returned %s %q, want the header only", p.ReturnedType, p.Returned)
	}
}

func TestNoOriginal(t *testing.T) {
	r := failedReport()
	var b bytes.Buffer
	if err := Build(&b, r, nil, 1000); err != nil {
		t.Fatal(err)
	}
	checkWellFormedTwoParts(t, b.Bytes())
	p := parseMsg(t, b.Bytes())
	if p.ReturnedType != "" || !strings.Contains(p.Text, "is not attached") {
		t.Errorf("returned %q; text:\n%s", p.ReturnedType, p.Text)
	}
	b.Reset()
	if err := Build(&b, r, strings.NewReader(testOriginal), 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Bytes(), []byte("Quarterly")) {
		t.Errorf("maxOriginal 0 still returned content")
	}
}

func checkWellFormedTwoParts(t *testing.T, msg []byte) {
	t.Helper()
	if n := bytes.Count(msg, []byte("\r\n--=_dsn_")); n != 3 {
		t.Errorf("%d delimiter lines, want 3 for two parts", n)
	}
}

func TestEightBitOriginal(t *testing.T) {
	orig := "From: a@b.example\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n"
	r := failedReport()
	r.ReturnFull = true
	msg := build(t, r, orig, 1<<20)
	if !bytes.Contains(msg, []byte("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n")) {
		t.Errorf("8-bit original not labelled 8bit:\n%s", msg)
	}
	hdr := msg[:bytes.Index(msg, []byte("\r\n\r\n"))]
	if !bytes.Contains(hdr, []byte("\r\nContent-Transfer-Encoding: 8bit")) {
		t.Errorf("multipart with an 8bit part not labelled 8bit (RFC 2045 §6.4)")
	}
	p := parseMsg(t, msg)
	if string(p.Returned) != orig {
		t.Errorf("returned %q", p.Returned)
	}
}

func TestSMTPUTF8Recipient(t *testing.T) {
	r := failedReport()
	r.SMTPUTF8 = true
	r.Sender = "アリス@例え.jp"
	r.ReturnFull = true
	r.Recipients[0].Address = "用户@例子.广告"
	r.Recipients[0].ORCPT = "utf-8;用户@例子.广告"
	r.Recipients[0].Diagnostic = "550 5.1.1 用户 unknown"
	orig := "From: アリス <アリス@例え.jp>\r\nTo: 用户@例子.广告\r\nSubject: 你好\r\n\r\nbody\r\n"
	msg := build(t, r, orig, 1<<20)
	for _, want := range []string{
		"report-type=global-delivery-status",
		"Content-Type: message/global-delivery-status\r\n",
		"\r\nFinal-Recipient: utf-8; 用户@例子.广告\r\n",
		"\r\nOriginal-Recipient: utf-8; 用户@例子.广告\r\n",
		"\r\nDiagnostic-Code: smtp; 550 5.1.1 用户 unknown\r\n",
		"Content-Type: message/global\r\n",
		"\r\nTo: <アリス@例え.jp>\r\n",
	} {
		if !bytes.Contains(msg, []byte(want)) {
			t.Errorf("report lacks %q:\n%s", want, msg)
		}
	}
	p := parseMsg(t, msg)
	checkRoundTrip(t, &p.Report, r)
	if string(p.Returned) != orig {
		t.Errorf("returned %q", p.Returned)
	}

	// RET=HDRS: the header goes as message/global-headers.
	r.ReturnFull = false
	p = parseMsg(t, build(t, r, orig, 1<<20))
	if p.ReturnedType != "message/global-headers" {
		t.Errorf("returned type %q, want message/global-headers", p.ReturnedType)
	}
}

func TestSMTPUTF8ASCIIContentUsesClassicTypes(t *testing.T) {
	r := failedReport()
	r.SMTPUTF8 = true
	r.ReturnFull = true
	msg := build(t, r, testOriginal, 1<<20)
	if bytes.Contains(msg, []byte("global")) {
		t.Errorf("RFC 6533 types used though nothing needs them:\n%s", msg)
	}
}

func TestNonASCIIRecipientWithoutSMTPUTF8(t *testing.T) {
	r := failedReport()
	r.Recipients[0].Address = "jörg+x@dest.example"
	r.Recipients[0].Diagnostic = "550 unknown user jörg"
	msg := build(t, r, testOriginal, 1<<20)
	for _, want := range []string{
		"Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: 7bit\r\n",
		"\r\nFinal-Recipient: utf-8; j\\x{F6}rg\\x{2B}x@dest.example\r\n",
		"\r\nDiagnostic-Code: smtp; 550 unknown user j\\x{F6}rg\r\n",
		"Content-Transfer-Encoding: quoted-printable\r\n",
	} {
		if !bytes.Contains(msg, []byte(want)) {
			t.Errorf("report lacks %q:\n%s", want, msg)
		}
	}
	if hasHighBit(msg) {
		t.Errorf("report without SMTPUTF8 has 8-bit octets")
	}
	p := parseMsg(t, msg)
	if got := p.Report.Recipients[0].Address; got != "jörg+x@dest.example" {
		t.Errorf("Final-Recipient decoded to %q", got)
	}
	if !strings.Contains(p.Text, "jörg+x@dest.example") {
		t.Errorf("text (quoted-printable, decoded) lacks the address:\n%s", p.Text)
	}
}

func TestFoldingRoundTrip(t *testing.T) {
	r := failedReport()
	long := strings.Repeat("word ", 60) + "two  spaces   three\tand a tab " + strings.Repeat("x", 1500) + " end"
	r.Recipients[0].Diagnostic = long
	msg := build(t, r, testOriginal, 1<<20)
	p := parseMsg(t, msg)
	got := p.Report.Recipients[0].Diagnostic
	// The 1500-character word had to be broken with an inserted space; everything else is kept exactly.
	if strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(long, " ", "") {
		t.Errorf("diagnostic changed:\n got %q\nwant %q", got, long)
	}
	if !strings.Contains(got, "two  spaces   three\tand a tab") || !strings.HasPrefix(got, strings.Repeat("word ", 60)) {
		t.Errorf("white space not kept: %q", got)
	}
}

func TestWriteField(t *testing.T) {
	values := []string{
		"short",
		strings.Repeat("a ", 100),
		strings.Repeat("a   ", 100) + "b",
		strings.Repeat("z", 3000),
		strings.Repeat("\\x{30C9}", 300),
		strings.Repeat("é", 1200),
		"x" + strings.Repeat(" ", 30) + "y" + strings.Repeat("z", 1200) + strings.Repeat(" ", 31) + "w",
		strings.Repeat("q", 990) + strings.Repeat(" ", 32) + "w",
	}
	for _, v := range values {
		var b strings.Builder
		writeField(&b, "Diagnostic-Code", v)
		out := b.String()
		if !strings.HasSuffix(out, "\r\n") {
			t.Errorf("no CRLF at the end")
		}
		lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
		for i, l := range lines {
			if len(l) > 998 {
				t.Errorf("line of %d octets", len(l))
			}
			if strings.TrimSpace(l) == "" {
				t.Errorf("line %d is white space only", i)
			}
			if i > 0 && !isWSP(l[0]) {
				t.Errorf("continuation line %d does not start with white space", i)
			}
			if strings.Contains(v, "\\x{") && strings.Count(l, "\\x{") != strings.Count(l, "}") {
				t.Errorf("escape broken across lines: %q", l)
			}
		}
		unfolded := strings.TrimPrefix(strings.ReplaceAll(out[:len(out)-2], "\r\n", ""), "Diagnostic-Code:")
		exact := true
		for _, c := range splitFoldable(" " + v) {
			exact = exact && len(c) < hardLineLen-len("Diagnostic-Code:")
		}
		if exact && unfolded != " "+strings.TrimSpace(v) {
			t.Errorf("unfolding does not restore the value:\n got %q\nwant %q", unfolded, v)
		}
		if strings.ReplaceAll(unfolded, " ", "") != strings.ReplaceAll(v, " ", "") || !strings.HasPrefix(unfolded, " ") {
			t.Errorf("folding changed more than spaces")
		}
		for _, l := range lines {
			if !utf8Valid(l) {
				t.Errorf("line splits a UTF-8 sequence: %q", l)
			}
		}
	}
}

func TestWriteFieldLongWhiteSpaceRun(t *testing.T) {
	var b strings.Builder
	writeField(&b, "Diagnostic-Code", "x"+strings.Repeat(" ", 2000)+"y")
	if got := b.String(); got != "Diagnostic-Code: x y\r\n" {
		t.Errorf("got %q", got)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\x00") == s }

func TestHeaderText(t *testing.T) {
	if got := headerText("Plain", false); got != "Plain" {
		t.Errorf("ASCII changed: %q", got)
	}
	if got := headerText("Zustellung fehlgeschlagen: Grüße", true); got != "Zustellung fehlgeschlagen: Grüße" {
		t.Errorf("UTF-8 changed with SMTPUTF8: %q", got)
	}
	enc := headerText("Zustellung fehlgeschlagen: Grüße", false)
	if !isASCII(enc) || !strings.Contains(enc, "=?utf-8?q?") {
		t.Errorf("not Q-encoded: %q", enc)
	}
	dec, err := new(mime.WordDecoder).DecodeHeader(enc)
	if err != nil || dec != "Zustellung fehlgeschlagen: Grüße" {
		t.Errorf("decodes to %q, %v", dec, err)
	}
}

func TestBadInputs(t *testing.T) {
	type mod func(r *Report)
	cases := map[string]mod{
		"no recipients":            func(r *Report) { r.Recipients = nil },
		"action unknown":           func(r *Report) { r.Recipients[0].Action = "bounced" },
		"action empty":             func(r *Report) { r.Recipients[0].Action = "" },
		"action upper case":        func(r *Report) { r.Recipients[0].Action = "FAILED" },
		"status short":             func(r *Report) { r.Recipients[0].Status = "5.1" },
		"status long":              func(r *Report) { r.Recipients[0].Status = "5.1.1.1" },
		"status digits":            func(r *Report) { r.Recipients[0].Status = "5.1234.1" },
		"status letters":           func(r *Report) { r.Recipients[0].Status = "x.1.1" },
		"status class 6":           func(r *Report) { r.Recipients[0].Status = "6.1.1" },
		"status trailing":          func(r *Report) { r.Recipients[0].Status = "5.1.1 " },
		"status success failed":    func(r *Report) { r.Recipients[0].Status = "2.0.0" },
		"delayed permanent":        func(r *Report) { r.Recipients[0].Action = ActionDelayed },
		"CR in ReportingMTA":       func(r *Report) { r.ReportingMTA = "relay\r.example" },
		"LF in QueueID":            func(r *Report) { r.QueueID = "Q\n1" },
		"CRLF in EnvID":            func(r *Report) { r.EnvID = "e\r\nBcc: x@y" },
		"LF in Sender":             func(r *Report) { r.Sender = "a@b\nBcc: c@d" },
		"CR in Postmaster":         func(r *Report) { r.Postmaster = "MAILER-DAEMON@x\r" },
		"LF in Address":            func(r *Report) { r.Recipients[0].Address = "b@c\n" },
		"LF in ORCPT":              func(r *Report) { r.Recipients[0].ORCPT = "rfc822;b@c\nX: y" },
		"CR in Action":             func(r *Report) { r.Recipients[0].Action = "failed\r" },
		"LF in Status":             func(r *Report) { r.Recipients[0].Status = "5.1.1\n" },
		"CR in RemoteMTA":          func(r *Report) { r.Recipients[0].RemoteMTA = "mx\r.example" },
		"LF in Diagnostic":         func(r *Report) { r.Recipients[0].Diagnostic = "550 no\n550 such user" },
		"NUL in Diagnostic":        func(r *Report) { r.Recipients[0].Diagnostic = "550 \x00" },
		"bad UTF-8 in Diagnostic":  func(r *Report) { r.Recipients[0].Diagnostic = "550 \xff" },
		"empty ReportingMTA":       func(r *Report) { r.ReportingMTA = "" },
		"typed RemoteMTA":          func(r *Report) { r.Recipients[0].RemoteMTA = "dns; mx.example" },
		"non-ASCII ReportingMTA":   func(r *Report) { r.ReportingMTA = "relä.example" },
		"empty Sender":             func(r *Report) { r.Sender = "" },
		"bracketed Sender":         func(r *Report) { r.Sender = "<a@b.example>" },
		"empty Address":            func(r *Report) { r.Recipients[0].Address = "" },
		"empty Postmaster":         func(r *Report) { r.Postmaster = "" },
		"UTF-8 Sender no SMTPUTF8": func(r *Report) { r.Sender = "jörg@b.example" },
		"zero Now":                 func(r *Report) { r.Now = time.Time{} },
		"long EnvID":               func(r *Report) { r.EnvID = strings.Repeat("e", 101) },
		"space in QueueID":         func(r *Report) { r.QueueID = "Q 1" },
		"long Address":             func(r *Report) { r.Recipients[0].Address = strings.Repeat("a", 600) + "@b" },
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			r := failedReport()
			m(&r)
			var b bytes.Buffer
			err := Build(&b, r, strings.NewReader(testOriginal), 1000)
			if !errors.Is(err, ErrInvalidReport) {
				t.Fatalf("got error %v, want ErrInvalidReport", err)
			}
			if b.Len() != 0 {
				t.Errorf("wrote %d bytes despite the error", b.Len())
			}
		})
	}
	var b bytes.Buffer
	if err := Build(&b, failedReport(), strings.NewReader(testOriginal), -1); !errors.Is(err, ErrInvalidReport) {
		t.Errorf("negative maxOriginal: got %v", err)
	}
}

func TestExpiredTemporaryFailureAccepted(t *testing.T) {
	r := failedReport()
	r.Recipients[0].Status = "4.4.7"
	p := parseMsg(t, build(t, r, testOriginal, 1<<20))
	if p.Report.Recipients[0].Status != "4.4.7" || !strings.Contains(p.Text, "stayed in the queue too long") {
		t.Errorf("status %q; text:\n%s", p.Report.Recipients[0].Status, p.Text)
	}
}

// TestExpiredAsPermanentSaysSo: an expiry reported as 5.4.7 (as the queue reports it) is explained as a
// temporary problem that lasted until the message expired, not as a permanent error (the text once said "The
// error is permanent; we will not try again" above advice about a destination that could not be reached).
func TestExpiredAsPermanentSaysSo(t *testing.T) {
	r := failedReport()
	r.Recipients[0].Status = "5.4.7"
	p := parseMsg(t, build(t, r, testOriginal, 1<<20))
	if !strings.Contains(p.Text, "expired from our queue") || strings.Contains(p.Text, "The error is permanent") {
		t.Errorf("text:\n%s", p.Text)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestOriginalReadError(t *testing.T) {
	var b bytes.Buffer
	err := Build(&b, failedReport(), failingReader{}, 1000)
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("got %v, want the read error", err)
	}
	if b.Len() != 0 {
		t.Errorf("wrote %d bytes despite the error", b.Len())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestWriteError(t *testing.T) {
	if err := Build(failingWriter{}, failedReport(), strings.NewReader(testOriginal), 1000); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("got %v, want the write error", err)
	}
}

func TestSanitizeDiagnostic(t *testing.T) {
	cases := map[string]string{
		"550-5.1.1 first line\r\n550 5.1.1 second line\r\n": "550-5.1.1 first line 550 5.1.1 second line",
		"  bell\x07 and \xff bad ":                          "bell  and \uFFFD bad",
		"tab\tkept":                                         "tab\tkept",
	}
	for in, want := range cases {
		got := SanitizeDiagnostic(in)
		if got != want {
			t.Errorf("SanitizeDiagnostic(%q) = %q, want %q", in, got, want)
		}
		if err := checkText("x", got); err != nil {
			t.Errorf("sanitized text rejected: %v", err)
		}
	}
	long := SanitizeDiagnostic(strings.Repeat("é", 2000))
	if len(long) > 1000 || !utf8Valid(long) {
		t.Errorf("long text: %d bytes, valid %v", len(long), utf8Valid(long))
	}
}
