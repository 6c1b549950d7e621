package smtpin

import (
	"fmt"
	"strings"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"easymail/internal/smtperr"
)

// singleFields are the originator fields RFC 5322 §3.6 allows at most once in a message. A second one is
// refused whatever the customer's settings: the next hop, a DMARC check (RFC 7489 §6.6.1) or the reader's
// client may each take a different one, so the one we checked would not be the one shown. Field names are
// matched as go-message reads them — without regard to case and with the white space before the colon
// removed (the obsolete syntax of RFC 5322 §4.5) — so "FROM:" and "From\t:" are both From.
var singleFields = []string{"From", "Sender"}

// originatorFields are the fields naming who the message is from: its author (From), the agent that sent
// it (Sender, §3.6.2), and the same for each resending (Resent-From, Resent-Sender, §3.6.6; one block per
// resending, so these may repeat). With anti-spoofing, every address of every one of them must be in the
// customer's domains. Reply-To is not an originator (a customer may direct replies anywhere) and is not
// checked.
var originatorFields = []string{"From", "Sender", "Resent-From", "Resent-Sender"}

// errDuplicateField refuses a message with more than one of a field RFC 5322 allows once.
func errDuplicateField(name string, n int) *smtperr.Error {
	return smtperr.New(554, smtperr.PermMedia, "Message has %d %s header fields; RFC 5322 §3.6 allows one", n, name)
}

// errOriginatorNotAllowed refuses an originator field (other than From) naming a domain not the customer's.
func errOriginatorNotAllowed(name string) *smtperr.Error {
	return smtperr.New(550, smtperr.PermPolicy, "Header %s domain is not registered for this customer", name)
}

// errBadOriginator refuses an originator field (other than From) that cannot be parsed.
func errBadOriginator(name string) *smtperr.Error {
	return smtperr.New(550, smtperr.PermPolicy, "Header %s cannot be parsed", name)
}

// checkOriginators refuses a message with more than one From or Sender field and, with anti-spoofing, one
// whose header From is missing or unparsable or whose originator fields (originatorFields) name an address
// outside the customer's domains (allowed). Every address of a multi-address field must pass.
func checkOriginators(h textproto.Header, antiSpoofing bool, allowed func(domain string) bool) error {
	for _, f := range singleFields {
		if n := len(h.Values(f)); n > 1 {
			return errDuplicateField(f, n)
		}
	}
	if !antiSpoofing {
		return nil
	}
	if !h.Has("From") {
		return errNoFrom
	}
	for _, f := range originatorFields {
		for _, v := range h.Values(f) {
			addrs, err := mail.ParseAddressList(v)
			if err != nil || len(addrs) == 0 {
				if err == nil {
					err = fmt.Errorf("no address in %s", f)
				}
				if f == "From" {
					return errBadFrom.Wrap(err)
				}
				return errBadOriginator(f).Wrap(err)
			}
			for _, a := range addrs {
				i := strings.LastIndexByte(a.Address, '@')
				if i >= 0 && allowed(a.Address[i+1:]) {
					continue
				}
				if f == "From" {
					return smtperr.HeaderFromNotAllowed
				}
				return errOriginatorNotAllowed(f)
			}
		}
	}
	return nil
}
