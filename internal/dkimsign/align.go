package dkimsign

import "golang.org/x/net/publicsuffix"

// OrgDomain returns the organizational domain of a lower-case A-label domain (RFC 7489 §3.2): its public
// suffix, by the public suffix list, plus one label. A name under an unlisted top-level domain counts that
// label as its public suffix ("mail.acme.test" gives "acme.test"); a name that is a public suffix itself is
// its own organizational domain.
func OrgDomain(domain string) string {
	od, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return od
}

// Aligned reports whether two domains are aligned in DMARC's relaxed mode (RFC 7489 §3.1.1 and §3.1.2):
// both non-empty with the same organizational domain.
func Aligned(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return a == b || OrgDomain(a) == OrgDomain(b)
}
