package smtpin

import (
	"context"
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

	// errors counts the error replies since the session started or last had a message accepted.
	errors int
	// overshoot counts the recipients of the transaction refused over MaxRecipients.
	overshoot int
}

// recipientOvershoot is how many recipients over the limit a transaction may send before each further one
// counts as a session error, as Postfix's smtpd_recipient_overshoot_limit (1000). The ones below are not
// errors: a client that has more recipients than the limit sends them all, gets 452 for the excess (RFC
// 5321 §4.5.3.1.10), sends the message to those accepted and the rest in another transaction.
const recipientOvershoot = 1000

// errNestedMail refuses MAIL inside a transaction (RFC 5321 §4.1.4: MAIL starts a transaction when none is in
// progress). go-smtp leaves the check to the session.
var errNestedMail = smtperr.New(503, smtperr.PermBadCommand, "Nested MAIL command: a transaction is already in progress; use RSET")

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
	s.overshoot = 0
}

func (s *session) Logout() error { return nil }

// Mail starts a transaction. Its permanent refusals are logged as messages rejected at the mail stage;
// the temporary ones (rate limits) are only counted, since the client retries them.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.fromSet {
		return s.fail(stageMail, "", errNestedMail)
	}
	s.Reset()
	if e := s.mail(from, opts); e != nil {
		if !e.Temporary() {
			s.logRejected(queue.StageMail, logAddress(from), nil, e)
		}
		return s.fail(stageMail, logAddress(from), e)
	}
	return nil
}

// mail checks the sender and the customer, and takes a message token.
func (s *session) mail(from string, opts *smtp.MailOptions) *smtperr.Error {
	c := s.current()
	if !c.MaySend() {
		return smtperr.CustomerDeactivated
	}
	if from != "" {
		canon, _, domain, err := canonicalAddress(from, opts != nil && opts.UTF8)
		if err != nil {
			return smtperr.From(err)
		}
		if !c.DomainAllowed(domain) {
			return smtperr.SenderNotAllowed
		}
		from = canon
	}
	if opts != nil && opts.Size > 0 && opts.Size > s.s.o.MaxMessageSize {
		return smtperr.TooLarge
	}
	// The rate limit comes last, so that refused transactions take no token.
	if e := s.limitCustomer("messages", s.policy().Limits.MessageRules()); e != nil {
		return e
	}
	if opts != nil {
		s.mailOpts = *opts
	}
	s.from, s.fromSet = from, true
	return nil
}

// Rcpt adds a recipient. Its permanent refusals are logged as messages rejected at the rcpt stage, for that
// recipient.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if !s.fromSet {
		return s.fail(stageRcpt, logAddress(to), smtperr.New(503, smtperr.PermBadCommand, "Need MAIL before RCPT"))
	}
	if len(s.rcpts) >= s.s.o.MaxRecipients {
		if s.overshoot++; s.overshoot > recipientOvershoot {
			return s.fail(stageRcpt, logAddress(to), smtperr.TooManyRecipients)
		}
		if s.overshoot == 1 {
			s.log.Info("smtp: recipients over the limit are deferred", "reply", smtperr.TooManyRecipients.Reply(),
				"limit", s.s.o.MaxRecipients)
		}
		return toSMTP(smtperr.TooManyRecipients)
	}
	canon, local, _, err := canonicalAddress(to, s.mailOpts.UTF8)
	if err != nil {
		return s.refuseRcpt(logAddress(to), smtperr.From(err))
	}
	if err := checkRecipientLocal(local); err != nil {
		return s.refuseRcpt(canon, smtperr.From(err))
	}
	// A recipient on the customer's suppression list is refused at once, so that the customer's server
	// returns the message itself. Not a session error: a list may hold many of a mailing's recipients.
	if sp := s.s.o.Suppressions; sp != nil {
		if reason, ok := sp.Suppressed(context.Background(), s.customer.ID, canon); ok {
			e := smtperr.New(550, smtperr.PermBadMailbox, "%s", reason)
			s.logRejected(queue.StageRcpt, s.from, []queue.Recipient{{Address: canon}}, e)
			s.reject(stageRcpt, canon, e)
			return toSMTP(e)
		}
	}
	if e := s.limitCustomer("recipients", s.policy().Limits.RecipientRules()); e != nil {
		return s.fail(stageRcpt, canon, e)
	}
	r := queue.Recipient{Address: canon}
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
	cc, hasCC := unwrapClient(s.conn.Conn())
	if hasCC {
		cc.beginData(s.s.o.Protection.DataTimeout)
	}
	id, err := s.receive(r)
	if hasCC && cc.endData() && err != nil {
		// The transfer overran its deadline: the client may still be sending content, which must never be
		// read as commands. Close after the reply.
		s.s.m.messages.WithLabelValues("failed").Inc()
		s.s.guard.pm.closed.WithLabelValues("data_timeout").Inc()
		s.log.Info("smtp: message transfer timed out; closing the session", "err", errText(err))
		s.closeAfterReply()
		return toSMTP(errDataTimeout)
	}
	if err != nil {
		e := smtperr.From(err)
		if e.Code/100 == 5 {
			s.s.m.messages.WithLabelValues("rejected").Inc()
		} else {
			s.s.m.messages.WithLabelValues("failed").Inc()
		}
		return s.fail(stageData, "", e)
	}
	s.errors = 0
	s.s.m.messages.WithLabelValues("accepted").Inc()
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + id}
}

