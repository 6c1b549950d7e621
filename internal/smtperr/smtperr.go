// Package smtperr is Easymail's vocabulary of SMTP outcomes: a reply code, an enhanced status code (RFC 3463)
// and a public text, with the internal cause kept apart so that it is logged but never sent to a client.
//
// An error that carries no SMTP annotation is temporary: losing mail because an unexpected error was reported
// as permanent is worse than a retry.
package smtperr

import (
	"errors"
	"fmt"
)

// Error is an SMTP reply: Code (e.g. 550), Enhanced (e.g. [3]int{5,7,1}) and a Message fit for the client.
// Err is the internal cause, for logs only.
type Error struct {
	Code     int
	Enhanced [3]int
	Message  string
	Err      error
}

// Error returns the reply as "550 5.7.1 text" followed by the internal cause, if any.
func (e *Error) Error() string {
	s := e.Reply()
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

// Reply returns the reply line as sent on the wire, without CRLF: "550 5.7.1 text".
func (e *Error) Reply() string {
	return fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], e.Message)
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the reply is a 4xx.
func (e *Error) Temporary() bool { return e.Code/100 == 4 }

// New returns an Error with the given code, enhanced code and message.
func New(code int, enhanced [3]int, format string, args ...any) *Error {
	return &Error{Code: code, Enhanced: enhanced, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns a copy of e with cause as its internal error.
func (e *Error) Wrap(cause error) *Error {
	c := *e
	c.Err = cause
	return &c
}

// From returns err as an *Error. An error without an *Error in its chain becomes a 451 4.3.0 "local error"
// (temporary), with err kept as the internal cause.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: 451, Enhanced: TempSystem, Message: "Local error, try again later", Err: err}
}

// IsPermanent reports whether err is an SMTP error with a 5xx code. Errors without an SMTP code are temporary.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code/100 == 5
}

// Replies used on ingress. The texts are completed by the caller where they need detail.
var (
	// ClientNotRegistered refuses a client that belongs to no customer.
	ClientNotRegistered = New(554, PermPolicy, "Client host is not a registered relay of any customer")
	// SenderNotAllowed refuses an envelope sender whose domain is not the customer's.
	SenderNotAllowed = New(550, PermPolicy, "Sender domain is not registered for this customer")
	// HeaderFromNotAllowed refuses a header From whose domain is not the customer's.
	HeaderFromNotAllowed = New(550, PermPolicy, "Header From domain is not registered for this customer")
	// CustomerDeactivated refuses all mail of a deactivated customer.
	CustomerDeactivated = New(550, PermPolicy, "Customer account is deactivated")
	// TooLarge refuses a message over the size limit.
	TooLarge = New(552, PermTooBig, "Message too large")
	// TooManyRecipients defers recipients over the per-message limit.
	TooManyRecipients = New(452, TempTooManyRecipients, "Too many recipients")
	// BadAddress refuses a syntactically invalid address.
	BadAddress = New(501, PermBadSyntax, "Bad address syntax")
	// BareLineEnding refuses a message with a bare CR or LF, which could smuggle a second message.
	BareLineEnding = New(554, PermMedia, "Message contains a bare CR or LF; use CRLF line endings")
	// NULByte refuses a message with a NUL byte.
	NULByte = New(554, PermMedia, "Message contains a NUL byte")
	// MailLoop refuses a message with too many Received headers.
	MailLoop = New(554, PermLoop, "Too many Received headers: mail loop")
	// LocalError is a temporary failure on our side.
	LocalError = New(451, TempSystem, "Local error, try again later")
	// ShuttingDown is answered while the server stops.
	ShuttingDown = New(421, TempNotAccepting, "Service shutting down, try again later")
)
