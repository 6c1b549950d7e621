package dkimsign

import (
	"crypto"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/dkim"
	"golang.org/x/net/idna"
)

// signedFields are the header fields signed when present, in this order: those RFC 6376 §5.4.1 recommends,
// the MIME fields that decide how the body is read, Message-ID and Sender. RFC 8058 §4 requires
// List-Unsubscribe and List-Unsubscribe-Post to be signed.
var signedFields = []string{
	"From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID", "In-Reply-To", "References",
	"Resent-Date", "Resent-From", "Resent-To", "Resent-Cc", "Sender",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Subscribe", "List-Post",
	"List-Owner", "List-Archive",
}

// overSigned are listed once more than they occur (RFC 6376 §5.4.2 and §8.15): a field of these names added
// after signing, even where there was none, breaks the signature. From is always among them, so that a
// second From cannot be slipped in.
var overSigned = map[string]bool{
	"From": true, "Reply-To": true, "Subject": true, "Date": true, "To": true, "Cc": true, "Message-ID": true,
	"MIME-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true,
	"List-Unsubscribe": true, "List-Unsubscribe-Post": true,
}

// maxSignedOccurrences bounds how many occurrences of one field name are listed in h=. RFC 5322 §3.6 allows
// at most one of each signed field except the Resent-* fields (one block per resending), so ten covers every
// well-formed message. The bound keeps the signer's cost linear in the header's size: go-msgauth looks up each
// h= entry by scanning the header, and a header of 55,000 To: fields listed in full took 37 s to sign.
const maxSignedOccurrences = 10

// headerKeys is the h= list for a header: each field of signedFields as many times as it occurs (at most
// maxSignedOccurrences, the last ones: h= picks fields from the bottom, RFC 6376 §5.4.2), plus once for the
// over-signed ones. A field that occurs more often than the bound is not over-signed, since one more entry
// would only pick one more existing field.
func headerKeys(h textproto.Header) []string {
	var keys []string
	for _, f := range signedFields {
		n := len(h.Values(f))
		switch {
		case n > maxSignedOccurrences:
			n = maxSignedOccurrences
		case overSigned[f]:
			n++
		}
		for range n {
			keys = append(keys, f)
		}
	}
	return keys
}

// Result is what was learnt of a message's authentication when it was accepted.
type Result struct {
	// FromDomain is the header From's domain (the first address's), lower-case A-label.
	FromDomain string
	// DKIMDomain is the d= of Easymail's signatures, "" when the message is not signed; Selectors their s=.
	DKIMDomain string
	Selectors  []string
	// DKIMAligned and SPFAligned are the relaxed identifier alignments (RFC 7489 §3.1) of DKIMDomain and of
	// the envelope sender's domain with FromDomain; DMARCAligned is either. SPF alignment says only that
	// the identifiers match: whether SPF passes depends on the sender domain's record (see Readiness).
	DKIMAligned, SPFAligned, DMARCAligned bool
	// Bulk, ListUnsubscribe and OneClick describe the message's bulk markers (see bulkMarkers).
	Bulk, ListUnsubscribe, OneClick bool
}

// Signing is the DKIM signing of one message in progress. Write the message through Writer, then call
// Finish; or Abort when the message is abandoned.
type Signing struct {
	// Result is the message's authentication result; Finish updates it if signing fails.
	Result  Result
	signers []*dkim.Signer
	m       *metrics
}

// Begin analyses the header of a message of customerID with envelope sender sender ("" for the null sender)
// and prepares its signing. h is the header as it will be spooled (after clean-up). The returned Signing
// signs nothing when the customer has no active key for the From or the sender domain; its Result is set
// in every case.
func (m *Manager) Begin(customerID, sender string, h textproto.Header) *Signing {
	s := &Signing{m: m.m}
	r := &s.Result
	r.FromDomain = fromDomain(h)
	senderDomain := addressDomain(sender)
	r.Bulk, r.ListUnsubscribe, r.OneClick = bulkMarkers(h)

	t := m.keys.Load()
	keys := t.lookup(customerID, r.FromDomain)
	if keys == nil {
		keys = t.lookup(customerID, senderDomain)
	}
	var hk []string
	for _, k := range keys {
		if hk == nil {
			hk = headerKeys(h)
		}
		ds, err := newSigner(k.domain, k.selector, k.signer, hk)
		if err != nil {
			m.log.Error("dkim: cannot sign", "domain", k.domain, "selector", k.selector, "err", err)
			continue
		}
		s.signers = append(s.signers, ds)
		r.DKIMDomain = k.domain
		r.Selectors = append(r.Selectors, k.selector)
	}
	r.SPFAligned = Aligned(r.FromDomain, senderDomain)
	r.DKIMAligned = Aligned(r.FromDomain, r.DKIMDomain)
	r.DMARCAligned = r.DKIMAligned || r.SPFAligned
	return s
}

