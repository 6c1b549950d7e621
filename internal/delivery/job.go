// Package delivery carries one message to the mail exchangers of one destination domain: it resolves the
// route (MX records in preference order, A/AAAA fallback, null MX per RFC 7505), dials from the outbound IP
// it is given with that IP's HELO name, upgrades to TLS as the TLS policy requires (opportunistic by default;
// encrypt, verify, MTA-STS and DANE in tls.go, docs/delivery.md), reuses an open
// connection for the next message to the same host, limits concurrent connections per destination, and
// returns one outcome per recipient.
//
// It knows nothing of the queue: the queue decides what to send and when, and records the outcomes.
package delivery

import (
	"io"
	"net/netip"
	"time"

	"easymail/internal/smtperr"
)

// Source is the outbound IP a delivery leaves from, with the HELO name that goes with it.
type Source struct {
	IP   netip.Addr
	HELO string
}

// Job is one message for the recipients of one destination domain.
type Job struct {
	// QueueID identifies the message in logs.
	QueueID string
	// Sender is the envelope sender; "" is the null sender.
	Sender string
	// Domain is the destination domain, lower case, A-label form.
	Domain string
	// Recipients are the envelope recipients, all at Domain.
	Recipients []string
	// SMTPUTF8 is set when the envelope or header needs the SMTPUTF8 extension (RFC 6531).
	SMTPUTF8 bool
	// EightBit is set when the body is 8BITMIME.
	EightBit bool
	// Size is the message size in bytes, for the SIZE parameter.
	Size int64
	// Open returns the message content (header and body, CRLF line endings). It may be called more than once
	// (once per MX tried); each reader is closed by the caller.
	Open func() (io.ReadCloser, error)
	// Source is the outbound IP to dial from.
	Source Source
	// TLSPolicy is the customer's own TLS policy (may, encrypt, verify), "" for none; the strictest of it,
	// the configured default and the destination's policy applies (docs/delivery.md).
	TLSPolicy string
}

// RcptResult is the outcome for one recipient. Err is nil when the recipient was accepted by the MX.
type RcptResult struct {
	Rcpt string
	Err  *smtperr.Error
	// Reply is the remote host's reply that decided the outcome, as the host wrote it ("250 2.0.0 Ok: queued
	// as 4BX3"; the lines of a multi-line reply joined by spaces, control characters removed, at most 1000
	// bytes): the reply to the end of DATA for a delivery, the refusal for a failure. It is "" when no reply
	// of a remote host decided (no connection, a DNS or local failure, a connection lost).
	Reply string
}

// Result is the outcome of one delivery attempt.
type Result struct {
	// Rcpts has one entry per Job.Recipients, in the same order.
	Rcpts []RcptResult
	// RemoteMX is the host name of the last MX tried ("" when none was reached), RemoteIP its address.
	RemoteMX string
	RemoteIP string
	// LocalIP is the source address used.
	LocalIP string
	// TLS describes the connection's TLS ("TLS1.3 TLS_AES_128_GCM_SHA256") or is "" for plain text;
	// TLSVersion ("TLS1.3") and TLSCipher ("TLS_AES_128_GCM_SHA256") are its parts.
	TLS        string
	TLSVersion string
	TLSCipher  string
	// TLSVerify is how the last host's certificate was checked: none (plain text), unverified, verified
	// (WebPKI), dane, or the TLS-RPT result type of the failure that stopped the session
	// (starttls-not-supported, certificate-expired, certificate-host-mismatch, validation-failure...); ""
	// when no host was reached.
	TLSVerify string
	// TLSPolicy is the source of the TLS requirement: none, customer, destination, mta-sts or dane.
	TLSPolicy string
	// Started and Duration time the attempt.
	Started  time.Time
	Duration time.Duration
}