// refuseRcpt logs and answers the permanent refusal of recipient rcpt.
func (s *session) refuseRcpt(rcpt string, e *smtperr.Error) error {
	if !e.Temporary() {
		s.logRejected(queue.StageRcpt, s.from, []queue.Recipient{{Address: rcpt}}, e)
	}
	return s.fail(stageRcpt, rcpt, e)
}

// logRejected records a transaction refused at stage (queue.StageMail or StageRcpt) in the message log, so
// that traces, searches and statistics show refusals too. Refusals of the content are logged by receive.
func (s *session) logRejected(stage, from string, rcpts []queue.Recipient, e *smtperr.Error) {
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
		Stage:      stage,
	}
	if err := s.s.o.Queue.LogRejected(ctx, env, e.Reply()); err != nil {
		s.log.Warn("smtp: could not log a refusal", "err", err)
	}
}

// logAddress returns an address as the client sent it, fit for the message log: valid UTF-8, without control
// characters, at most 320 bytes.
func logAddress(a string) string {
	a = strings.ToValidUTF8(a, "\uFFFD")
	a = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, a)
	if len(a) > 320 {
		a = strings.ToValidUTF8(a[:320], "")
	}
	return a
}

// toSMTP converts err into the only error type go-smtp turns into a proper reply. Errors with no SMTP
// meaning become a temporary 451, and their text stays in our log.
func toSMTP(err error) error {
	e := smtperr.From(err)
	return &smtp.SMTPError{Code: e.Code, EnhancedCode: smtp.EnhancedCode(e.Enhanced), Message: e.Message}
}

// The stages of a refusal in the "reject:" log lines.
const (
	stageMail = "mail"
	stageRcpt = "rcpt"
	stageData = "data"
)

// reject logs the refusal of a command in the one line operators grep for, as Postfix's "reject:": the
// stage, the reply, and the envelope so far (the session's logger adds the client's IP, customer and
// connection id); addr is the address of the refused command: the sender of a MAIL, the recipient of a
// RCPT. A temporary refusal caused by a failure of our own (e.Err) is a warning.
func (s *session) reject(stage, addr string, e *smtperr.Error) {
	attrs := []any{"stage", stage, "reply", e.Reply(), "helo", s.conn.Hostname()}
	switch {
	case stage == stageMail && !s.fromSet:
		attrs = append(attrs, "from", "<"+addr+">")
	case s.fromSet:
		attrs = append(attrs, "from", "<"+s.from+">")
	}
	if stage == stageRcpt && addr != "" {
		attrs = append(attrs, "to", "<"+addr+">")
	}
	lvl := slog.LevelInfo
	if e.Err != nil {
		attrs = append(attrs, "err", e.Err.Error())
		if e.Code/100 == 4 {
			lvl = slog.LevelWarn
		}
	}
	s.log.Log(context.Background(), lvl, "reject: "+strings.ToUpper(stage), attrs...)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
