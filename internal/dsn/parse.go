package dsn

import (
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-message"
)

// Limits that keep Parse's memory bounded.
const (
	maxHeaderBytes = 1 << 20
	maxStatusPart  = 1 << 20
	maxTextPart    = 1 << 20
	maxReturned    = 64 << 20
	maxNesting     = 4
)

// Parsed is a delivery status notification as Parse and ParseMessage read it.
type Parsed struct {
	// Report holds the fields of the notification. Its Postmaster, Sender, Now and QueueID come from the
	// From, To, Date and X-Easymail-Queue-ID header fields; SMTPUTF8 is set when an RFC 6533 media type is
	// used; ReturnFull is set when the whole original (message/rfc822 or message/global) is returned.
	Report Report
	// Text is the human-readable first part, decoded, or "" when there is none.
	Text string
	// ReturnedType is the media type of the part that returns the original, e.g. "text/rfc822-headers", or
	// "" when there is none; Returned is its decoded content.
	ReturnedType string
	Returned     []byte
}

// Parse reads a delivery status notification: a multipart/report (RFC 6522) with report-type delivery-status
// (or global-delivery-status, RFC 6533), possibly nested in another multipart, whose message/delivery-status
// part it parses as RFC 3464 §2 describes. Field names are case-insensitive and folded fields are unfolded;
// typed values are accepted with or without space after the semicolon. Addresses of type "utf-8" are
// decoded; a Diagnostic-Code is returned as written, after its type. Errors wrap ErrNotDSN when the message is
// not a delivery status notification.
func Parse(r io.Reader) (*Report, error) {
	p, err := ParseMessage(r)
	if err != nil {
		return nil, err
	}
	return &p.Report, nil
}

// ParseMessage is Parse that also returns the human-readable text and the returned original.
func ParseMessage(r io.Reader) (*Parsed, error) {
	e, err := message.ReadWithOptions(r, &message.ReadOptions{MaxHeaderBytes: maxHeaderBytes})
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("dsn: reading the message header: %w", err)
	}
	p := &Parsed{}
	rep := &p.Report
	rep.Postmaster = angleAddr(e.Header.Get("From"))
	rep.Sender = angleAddr(e.Header.Get("To"))
	rep.QueueID = strings.TrimSpace(e.Header.Get("X-Easymail-Queue-ID"))
	if d := e.Header.Get("Date"); d != "" {
		if rep.Now, err = mail.ParseDate(d); err != nil {
			return nil, fmt.Errorf("dsn: Date header field: %w", err)
		}
	}

	report, err := findReport(e, 0)
	if err != nil {
		return nil, err
	}
	status, global, err := readParts(report, p)
	if err != nil {
		return nil, err
	}
	if status == nil {
		return nil, fmt.Errorf("%w: the report has no message/delivery-status part", ErrNotDSN)
	}
	rep.SMTPUTF8 = global || strings.HasPrefix(p.ReturnedType, "message/global")
	rep.ReturnFull = p.ReturnedType == "message/rfc822" || p.ReturnedType == "message/global"

	groups, err := parseGroups(status)
	if err != nil {
		return nil, err
	}
	if err := fillReport(rep, groups); err != nil {
		return nil, err
	}
	return p, nil
}

// findReport returns the multipart/report entity: e itself, or a part of a multipart e, depth levels deep.
func findReport(e *message.Entity, depth int) (*message.Entity, error) {
	mt, params, err := e.Header.ContentType()
	if err != nil {
		return nil, fmt.Errorf("%w: bad Content-Type: %v", ErrNotDSN, err)
	}
	if mt == "multipart/report" {
		// RFC 6522 §3: report-type names the subtype of the second part.
		switch rt := strings.ToLower(params["report-type"]); rt {
		case "delivery-status", "global-delivery-status", "":
			return e, nil
		default:
			return nil, fmt.Errorf("%w: multipart/report with report-type=%s", ErrNotDSN, rt)
		}
	}
	if !strings.HasPrefix(mt, "multipart/") || depth >= maxNesting {
		return nil, fmt.Errorf("%w: content type is %s, not multipart/report", ErrNotDSN, mt)
	}
	mr := e.MultipartReader()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil, fmt.Errorf("%w: no multipart/report inside %s", ErrNotDSN, mt)
		}
		if part == nil {
			return nil, fmt.Errorf("dsn: reading %s: %w", mt, err)
		}
		if sub, err := findReport(part, depth+1); err == nil {
			return sub, nil
		} else if !errors.Is(err, ErrNotDSN) {
			return nil, err
		}
	}
}

// readParts reads the parts of a multipart/report: the human-readable text (the first part, RFC 6522 §3), the
// delivery status part, whose body it returns, and the returned original that follows it.
func readParts(report *message.Entity, p *Parsed) (status []byte, global bool, err error) {
	mr := report.MultipartReader()
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			return status, global, nil
		}
		if part == nil {
			return nil, false, fmt.Errorf("dsn: reading the multipart/report: %w", err)
		}
		mt, _, err := part.Header.ContentType()
		if err != nil {
			mt = "text/plain" // RFC 2045 §5.2: the default
			if part.Header.Get("Content-Type") != "" {
				mt = "application/octet-stream"
			}
		}
		switch {
		case status == nil && (mt == "message/delivery-status" || mt == "message/global-delivery-status"):
			if status, err = readAtMost(part.Body, maxStatusPart, mt); err != nil {
				return nil, false, err
			}
			if status == nil {
				status = []byte{}
			}
			global = mt == "message/global-delivery-status"
		case status == nil && i == 0 && strings.HasPrefix(mt, "text/"):
			text, err := readAtMost(part.Body, maxTextPart, mt)
			if err != nil {
				return nil, false, err
			}
			p.Text = string(text)
		case status != nil && p.ReturnedType == "":
			p.ReturnedType = mt
			if p.Returned, err = readAtMost(part.Body, maxReturned, mt); err != nil {
				return nil, false, err
			}
		}
	}
}

