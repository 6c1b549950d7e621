// Package resolver looks up the DNS records that delivery and supervision need (MX, A/AAAA, TXT, PTR), through
// the resolvers named in the configuration (dns.servers) or, when none is named, those of /etc/resolv.conf.
//
// Every lookup distinguishes "the name does not exist / has no such record" (ErrNotFound, a permanent answer)
// from a failure to get an answer (a temporary error), because delivery bounces on the first and retries on the
// second.
package resolver

import (
	"context"
	"errors"
	"net"
)

// ErrNotFound is returned (wrapped) when the name does not exist (NXDOMAIN) or has no record of the asked type
// (NODATA). Callers test it with errors.Is. Any other error is temporary (SERVFAIL, timeout, network).
var ErrNotFound = errors.New("no such record")

// MX is one mail exchanger of a domain.
type MX struct {
	// Host is the exchanger's name, without the trailing dot. "" (from an MX of ".") means a null MX (RFC 7505).
	Host string
	// Pref is the MX preference; lower is tried first.
	Pref uint16
}

// Resolver is the DNS as Easymail sees it. Implementations are safe for concurrent use.
type Resolver interface {
	// LookupMX returns the MX records of domain sorted by preference (RFC 5321 §5.1), equal preferences in
	// random order. A domain without MX records gives ErrNotFound (the caller then falls back to A/AAAA).
	LookupMX(ctx context.Context, domain string) ([]MX, error)
	// LookupIP returns the IPv4 and IPv6 addresses of host (A and AAAA records), IPv4 first.
	LookupIP(ctx context.Context, host string) ([]net.IP, error)
	// LookupTXT returns the TXT records of name, each record's strings joined.
	LookupTXT(ctx context.Context, name string) ([]string, error)
	// LookupPTR returns the names (without trailing dot) that the reverse zone gives for ip.
	LookupPTR(ctx context.Context, ip net.IP) ([]string, error)
}

// TLSAResolver looks up TLSA records for DANE (RFC 7672). *DNS implements it.
type TLSAResolver interface {
	// LookupTLSA returns the TLSA records at name and whether the answer was DNSSEC-validated (the AD bit of
	// a validating resolver). A name without TLSA records gives ErrNotFound.
	LookupTLSA(ctx context.Context, name string) ([]TLSA, bool, error)
}
