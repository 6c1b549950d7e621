package delivery

import (
	"errors"
	"fmt"
	"net"
	"os"

	"easymail/internal/smtperr"
)

// remoteError is the outcome a reply of the remote host gives: its code, its enhanced code and its text, so
// that the sender learns what the destination said.
func remoteError(host string, r reply) *smtperr.Error {
	return &smtperr.Error{
		Code:     r.code,
		Enhanced: r.enhanced,
		Message:  fmt.Sprintf("remote host %s said: %s", host, r),
	}
}

// connectionError is the temporary outcome of an error that is not an SMTP reply, met during stage with host:
// no answer in time (RFC 3463 X.4.1) or a broken connection (X.4.2).
func connectionError(host, stage string, err error) *smtperr.Error {
	if isTimeout(err) {
		return smtperr.New(451, smtperr.TempNoAnswer, "No answer from remote host %s to %s", host, stage).Wrap(err)
	}
	return smtperr.New(451, smtperr.TempBadConnection, "Connection lost with remote host %s during %s", host, stage).Wrap(err)
}

// unexpectedReply is the temporary outcome of a reply that has no place at this point of the dialogue, such
// as a 250 to DATA.
func unexpectedReply(host, stage string, r reply) *smtperr.Error {
	return smtperr.New(451, smtperr.TempProtocol, "Remote host %s gave an unexpected reply to %s: %s", host, stage, r)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// aborted is the outcome of an attempt stopped by its context (the queue shutting down).
func aborted(err error) *smtperr.Error {
	return smtperr.New(451, smtperr.TempSystem, "Delivery attempt aborted, will retry").Wrap(err)
}

// dnsFailed is the outcome of a DNS lookup that got no answer (RFC 3463 X.4.3: directory server failure).
func dnsFailed(name string, err error) *smtperr.Error {
	return smtperr.New(451, smtperr.TempDirectory, "DNS lookup failed for %s", name).Wrap(err)
}

// nullMX is the outcome for a domain that publishes a null MX (RFC 7505 §4.2: 556 5.1.10).
func nullMX(domain string) *smtperr.Error {
	return smtperr.New(556, [3]int{5, 1, 10}, "Recipient domain %s does not accept mail (null MX)", domain)
}

// noSuchDomain is the outcome for a domain with neither MX nor address records (RFC 5321 §5.1; RFC 3463
// X.1.2: bad destination system address).
func noSuchDomain(domain string, err error) *smtperr.Error {
	return smtperr.New(550, smtperr.PermBadSystem, "Domain %s has no MX or address records", domain).Wrap(err)
}

// noHostReached is the outcome when no MX host of the domain could take the message (RFC 3463 X.4.1).
func noHostReached(cause error) *smtperr.Error {
	return smtperr.New(451, smtperr.TempNoAnswer, "No MX host could be reached").Wrap(cause)
}

// noSMTPUTF8 is the outcome when the message needs SMTPUTF8 and the remote host lacks it (RFC 6531 §3.4).
func noSMTPUTF8(host string) *smtperr.Error {
	return smtperr.New(553, smtperr.PermNonASCII, "Remote host %s does not support SMTPUTF8, which this message needs", host)
}
