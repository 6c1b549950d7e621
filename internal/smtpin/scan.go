package smtpin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"

	"github.com/emersion/go-message/textproto"

	"easymail/internal/queue"
	"easymail/internal/scan"
	"easymail/internal/smtperr"
	"easymail/internal/spool"
)

// Scanner scans a message during DATA and decides about it. *scan.Engine implements it.
type Scanner interface {
	// Active tells whether messages of the customer are scanned at all (a scanner or content rules).
	Active(customerID string) bool
	// Check scans msg and decides; it never fails, a scanner failure is part of the outcome.
	Check(ctx context.Context, env scan.Envelope, msg scan.Message) scan.Outcome
}

// Quarantine keeps a quarantined message whose content is committed to the spool. *quarantine.Store
// implements it.
type Quarantine interface {
	Put(ctx context.Context, env queue.Envelope, rep scan.Report, msg io.ReaderAt, size int64) error
}

// scanHeaders are the fields the relay's scan sets; the customer's own copies are removed, so that a
// receiver never trusts a forged verdict.
var scanHeaders = []string{"X-Easymail-Scan", "X-Easymail-Rule", "X-Spam-Flag", "X-Spam-Score"}

// scanning is the scan of the message being received. The scanners read the message back from its spool
// file (before it is committed), so that a session's memory does not grow with the size of the message.
type scanning struct {
	content spool.Content
	size    int64
}

// close releases the spool file opened for the scan. A nil *scanning does nothing.
func (sc *scanning) close() {
	if sc != nil && sc.content != nil {
		sc.content.Close()
	}
}

// beginScan returns the scan of a message of customerID, or nil when its messages are not scanned. It
// removes the customer's scan header fields from hdr.
func (s *session) beginScan(customerID string, hdr *textproto.Header) *scanning {
	if s.s.o.Scan == nil || !s.s.o.Scan.Active(customerID) {
		return nil
	}
	for _, k := range scanHeaders {
		hdr.Del(k)
	}
	return &scanning{}
}

// finishScan runs the scan of the message written so far to w and records its verdict in env. It returns
// the outcome, or nil when the message is not scanned; a spool file that cannot be read back is a local
// error (451).
func (s *session) finishScan(sc *scanning, w *spool.Writer, env *queue.Envelope) (*scan.Outcome, error) {
	if sc == nil {
		return nil, nil
	}
	c, err := w.Content()
	if err != nil {
		return nil, smtperr.LocalError.Wrap(err)
	}
	sc.content, sc.size = c, w.Size()
	rcpts := make([]string, len(env.Recipients))
	for i, r := range env.Recipients {
		rcpts[i] = r.Address
	}
	out := s.s.o.Scan.Check(context.Background(), scan.Envelope{QueueID: env.ID, CustomerID: env.CustomerID,
		From: env.Sender, Rcpts: rcpts, IP: env.ClientIP, Helo: env.HELO, User: env.CustomerID}, scan.NewMessage(c, sc.size))
	env.Verdict = out.Report.Verdict
	if b, err := json.Marshal(out.Report); err == nil {
		env.Scan = string(b)
	}
	level := slog.LevelDebug
	if out.Action != scan.Accept {
		level = slog.LevelInfo
	}
	s.log.Log(context.Background(), level, "smtp: scanned", "queue_id", env.ID, "action", out.Action,
		"verdict", out.Report.Verdict, "reason", out.Report.Reason, "rules", len(out.Report.Rules))
	return &out, nil
}

// errTooComplex refuses a message over the content rules' budgets (RFC 3463 §3.4: X.3.4, message too big
// for system).
func errTooComplex(reply string) *smtperr.Error {
	return smtperr.New(552, smtperr.PermTooBig, "%s", reply)
}

// scanRefusal returns the reply of an outcome that refuses the message, or nil.
func scanRefusal(o *scan.Outcome) *smtperr.Error {
	if o == nil {
		return nil
	}
	switch o.Action {
	case scan.Reject:
		if o.Budget != "" {
			return errTooComplex(o.Reply)
		}
		return smtperr.New(550, smtperr.PermPolicy, "%s", o.Reply)
	case scan.Tempfail:
		return smtperr.New(451, smtperr.TempPolicy, "%s", o.Reply)
	}
	return nil
}

// logRefusal records a message refused after its content was read, for the message log.
func (s *session) logRefusal(env queue.Envelope, e *smtperr.Error) {
	if err := s.s.o.Queue.LogRejected(context.Background(), env, e.Reply()); err != nil {
		s.log.Warn("smtp: could not log a refusal", "err", err)
	}
}

// quarantine records a committed message as quarantined and answers 250: the customer's server has handed
// it over, and the quarantine is the relay's responsibility now.
func (s *session) quarantine(env queue.Envelope, o *scan.Outcome, sc *scanning) (string, error) {
	if s.s.o.Quarantine == nil {
		s.s.o.Spool.Remove(env.ID)
		return "", smtperr.LocalError
	}
	if err := s.s.o.Quarantine.Put(context.Background(), env, o.Report, sc.content, sc.size); err != nil {
		s.s.o.Spool.Remove(env.ID)
		return "", smtperr.LocalError.Wrap(err)
	}
	s.log.Info("smtp: quarantined", "queue_id", env.ID, "from", env.Sender, "rcpts", len(env.Recipients),
		"size", env.Size, "reason", o.Report.Reason)
	return env.ID, nil
}
