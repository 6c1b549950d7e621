// Package dane verifies an SMTP server's certificate chain against its TLSA records (DANE for SMTP, RFC 7672):
// DANE-EE(3) records match the server's own certificate, with no name or date check; DANE-TA(2) records match
// a trust anchor in the chain the server sent, to which the server's certificate must chain with the MX host
// name and valid dates. Selectors 0 (whole certificate) and 1 (SubjectPublicKeyInfo), matching types 0
// (exact), 1 (SHA-256) and 2 (SHA-512) are supported; PKIX-TA(0) and PKIX-EE(1) records are unusable for
// SMTP (RFC 7672 §3.1.3) and ignored.
//
// Whether the records can be trusted at all (a DNSSEC-validated answer) is the caller's business.
package dane

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"easymail/internal/resolver"
)

// Certificate usages and the rest of a TLSA record's fields (RFC 6698 §2.1, RFC 7218).
const (
	UsageDANETA = 2
	UsageDANEEE = 3

	SelectorCert = 0
	SelectorSPKI = 1

	MatchFull   = 0
	MatchSHA256 = 1
	MatchSHA512 = 2
)

// Error is a chain that matches none of the records. Result is its TLS-RPT result type (RFC 8460 §4.3.2):
// validation-failure when nothing matched, certificate-expired or certificate-host-mismatch when a DANE-TA
// anchor matched but the server's certificate did not verify under it.
type Error struct {
	Result string
	Err    error
}

func (e *Error) Error() string { return "DANE: " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Usable returns the records a client can use for SMTP: DANE-TA or DANE-EE, with a known selector and
// matching type (RFC 7672 §3.1.3). When none is left, DANE does not apply (§2.2).
func Usable(recs []resolver.TLSA) []resolver.TLSA {
	var out []resolver.TLSA
	for _, r := range recs {
		if (r.Usage == UsageDANETA || r.Usage == UsageDANEEE) && r.Selector <= SelectorSPKI && r.MatchingType <= MatchSHA512 {
			out = append(out, r)
		}
	}
	return out
}

// Verify reports whether chain (the certificates the server sent, its own first) satisfies one of recs for
// the server named host at time now. It returns nil on a match and an *Error otherwise.
func Verify(recs []resolver.TLSA, chain []*x509.Certificate, host string, now time.Time) error {
	if len(chain) == 0 {
		return &Error{Result: "validation-failure", Err: errors.New("the server sent no certificate")}
	}
	var taErr error
	for _, r := range Usable(recs) {
		switch r.Usage {
		case UsageDANEEE:
			if matches(r, chain[0]) {
				return nil
			}
		case UsageDANETA:
			for _, ta := range chain {
				if !matches(r, ta) {
					continue
				}
				err := verifyTA(chain, ta, host, now)
				if err == nil {
					return nil
				}
				taErr = err
			}
		}
	}
	if taErr != nil {
		return taErr
	}
	return &Error{Result: "validation-failure", Err: fmt.Errorf("no TLSA record of %s matches the certificate chain", host)}
}

// verifyTA checks that the server's certificate chains to ta for host at now.
func verifyTA(chain []*x509.Certificate, ta *x509.Certificate, host string, now time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(ta)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if chain[0].Equal(ta) {
		// The anchor is the server's own certificate (self-issued): only its name and dates are left to check.
		if err := chain[0].VerifyHostname(host); err != nil {
			return &Error{Result: "certificate-host-mismatch", Err: err}
		}
		if now.Before(ta.NotBefore) || now.After(ta.NotAfter) {
			return &Error{Result: "certificate-expired", Err: fmt.Errorf("certificate of %s not valid at %s", host, now.UTC().Format(time.RFC3339))}
		}
		return nil
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err == nil {
		return nil
	}
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &hn):
		return &Error{Result: "certificate-host-mismatch", Err: err}
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return &Error{Result: "certificate-expired", Err: err}
	}
	return &Error{Result: "validation-failure", Err: err}
}

// matches reports whether c is what r describes.
func matches(r resolver.TLSA, c *x509.Certificate) bool {
	return bytes.Equal(Record(c, r.Selector, r.MatchingType), r.Data)
}

// Record returns the association data of a TLSA record of selector and matching type for c, for tests and for
// an operator printing the records to publish.
func Record(c *x509.Certificate, selector, matching uint8) []byte {
	data := c.Raw
	if selector == SelectorSPKI {
		data = c.RawSubjectPublicKeyInfo
	}
	switch matching {
	case MatchSHA256:
		sum := sha256.Sum256(data)
		return sum[:]
	case MatchSHA512:
		sum := sha512.Sum512(data)
		return sum[:]
	}
	return data
}
