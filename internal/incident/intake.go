package incident

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strings"

	gomail "github.com/emersion/go-message/mail"
)

// ErrRefused wraps the reasons a message to the incident address is refused for good (no customer, a
// message of the relay itself, an automatic reply): it is bounced, not retried.
var ErrRefused = errors.New("incident report refused")

var (
	idInSubject   = regexp.MustCompile(`\bINC-([0-9]+)\b`)
	prioInSubject = regexp.MustCompile(`(?i)\[\s*(P[1-4])\s*\]`)
	replyPrefix   = regexp.MustCompile(`(?i)^\s*((re|fw|fwd|aw|tr|wg)\s*:\s*)+`)
)

// maxReport bounds the text read from a reported message.
const maxReport = 64 << 10

// Intake turns a customer's message to the incident address into an incident: the subject is the title
// (a "[P1]" ... "[P4]" tag sets the priority, P3 without one), the first text part the description, the
// channel e-mail, the header From the reporter; the reporter gets an acknowledgement by e-mail with the
// incident's id and response due time. A subject naming one of the customer's incidents ("INC-12") adds the
// text to that incident as a comment instead. customerID is the customer whose relay submitted the message,
// queueID its queue id (linked to the incident).
func (s *Service) Intake(ctx context.Context, customerID, queueID string, r io.Reader) (*Incident, error) {
	if customerID == "" {
		return nil, fmt.Errorf("%w: the message comes from no customer", ErrRefused)
	}
	mr, err := gomail.CreateReader(r)
	if err != nil && mr == nil {
		return nil, fmt.Errorf("%w: the message does not parse: %v", ErrRefused, err)
	}
	defer mr.Close()
	h := mr.Header
	if a := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); a != "" && a != "no" {
		return nil, fmt.Errorf("%w: an automatic message (Auto-Submitted: %s)", ErrRefused, a)
	}
	from, _ := h.AddressList("From")
	reporter := ""
	if len(from) > 0 {
		reporter = from[0].Address
	}
	if reporter == "" || strings.EqualFold(reporter, s.o.From) || strings.EqualFold(reporter, s.o.Address) {
		return nil, fmt.Errorf("%w: no usable From address", ErrRefused)
	}
	subject, err := h.Subject()
	if err != nil {
		subject = h.Get("Subject")
	}
	subject = strings.Join(strings.Fields(subject), " ")
	text := readText(mr)

	if m := idInSubject.FindStringSubmatch(subject); m != nil {
		inc, err := s.Get(ctx, "INC-"+m[1], customerID)
		if err == nil {
			body := strings.TrimSpace(text)
			if body == "" {
				body = subject
			}
			return s.Comment(ctx, inc.ID, reporter, "By e-mail from "+reporter+":\n\n"+body, false, true)
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	prio := "P3"
	if m := prioInSubject.FindStringSubmatch(subject); m != nil {
		prio = strings.ToUpper(m[1])
		subject = strings.TrimSpace(prioInSubject.ReplaceAllString(subject, " "))
	}
	title := strings.TrimSpace(replyPrefix.ReplaceAllString(subject, ""))
	if title == "" {
		title = "Reported by e-mail"
	}
	if r := []rune(title); len(r) > 200 {
		title = string(r[:200])
	}
	links := []Link{}
	if queueID != "" {
		links = append(links, Link{Kind: "message", Value: queueID})
	}
	inc, err := s.Open(ctx, Create{CustomerID: customerID, Priority: prio, Title: title, Description: text,
		Channel: ChannelEmail, Reporter: reporter, Links: links}, reporter)
	if err != nil {
		return nil, err
	}
	s.acknowledge(ctx, inc, reporter, h.Get("Message-Id"))
	return inc, nil
}

// readText returns the first text/plain part of the message (or its first text part), at most maxReport
// bytes.
func readText(mr *gomail.Reader) string {
	var fallback string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		ih, ok := p.Header.(*gomail.InlineHeader)
		if !ok {
			continue
		}
		ct, _, _ := mime.ParseMediaType(ih.Get("Content-Type"))
		if ct == "" {
			ct = "text/plain"
		}
		if !strings.HasPrefix(ct, "text/") {
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(p.Body, maxReport))
		if ct == "text/plain" {
			return strings.TrimSpace(strings.ReplaceAll(string(b), "\r\n", "\n"))
		}
		if fallback == "" {
			fallback = strings.TrimSpace(strings.ReplaceAll(string(b), "\r\n", "\n"))
		}
	}
	return fallback
}

// acknowledge mails the reporter the incident's id and response due time (recorded in the timeline).
func (s *Service) acknowledge(ctx context.Context, inc *Incident, to, inReplyTo string) {
	if s.o.Mailer == nil {
		return
	}
	if _, err := mail.ParseAddress(to); err != nil {
		return
	}
	loc := s.location(inc)
	subject := fmt.Sprintf("[easymail] [%s] %s received: %s", inc.Priority, inc.ID, inc.Title)
	body := fmt.Sprintf("Your report was registered as incident %s (priority %s) on %s.\n\n"+
		"The service desk will respond by %s (SLA %s, service window time). Reply with %s in the subject to add to it.\n",
		inc.ID, inc.Priority, inc.OpenedAt.In(loc).Format("Mon 2 Jan 2006 15:04 MST"),
		inc.SLA.ResponseDueAt.In(loc).Format("Mon 2 Jan 2006 15:04 MST"), inc.SLAType, inc.ID)
	if inReplyTo != "" {
		body += "\nIn reply to " + inReplyTo + "\n"
	}
	_, err := s.o.Mailer.SubmitWith(context.WithoutCancel(ctx), s.o.From, to, subject, body, func(tx *sql.Tx, qid string) error {
		return addEvent(ctx, tx, inc.ID, s.o.Now(), "notice", VisibilityInternal, ActorSystem, "received", to, "queued as "+qid)
	})
	if err != nil {
		s.log.Error("incident: acknowledgement not queued", "incident", inc.ID, "to", to, "err", err)
	}
}
