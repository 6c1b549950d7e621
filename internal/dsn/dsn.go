// Package dsn builds and parses delivery status notifications: the multipart/report messages of RFC 6522 with
// a message/delivery-status part (RFC 3464) that Easymail sends to the envelope sender when recipients fail
// permanently, when a message expires in the queue, and as a warning that delivery is delayed.
//
// A report has three parts: a plain-English explanation, the machine-readable status fields, and the original
// message (in full for RET=FULL, its header section otherwise). For messages that needed SMTPUTF8 the
// internationalized types of RFC 6533 (message/global-delivery-status, message/global,
// message/global-headers) are used where the content is not ASCII.
package dsn

import (
	"errors"
	"time"
)

// ErrInvalidReport is wrapped by every error Build returns for a report that cannot be written as given.
var ErrInvalidReport = errors.New("dsn: invalid report")

// ErrNotDSN is wrapped by the errors Parse returns for a message that is not a delivery status notification.
var ErrNotDSN = errors.New("dsn: not a delivery status notification")

// Actions of RFC 3464 §2.3.3 that Build accepts.
const (
	// ActionFailed means the message could not be delivered to the recipient and will not be retried.
	ActionFailed = "failed"
	// ActionDelayed means delivery has not succeeded yet and is still being retried.
	ActionDelayed = "delayed"
)

// Recipient is one recipient's status in a report.
type Recipient struct {
	// Address is the final recipient, written as "Final-Recipient: rfc822; Address" (RFC 3464 §2.3.2), or with
	// the "utf-8" address type of RFC 6533 §3 when it is not ASCII.
	Address string
	// ORCPT is the original recipient from the RCPT command's ORCPT parameter (RFC 3461 §4.2), decoded, or "".
	// A leading "rfc822;" or "utf-8;" address type is accepted and dropped.
	ORCPT string
	// Action is "failed" or "delayed" (RFC 3464 §2.3.3).
	Action string
	// Status is the enhanced status code of RFC 3463, e.g. "5.1.1".
	Status string
	// RemoteMTA is the host name (A-label form) or address literal of the remote MTA that gave the diagnostic,
	// or "" when no remote MTA was reached. It is written as "Remote-MTA: dns; RemoteMTA".
	RemoteMTA string
	// Diagnostic is the remote reply on one line, e.g. "550 5.1.1 no such user", written as
	// "Diagnostic-Code: smtp; Diagnostic"; "" when there is none. Use SanitizeDiagnostic on untrusted text.
	Diagnostic string
	// LastAttempt is when delivery to this recipient was last tried; zero when never tried.
	LastAttempt time.Time
	// WillRetryUntil is when retrying will stop; written only for delayed recipients (RFC 3464 §2.3.8).
	WillRetryUntil time.Time
}

// Report is a delivery status notification about one message.
type Report struct {
	// ReportingMTA is our host name, written as "Reporting-MTA: dns; ReportingMTA".
	ReportingMTA string
	// QueueID is the message's queue id. It appears in the text, in the per-message fields and in the
	// X-Easymail-Queue-ID header field.
	QueueID string
	// EnvID is the envelope id from the MAIL command's ENVID parameter (RFC 3461 §4.4), decoded, or "".
	EnvID string
	// ArrivalDate is when the original message was received; zero leaves Arrival-Date out.
	ArrivalDate time.Time
	// Sender is the envelope sender of the original message; the report is addressed to it.
	Sender string
	// Postmaster is the From address of the report, e.g. "MAILER-DAEMON@relay.example.net".
	Postmaster string
	// Recipients are the recipients the report is about; at least one.
	Recipients []Recipient
	// ReturnFull asks for the whole original message (RET=FULL). Without it, or when the report only announces
	// delays, only the original's header section is returned.
	ReturnFull bool
	// SMTPUTF8 tells that the original message needed SMTPUTF8 (RFC 6531): the report may then carry UTF-8 in
	// its header and uses the RFC 6533 media types where its content is not ASCII.
	SMTPUTF8 bool
	// Now is the date of the report.
	Now time.Time
}

// anyFailed reports whether at least one recipient has failed.
func (r *Report) anyFailed() bool {
	for _, rc := range r.Recipients {
		if rc.Action == ActionFailed {
			return true
		}
	}
	return false
}
