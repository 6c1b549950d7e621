package smtpin

import (
	"io"

	"github.com/emersion/go-message/textproto"

	"easymail/internal/dkimsign"
	"easymail/internal/queue"
)

// Authenticator signs accepted messages with DKIM and gives their authentication results (DMARC
// alignment, bulk markers), which the message's envelope carries to its row in the message log.
// *dkimsign.Manager implements it.
type Authenticator interface {
	// Begin analyses the header of a message of customerID and prepares its signing.
	Begin(customerID, sender string, h textproto.Header) *dkimsign.Signing
}

// signing is the DKIM signing of the message being received. A nil *signing (no Authenticator configured)
// does nothing.
type signing struct {
	a Authenticator
	s *dkimsign.Signing
}

// beginSigning prepares the signing of a message whose header, as it will be spooled, is hdr.
func (s *session) beginSigning(customerID string, hdr textproto.Header) *signing {
	if s.s.o.DKIM == nil {
		return nil
	}
	return &signing{a: s.s.o.DKIM, s: s.s.o.DKIM.Begin(customerID, s.from, hdr)}
}

// writer returns what the message is written through: w, and the signers when the message is signed, so
// that the signatures cover exactly the spooled bytes.
func (g *signing) writer(w io.Writer) io.Writer {
	if g == nil {
		return w
	}
	return g.s.Writer(w)
}

// finish returns the DKIM-Signature fields for the prefix. A signing failure leaves the message unsigned
// rather than refusing it: the signature is an addition, the message is what must not be lost.
func (s *session) finishSigning(g *signing) string {
	if g == nil {
		return ""
	}
	fields, err := g.s.Finish()
	if err != nil {
		s.log.Error("smtp: DKIM signing failed; the message goes unsigned", "err", err)
	}
	return fields
}

// abort releases the signers of a message that is not accepted.
func (g *signing) abort() {
	if g != nil {
		g.s.Abort()
	}
}

// auth returns the authentication result for the message's envelope (after Finish); nil without signing.
func (g *signing) auth() *queue.Authentication {
	if g == nil {
		return nil
	}
	r := g.s.Result
	return &queue.Authentication{FromDomain: r.FromDomain, DKIMDomain: r.DKIMDomain, DKIMSelectors: r.Selectors,
		DKIMAligned: r.DKIMAligned, SPFAligned: r.SPFAligned, DMARCAligned: r.DMARCAligned,
		Bulk: r.Bulk, ListUnsubscribe: r.ListUnsubscribe, OneClick: r.OneClick}
}
