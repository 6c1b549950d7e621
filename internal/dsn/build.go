package dsn

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
)

// Subjects of the reports.
const (
	subjectFailed  = "Undelivered Mail Returned to Sender"
	subjectDelayed = "Delayed Mail (still being retried)"
)

// part is one body part of the multipart/report.
type part struct {
	header   string // folded header fields, each ending in CRLF
	body     []byte
	eightBit bool // labelled Content-Transfer-Encoding: 8bit
}

// Build writes to w the delivery status notification described by r: a complete RFC 5322 message with CRLF
// line endings, of type multipart/report; report-type=delivery-status (RFC 6522), addressed to r.Sender.
//
// original is the original message (header and body). With r.ReturnFull and at least one failed recipient
// the whole message is returned (RFC 3461 §4.3 ties RET=FULL to "failed" reports), otherwise its header
// section only; either way at most maxOriginal bytes of it, cut after a complete line or header field. The
// original is read into memory, so maxOriginal also bounds the memory Build uses. A nil original or a
// maxOriginal of 0 returns nothing of the original.
//
// When the returned original has octets above 127 its part is labelled 8bit and the report needs 8BITMIME
// (RFC 6152) to travel; with r.SMTPUTF8 the report may also need SMTPUTF8.
func Build(w io.Writer, r Report, original io.Reader, maxOriginal int64) error {
	rcpts, err := validate(&r)
	if err != nil {
		return err
	}
	if maxOriginal < 0 {
		return invalid("maxOriginal is negative (%d)", maxOriginal)
	}
	failed := r.anyFailed()
	ret, err := readOriginal(original, maxOriginal, r.ReturnFull && failed)
	if err != nil {
		return err
	}

	// RFC 6533 §6: message/global-delivery-status when the status fields need UTF-8, which they may only
	// carry when the original needed SMTPUTF8 anyway.
	global := r.SMTPUTF8 && !isASCII(statusFieldsText(&r, rcpts, true))
	status := statusFieldsText(&r, rcpts, global)
	text := humanText(&r, rcpts, ret)

	parts := []part{textPart(text, r.SMTPUTF8), statusPart(status, global)}
	if ret.data != nil {
		parts = append(parts, originalPart(ret, r.SMTPUTF8))
	}

	boundary, err := newBoundary(parts)
	if err != nil {
		return err
	}
	reportType := "delivery-status"
	if global {
		reportType = "global-delivery-status"
	}
	eightBit := false
	for _, p := range parts {
		eightBit = eightBit || p.eightBit
	}

	var h strings.Builder
	writeField(&h, "From", headerText("Mail Delivery System", r.SMTPUTF8)+" <"+r.Postmaster+">")
	writeField(&h, "To", "<"+r.Sender+">")
	subject := subjectDelayed
	if failed {
		subject = subjectFailed
	}
	writeField(&h, "Subject", headerText(subject, r.SMTPUTF8))
	writeField(&h, "Date", formatDate(r.Now))
	msgID, err := randomHex(16)
	if err != nil {
		return err
	}
	writeField(&h, "Message-ID", "<"+msgID+"@"+r.ReportingMTA+">")
	// RFC 3834 §5: a message generated automatically in reply to another.
	writeField(&h, "Auto-Submitted", "auto-replied")
	if r.QueueID != "" {
		writeField(&h, "X-Easymail-Queue-ID", headerText(r.QueueID, r.SMTPUTF8))
	}
	writeField(&h, "MIME-Version", "1.0")
	writeField(&h, "Content-Type", "multipart/report; report-type="+reportType+"; boundary=\""+boundary+"\"")
	if eightBit {
		// RFC 2045 §6.4: a multipart entity is labelled with the widest encoding of its parts.
		writeField(&h, "Content-Transfer-Encoding", "8bit")
	} else {
		writeField(&h, "Content-Transfer-Encoding", "7bit")
	}
	h.WriteString("\r\n")
	h.WriteString("This is a MIME-encapsulated message: a delivery status notification.\r\n")

	var out bytes.Buffer
	out.WriteString(h.String())
	for _, p := range parts {
		// RFC 2046 §5.1.1: the CRLF before a delimiter line belongs to the delimiter.
		out.WriteString("\r\n--" + boundary + "\r\n")
		out.WriteString(p.header)
		out.WriteString("\r\n")
		out.Write(p.body)
	}
	out.WriteString("\r\n--" + boundary + "--\r\n")
	_, err = w.Write(out.Bytes())
	return err
}

