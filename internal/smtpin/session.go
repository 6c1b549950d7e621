package smtpin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"easymail/internal/access"
	"easymail/internal/queue"
	"easymail/internal/smtperr"
)

// session is one SMTP session of a registered customer. go-smtp calls its methods from one goroutine.
type session struct {
	s        *Server
	conn     *smtp.Conn
	customer *access.Customer
	ip       netip.Addr
	connID   string
	tls      bool
	log      *slog.Logger

	from     string
	fromSet  bool
	mailOpts smtp.MailOptions
	rcpts    []queue.Recipient
}

// current returns the customer as of the last access reload, so that a status change (deactivation) applies
// to sessions already open.
func (s *session) current() *access.Customer {
	if c, ok := s.s.o.Access.Customer(s.customer.ID); ok {
		return c
	}
	return s.customer
}

func (s *session) Reset() {
	s.from, s.fromSet, s.rcpts = "", false, nil
	s.mailOpts = smtp.MailOptions{}
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.Reset()
	c := s.current()
	if !c.MaySend() {
		s.logRejected(from, nil, smtperr.CustomerDeactivated)
		return toSMTP(smtperr.CustomerDeactivated, s.log)
	}
	if from != "" {
		_, domain, err := splitAddress(from)
		if err != nil {
			return toSMTP(smtperr.BadAddress.Wrap(err), s.log)
		}
		if !c.DomainAllowed(domain) {
			s.logRejected(from, nil, smtperr.SenderNotAllowed)
			return toSMTP(smtperr.SenderNotAllowed, s.log)
		}
	}
	if opts != nil {
		if opts.Size > 0 && opts.Size > s.s.o.MaxMessageSize {
			return toSMTP(smtperr.TooLarge, s.log)
		}
		s.mailOpts = *opts
	}
	s.from, s.fromSet = from, true
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if !s.fromSet {
		return toSMTP(smtperr.New(503, [3]int{5, 5, 1}, "Need MAIL before RCPT"), s.log)
	}
	if len(s.rcpts) >= s.s.o.MaxRecipients {
		return toSMTP(smtperr.TooManyRecipients, s.log)
	}
	if _, _, err := splitAddress(to); err != nil {
		return toSMTP(smtperr.BadAddress.Wrap(err), s.log)
	}
	r := queue.Recipient{Address: to}
	if opts != nil {
		var notify []string
		for _, n := range opts.Notify {
			notify = append(notify, string(n))
		}
		r.Notify = strings.Join(notify, ",")
		if opts.OriginalRecipient != "" {
			r.ORCPT = string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
		}
	}
	s.rcpts = append(s.rcpts, r)
	return nil
}

func (s *session) Data(r io.Reader) error {
	id, err := s.receive(r)
	if err != nil {
		e := smtperr.From(err)
		if e.Code/100 == 5 {
			s.s.m.messages.WithLabelValues("rejected").Inc()
		} else {
			s.s.m.messages.WithLabelValues("failed").Inc()
		}
		return toSMTP(e, s.log)
	}
	s.s.m.messages.WithLabelValues("accepted").Inc()
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + id}
}

// logRejected records a refused transaction in the message log, so that traces show refusals too.
func (s *session) logRejected(from string, rcpts []queue.Recipient, e *smtperr.Error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	env := queue.Envelope{
		ID:         newQueueID(),
		CustomerID: s.customer.ID,
		Sender:     from,
		Recipients: rcpts,
		ClientIP:   s.ip.String(),
		HELO:       s.conn.Hostname(),
		Received:   time.Now(),
	}
	if err := s.s.o.Queue.LogRejected(ctx, env, e.Reply()); err != nil {
		s.log.Warn("smtp: could not log a refusal", "err", err)
	}
}

// toSMTP converts err into the only error type go-smtp turns into a proper reply. Errors with no SMTP
// meaning become a temporary 451, and their text stays in our log.
func toSMTP(err error, log *slog.Logger) error {
	e := smtperr.From(err)
	if log != nil {
		lvl := slog.LevelInfo
		if e.Code/100 == 4 && e.Err != nil {
			lvl = slog.LevelWarn
		}
		log.Log(context.Background(), lvl, "smtp: refused", "reply", e.Reply(), "err", errText(e.Err))
	}
	return &smtp.SMTPError{Code: e.Code, EnhancedCode: smtp.EnhancedCode(e.Enhanced), Message: e.Message}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// splitAddress splits an address into local part and domain, refusing what cannot be relayed safely.
func splitAddress(addr string) (local, domain string, err error) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", "", errors.New("address needs a local part and a domain")
	}
	local, domain = addr[:i], addr[i+1:]
	if strings.HasPrefix(domain, "[") {
		return "", "", errors.New("address literals are not relayed")
	}
	if strings.ContainsAny(domain, " \t\r\n\x00<>()[]\\,;:\"@%!") {
		return "", "", errors.New("invalid characters in domain")
	}
	if strings.ContainsAny(local, "\r\n\x00") {
		return "", "", errors.New("invalid characters in local part")
	}
	if _, err := access.NormalizeDomain(domain); err != nil {
		return "", "", err
	}
	return local, domain, nil
}