// newSigner starts a go-msgauth signer with Easymail's settings.
func newSigner(domain, selector string, key crypto.Signer, headerKeys []string) (*dkim.Signer, error) {
	return dkim.NewSigner(&dkim.SignOptions{
		Domain:                 domain,
		Selector:               selector,
		Signer:                 key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             headerKeys,
	})
}

// lookup returns the customer's active keys for domain or, failing that, for its closest parent domain that
// has keys. A domain whose keys belong to another customer gives none.
func (t *keyTable) lookup(customerID, domain string) []*signingKey {
	for d := domain; d != ""; {
		if keys := t.byDomain[d]; keys != nil {
			if keys[0].customerID != customerID {
				return nil
			}
			return keys
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
			break
		}
		d = d[i+1:]
	}
	return nil
}

// Signs reports whether the message is being signed.
func (s *Signing) Signs() bool { return len(s.signers) > 0 }

// Writer returns a writer that passes everything written to w and to the signers: the message, header and
// body, exactly as spooled. Without signers it is w. Only w's errors are returned: a signer that fails
// does not stop the message, Finish reports it.
func (s *Signing) Writer(w io.Writer) io.Writer {
	if len(s.signers) == 0 {
		return w
	}
	ws := []io.Writer{w}
	for _, d := range s.signers {
		ws = append(ws, &lenient{w: d})
	}
	return io.MultiWriter(ws...)
}

// lenient writes to w until it fails, and then swallows the writes.
type lenient struct {
	w      io.Writer
	failed bool
}

func (l *lenient) Write(p []byte) (int, error) {
	if !l.failed {
		if _, err := l.w.Write(p); err != nil {
			l.failed = true
		}
	}
	return len(p), nil
}

// Finish completes the signatures and returns the DKIM-Signature header fields, CRLF-ended, to put in front of
// the message. On an error the message is left unsigned: Result is updated to say so, and the error says
// why.
func (s *Signing) Finish() (string, error) {
	var b strings.Builder
	var errs []error
	for _, d := range s.signers {
		if err := d.Close(); err != nil {
			errs = append(errs, err)
			continue
		}
		b.WriteString(d.Signature())
	}
	signed := len(s.signers) > 0
	s.signers = nil
	var err error
	switch {
	case len(errs) > 0:
		r := &s.Result
		r.DKIMDomain, r.Selectors, r.DKIMAligned = "", nil, false
		r.DMARCAligned = r.SPFAligned
		s.m.messages.WithLabelValues("failed").Inc()
		err = errors.Join(errs...)
	case signed:
		s.m.messages.WithLabelValues("signed").Inc()
	default:
		s.m.messages.WithLabelValues("unsigned").Inc()
	}
	if s.Result.DMARCAligned {
		s.m.aligned.WithLabelValues("aligned").Inc()
	} else {
		s.m.aligned.WithLabelValues("unaligned").Inc()
	}
	if err != nil {
		return "", err
	}
	return b.String(), nil
}

// Abort stops the signers of an abandoned message. Finish must not be called after it.
func (s *Signing) Abort() {
	for _, d := range s.signers {
		d.Close()
	}
	s.signers = nil
}

// fromDomain returns the domain of the header From's first address, "" when there is none.
func fromDomain(h textproto.Header) string {
	mh := mail.Header{Header: message.Header{Header: h}}
	addrs, err := mh.AddressList("From")
	if err != nil || len(addrs) == 0 {
		return ""
	}
	return addressDomain(addrs[0].Address)
}

// addressDomain returns the domain of an address as a lower-case A-label, "" when it has none.
func addressDomain(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return normalize(addr[i+1:])
}

// normalize returns domain as a lower-case A-label without a trailing dot, "" when it is not a domain name.
func normalize(domain string) string {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	if d == "" {
		return ""
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return ""
	}
	return a
}