// statusFieldsText returns the body of the message/delivery-status part (RFC 3464 §2.1): the per-message
// fields, then each recipient's fields, groups separated by blank lines. With global, addresses and the
// diagnostic keep their UTF-8 (RFC 6533 §3 and §6); otherwise they are escaped to ASCII.
func statusFieldsText(r *Report, rcpts []Recipient, global bool) string {
	var b strings.Builder
	// RFC 3464 §2.2: per-message fields, in the order of the ABNF.
	if r.EnvID != "" {
		writeField(&b, "Original-Envelope-Id", r.EnvID)
	}
	writeField(&b, "Reporting-MTA", "dns; "+r.ReportingMTA)
	if r.QueueID != "" {
		// RFC 3464 §2.4: an extension field; "X-" names are for private use.
		writeField(&b, "X-Easymail-Queue-ID", r.QueueID)
	}
	if !r.ArrivalDate.IsZero() {
		writeField(&b, "Arrival-Date", formatDate(r.ArrivalDate))
	}
	// RFC 3464 §2.3: per-recipient fields.
	for _, rc := range rcpts {
		b.WriteString("\r\n")
		if rc.ORCPT != "" {
			writeField(&b, "Original-Recipient", typedAddress(rc.ORCPT, global))
		}
		writeField(&b, "Final-Recipient", typedAddress(rc.Address, global))
		writeField(&b, "Action", rc.Action)
		writeField(&b, "Status", rc.Status)
		if rc.RemoteMTA != "" {
			writeField(&b, "Remote-MTA", "dns; "+rc.RemoteMTA)
		}
		if rc.Diagnostic != "" {
			d := rc.Diagnostic
			if !global {
				d = asciiText(d)
			}
			writeField(&b, "Diagnostic-Code", "smtp; "+d)
		}
		if !rc.LastAttempt.IsZero() {
			writeField(&b, "Last-Attempt-Date", formatDate(rc.LastAttempt))
		}
		if rc.Action == ActionDelayed && !rc.WillRetryUntil.IsZero() {
			// RFC 3464 §2.3.8: only for delayed recipients.
			writeField(&b, "Will-Retry-Until", formatDate(rc.WillRetryUntil))
		}
	}
	return b.String()
}

// textPart makes the human-readable part: 7bit when it is plain ASCII, 8bit UTF-8 when the report travels with
// SMTPUTF8, quoted-printable otherwise.
func textPart(text string, smtputf8 bool) part {
	var h strings.Builder
	writeField(&h, "Content-Description", "Notification")
	body := []byte(text)
	eightBit := false
	switch {
	case isASCII(text) && fitForMIME(body):
		writeField(&h, "Content-Type", "text/plain; charset=us-ascii")
		writeField(&h, "Content-Transfer-Encoding", "7bit")
	case smtputf8 && fitForMIME(body):
		writeField(&h, "Content-Type", "text/plain; charset=utf-8")
		writeField(&h, "Content-Transfer-Encoding", "8bit")
		eightBit = true
	default:
		writeField(&h, "Content-Type", "text/plain; charset=utf-8")
		writeField(&h, "Content-Transfer-Encoding", "quoted-printable")
		var qp bytes.Buffer
		qw := quotedprintable.NewWriter(&qp)
		qw.Write(body) // writes to a bytes.Buffer cannot fail
		qw.Close()
		body = qp.Bytes()
	}
	return part{header: h.String(), body: body, eightBit: eightBit}
}

// statusPart makes the machine-readable part.
func statusPart(status string, global bool) part {
	var h strings.Builder
	writeField(&h, "Content-Description", "Delivery report")
	if global {
		writeField(&h, "Content-Type", "message/global-delivery-status")
		writeField(&h, "Content-Transfer-Encoding", "8bit")
	} else {
		writeField(&h, "Content-Type", "message/delivery-status")
		writeField(&h, "Content-Transfer-Encoding", "7bit")
	}
	return part{header: h.String(), body: []byte(status), eightBit: global}
}

// originalPart makes the part that returns the original: message/rfc822 for the whole message and
// text/rfc822-headers (RFC 6522 §4) for its header section, or their RFC 6533 §6 / RFC 6532 §3.7
// counterparts message/global and message/global-headers when the original needed SMTPUTF8 and its header
// is not ASCII.
func originalPart(ret returned, smtputf8 bool) part {
	var h strings.Builder
	global := smtputf8 && ret.utf8Header
	switch {
	case ret.headersOnly && global:
		writeField(&h, "Content-Description", "Undelivered message header")
		writeField(&h, "Content-Type", "message/global-headers")
	case ret.headersOnly:
		writeField(&h, "Content-Description", "Undelivered message header")
		writeField(&h, "Content-Type", "text/rfc822-headers")
	case global:
		writeField(&h, "Content-Description", "Undelivered message")
		writeField(&h, "Content-Type", "message/global")
	default:
		writeField(&h, "Content-Description", "Undelivered message")
		writeField(&h, "Content-Type", "message/rfc822")
	}
	if ret.eightBit {
		writeField(&h, "Content-Transfer-Encoding", "8bit")
	} else {
		writeField(&h, "Content-Transfer-Encoding", "7bit")
	}
	return part{header: h.String(), body: ret.data, eightBit: ret.eightBit}
}

// newBoundary returns a random boundary that occurs in none of the parts (RFC 2046 §5.1.1). "=_" cannot occur
// in quoted-printable text, and 24 random hex digits make a collision with anything else unlikely; the check
// makes it impossible.
func newBoundary(parts []part) (string, error) {
	for range 16 {
		rnd, err := randomHex(12)
		if err != nil {
			return "", err
		}
		b := "=_dsn_" + rnd
		clash := false
		for _, p := range parts {
			if strings.Contains(p.header, b) || bytes.Contains(p.body, []byte(b)) {
				clash = true
				break
			}
		}
		if !clash {
			return b, nil
		}
	}
	return "", errors.New("dsn: could not find a boundary absent from the content")
}

// randomHex returns n random bytes in hex.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("dsn: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
