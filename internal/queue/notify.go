package queue

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"easymail/internal/delivery"
	"easymail/internal/dsn"
	"easymail/internal/msgid"
)

// maxOriginalInDSN bounds the copy of the original message returned in a DSN.
const maxOriginalInDSN = 1 << 20

// makeDSN writes a failure (delay false) or delay notice for the given recipients of g to the spool and
// returns the envelope that queues it, from the null sender to g's sender (so that it can never cause
// another DSN).
func (q *Queue) makeDSN(g *group, outs []outcome, res delivery.Result, delay bool, now time.Time) (*Envelope, error) {
	rep := dsn.Report{
		ReportingMTA: q.o.Hostname,
		QueueID:      g.msgID,
		EnvID:        g.envID,
		ArrivalDate:  g.received,
		Sender:       g.sender,
		Postmaster:   "MAILER-DAEMON@" + q.o.Hostname,
		ReturnFull:   strings.EqualFold(g.dsnRet, "FULL"),
		SMTPUTF8:     g.smtputf8,
		Now:          now,
	}
	for _, o := range outs {
		r := dsn.Recipient{
			Address:     o.rcpt.address,
			ORCPT:       o.rcpt.orcpt,
			Action:      "failed",
			RemoteMTA:   res.RemoteMX,
			LastAttempt: now,
		}
		if o.err != nil {
			r.Status = fmt.Sprintf("%d.%d.%d", o.err.Enhanced[0], o.err.Enhanced[1], o.err.Enhanced[2])
			r.Diagnostic = dsn.SanitizeDiagnostic(o.err.Reply())
			if o.remote != "" {
				// RFC 3464 §2.3.6: the diagnostic is the remote MTA's own reply when there is one.
				r.Diagnostic = o.remote
			}
			if o.expired {
				// RFC 3463: 4.4.7 "delivery time expired" becomes permanent as 5.4.7.
				r.Status = "5.4.7"
			}
		}
		if delay {
			r.Action = "delayed"
			r.WillRetryUntil = g.expires
		}
		rep.Recipients = append(rep.Recipients, r)
	}
	// A message whose content is lost is reported without it.
	var original io.Reader
	orig, err := q.openContent(g.msgID, g.prefix)
	switch {
	case err == nil:
		defer orig.Close()
		original = orig
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("dsn: open original %s: %w", g.msgID, err)
	}
	id := msgid.New()
	w, err := q.o.Spool.Create(id)
	if err != nil {
		return nil, err
	}
	if err := dsn.Build(w, rep, original, maxOriginalInDSN); err != nil {
		w.Abort()
		return nil, fmt.Errorf("dsn: build for %s: %w", g.msgID, err)
	}
	size := w.Size()
	if err := w.Commit(); err != nil {
		return nil, err
	}
	subject := "Undelivered Mail Returned to Sender"
	if delay {
		subject = "Delayed Mail (still being retried)"
	}
	return &Envelope{
		ID:         id,
		CustomerID: g.customerID,
		Sender:     "",
		Recipients: []Recipient{{Address: g.sender, Notify: "NEVER"}},
		Size:       size,
		HeaderFrom: rep.Postmaster,
		Subject:    subject,
		MessageID:  "",
		SMTPUTF8:   g.smtputf8,
		// The returned original may carry 8-bit bytes.
		EightBit: g.smtputf8 || g.eightBit,
		IsDSN:    true,
		DSNFor:   g.msgID,
		Received: now,
	}, nil
}
