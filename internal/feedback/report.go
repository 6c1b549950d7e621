// Package feedback takes in the complaints of receivers about relayed mail: feedback reports in the Abuse
// Reporting Format (ARF, RFC 5965, as sent by the feedback loops of Microsoft (JMRP), Yahoo (CFL) and
// most others), received by a narrow SMTP listener that accepts mail for the relay's complaints address
// only. A report is matched to the relayed message (by the relay's own Received field with the queue id,
// else by Message-ID) and so to the customer; the complainant goes on the customer's suppression list, a
// "complained" event is emitted, and complaint rates per customer and outbound IP are counted, for the
// metrics, the API and compromise detection.
package feedback

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Report is what a feedback report says about one relayed message.
type Report struct {
	// FeedbackType is the report's Feedback-Type ("abuse", "fraud", ...; RFC 5965 §7.3), lower case.
	FeedbackType string
	// UserAgent is the reporter's software (User-Agent field), Reporter the report's From address.
	UserAgent string
	Reporter  string
	// OriginalRcpt is the complainant: Original-Rcpt-To, else the single address of the original's To.
	// "" when the report redacts it (Microsoft's JMRP does).
	OriginalRcpt string
	// SourceIP is the Source-IP field: the IP the reported message came from (one of the outbound IPs).
	SourceIP string
	// QueueIDs are the queue ids of the relay's own Received fields in the original's header ("by HOST
	// (Easymail) with ESMTP id QUEUEID"), with the host name; MessageID is the original's Message-ID,
	// without angle brackets.
	Received  []ReceivedID
	MessageID string
}

// ReceivedID is the host name and queue id of an Easymail Received field.
type ReceivedID struct {
	Host    string
	QueueID string
}

// ErrNotReport is returned by Parse for a message that is not a feedback report.
var ErrNotReport = errors.New("not a feedback report (multipart/report; report-type=feedback-report, RFC 5965)")

// receivedID finds the relay's Received fields (smtpin writes "by HOST (Easymail) with PROTO id QUEUEID").
var receivedID = regexp.MustCompile(`(?i)\bby\s+(\S+)\s+\(Easymail\)\s+with\s+\S+\s+id\s+([0-9A-Za-z]+)`)

// maxParts bounds the parts of a report looked at.
const maxParts = 10

// Parse reads a feedback report. It returns ErrNotReport (wrapped) for anything else.
func Parse(r io.Reader) (*Report, error) {
	e, err := message.Read(r)
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("%w: %v", ErrNotReport, err)
	}
	mt, params, _ := e.Header.ContentType()
	if mt != "multipart/report" || !strings.EqualFold(params["report-type"], "feedback-report") {
		return nil, fmt.Errorf("%w: content type %s", ErrNotReport, mt)
	}
	rep := &Report{}
	if from, err := (&mail.Header{Header: e.Header}).AddressList("From"); err == nil && len(from) > 0 {
		rep.Reporter = from[0].Address
	}
	mr := e.MultipartReader()
	if mr == nil {
		return nil, fmt.Errorf("%w: no parts", ErrNotReport)
	}
	var sawReport bool
	var origTo string
	for i := 0; i < maxParts; i++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return nil, fmt.Errorf("%w: %v", ErrNotReport, err)
		}
		pt, _, _ := p.Header.ContentType()
		switch pt {
		case "message/feedback-report":
			h, err := textproto.ReadHeader(bufio.NewReader(io.LimitReader(p.Body, 64<<10)))
			if err != nil {
				return nil, fmt.Errorf("%w: the feedback-report part: %v", ErrNotReport, err)
			}
			sawReport = true
			rep.FeedbackType = strings.ToLower(strings.TrimSpace(h.Get("Feedback-Type")))
			rep.UserAgent = strings.TrimSpace(h.Get("User-Agent"))
			rep.OriginalRcpt = bareAddress(h.Get("Original-Rcpt-To"))
			rep.SourceIP = strings.TrimSpace(h.Get("Source-IP"))
		case "message/rfc822", "text/rfc822-headers":
			h, err := textproto.ReadHeader(bufio.NewReader(io.LimitReader(p.Body, 1<<20)))
			if err != nil && h.Len() == 0 {
				continue
			}
			orig := message.Header{Header: h}
			rep.MessageID = strings.Trim(strings.TrimSpace(orig.Get("Message-Id")), "<>")
			for f := h.FieldsByKey("Received"); f.Next(); {
				if m := receivedID.FindStringSubmatch(unfold(f.Value())); m != nil {
					rep.Received = append(rep.Received, ReceivedID{Host: strings.ToLower(m[1]), QueueID: m[2]})
				}
			}
			origTo = h.Get("To")
		}
	}
	if !sawReport {
		return nil, fmt.Errorf("%w: no message/feedback-report part", ErrNotReport)
	}
	if rep.FeedbackType == "" {
		return nil, fmt.Errorf("%w: no Feedback-Type", ErrNotReport)
	}
	if rep.OriginalRcpt == "" && origTo != "" {
		var h mail.Header
		h.Set("To", origTo)
		if to, err := h.AddressList("To"); err == nil && len(to) == 1 {
			rep.OriginalRcpt = strings.ToLower(to[0].Address)
		}
	}
	return rep, nil
}

// bareAddress returns the address of an Original-Rcpt-To value ("<a@b>", "rfc822;a@b" or "a@b"), lower case,
// or "" when it is not one.
func bareAddress(v string) string {
	v = strings.TrimSpace(v)
	if t, a, ok := strings.Cut(v, ";"); ok && strings.EqualFold(strings.TrimSpace(t), "rfc822") {
		v = strings.TrimSpace(a)
	}
	v = strings.Trim(v, "<>")
	if strings.Count(v, "@") != 1 || strings.ContainsAny(v, " \t<>,") || strings.HasPrefix(v, "@") || strings.HasSuffix(v, "@") {
		return ""
	}
	return strings.ToLower(v)
}

func unfold(s string) string { return strings.Join(strings.Fields(s), " ") }