// readAtMost reads r to the end, failing when it has more than n bytes.
func readAtMost(r io.Reader, n int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, fmt.Errorf("dsn: reading the %s part: %w", what, err)
	}
	if int64(len(b)) > n {
		return nil, fmt.Errorf("dsn: the %s part is larger than %d bytes", what, n)
	}
	return b, nil
}

// angleAddr returns the address of an address header field: the text between angle brackets as written
// ("Name <addr>", "<addr>"), otherwise the addr-spec of "addr (comment)" or "addr", otherwise the trimmed value.
func angleAddr(v string) string {
	i := strings.LastIndexByte(v, '<')
	j := strings.LastIndexByte(v, '>')
	if i >= 0 && j > i {
		return strings.TrimSpace(v[i+1 : j])
	}
	if a, err := mail.ParseAddress(v); err == nil {
		return a.Address
	}
	return strings.TrimSpace(v)
}

// fillReport fills rep from the delivery-status groups: the per-message fields (RFC 3464 §2.2) and one group
// per recipient (RFC 3464 §2.3), checking the fields RFC 3464 requires.
func fillReport(rep *Report, groups []group) error {
	if len(groups) == 0 {
		return fmt.Errorf("%w: the delivery-status part is empty", ErrNotDSN)
	}
	msg := groups[0]
	if _, ok := msg.get("final-recipient"); ok {
		return fmt.Errorf("dsn: the delivery-status part has no per-message fields (RFC 3464 §2.1)")
	}
	mta, ok := msg.get("reporting-mta")
	if !ok {
		return fmt.Errorf("dsn: the delivery-status part has no Reporting-MTA (RFC 3464 §2.2.2)")
	}
	_, rep.ReportingMTA = splitTyped(mta)
	rep.EnvID, _ = msg.get("original-envelope-id")
	if rep.QueueID == "" {
		if q, ok := msg.get("x-easymail-queue-id"); ok {
			rep.QueueID = q
		} else if q, ok := msg.get("x-postfix-queue-id"); ok {
			rep.QueueID = q
		}
	}
	var err error
	if rep.ArrivalDate, err = dateField(msg, "arrival-date"); err != nil {
		return err
	}
	if len(groups) < 2 {
		return fmt.Errorf("dsn: the delivery-status part has no per-recipient fields (RFC 3464 §2.3)")
	}
	for n, g := range groups[1:] {
		rc, err := parseRecipient(g)
		if err != nil {
			return fmt.Errorf("dsn: recipient %d: %w", n+1, err)
		}
		rep.Recipients = append(rep.Recipients, rc)
	}
	return nil
}

// parseRecipient reads one recipient's fields; Final-Recipient, Action and Status are required
// (RFC 3464 §2.3).
func parseRecipient(g group) (Recipient, error) {
	var rc Recipient
	fr, ok := g.get("final-recipient")
	if !ok {
		return rc, errors.New("no Final-Recipient field")
	}
	var err error
	if rc.Address, err = decodeAddress(fr); err != nil {
		return rc, fmt.Errorf("Final-Recipient: %w", err)
	}
	if or, ok := g.get("original-recipient"); ok {
		if rc.ORCPT, err = decodeAddress(or); err != nil {
			return rc, fmt.Errorf("Original-Recipient: %w", err)
		}
	}
	action, ok := g.get("action")
	if !ok {
		return rc, errors.New("no Action field")
	}
	// RFC 3464 §2.3.3 action values; a trailing comment is tolerated.
	rc.Action = strings.ToLower(strings.TrimSuffix(firstWord(action), ";"))
	switch rc.Action {
	case "failed", "delayed", "delivered", "relayed", "expanded":
	default:
		return rc, fmt.Errorf("unknown Action %q", action)
	}
	status, ok := g.get("status")
	if !ok {
		return rc, errors.New("no Status field")
	}
	rc.Status = firstWord(status)
	if !statusRE.MatchString(rc.Status) {
		return rc, fmt.Errorf("bad Status %q", status)
	}
	if v, ok := g.get("remote-mta"); ok {
		_, rc.RemoteMTA = splitTyped(v)
	}
	if v, ok := g.get("diagnostic-code"); ok {
		_, rc.Diagnostic = splitTyped(v)
	}
	if rc.LastAttempt, err = dateField(g, "last-attempt-date"); err != nil {
		return rc, err
	}
	if rc.WillRetryUntil, err = dateField(g, "will-retry-until"); err != nil {
		return rc, err
	}
	return rc, nil
}

// dateField parses an RFC 5322 date-time field of g, zero when absent.
func dateField(g group, name string) (time.Time, error) {
	v, ok := g.get(name)
	if !ok {
		return time.Time{}, nil
	}
	t, err := mail.ParseDate(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("dsn: bad %s %q: %w", name, v, err)
	}
	return t, nil
}
