package customer

import (
	"fmt"
	"net/mail"
	"net/netip"
	"strings"
	"unicode"

	"golang.org/x/net/idna"

	"easymail/internal/fielderr"
)

// maxNameLen bounds a customer's display name.
const maxNameLen = 200

// checkName validates a customer's display name and returns it trimmed.
func checkName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", &fielderr.Error{Field: "name", Msg: "is required"}
	}
	if len(s) > maxNameLen {
		return "", &fielderr.Error{Field: "name", Msg: fmt.Sprintf("is longer than %d bytes", maxNameLen)}
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", &fielderr.Error{Field: "name", Msg: "must not contain control characters"}
		}
	}
	return s, nil
}

// checkContact validates a contact address (RFC 5322 §3.4, as net/mail parses it) and returns its
// addr-spec: "Jane <jane@example.com>" gives "jane@example.com".
func checkContact(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", &fielderr.Error{Field: "contact_email", Msg: "is required"}
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", &fielderr.Error{Field: "contact_email", Msg: fmt.Sprintf("%q is not an e-mail address", s)}
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 1 {
		return "", &fielderr.Error{Field: "contact_email", Msg: fmt.Sprintf("%q is not an e-mail address", s)}
	}
	if _, err := NormalizeDomain(a.Address[at+1:]); err != nil {
		return "", &fielderr.Error{Field: "contact_email", Msg: fmt.Sprintf("%q: the domain is not valid: %v", s, err)}
	}
	return a.Address, nil
}

// checkPool returns pool if it is one of pools, or the first pool when pool is empty.
func checkPool(pool string, pools []string) (string, error) {
	pool = strings.TrimSpace(pool)
	if pool == "" {
		if len(pools) == 0 {
			return "", &fielderr.Error{Field: "pool", Msg: "is required (no pool is configured)"}
		}
		return pools[0], nil
	}
	for _, p := range pools {
		if p == pool {
			return pool, nil
		}
	}
	return "", &fielderr.Error{Field: "pool", Msg: fmt.Sprintf("%q is not a configured pool (have: %s)", pool, strings.Join(pools, ", "))}
}

// NormalizeDomain returns a domain name as lower-case A-labels (IDNA 2008, the UTS #46 lookup profile),
// without the trailing dot of a fully qualified name. It refuses names without a dot, labels longer than 63
// octets, names longer than 253, characters outside letters, digits and hyphens (RFC 1123 §2.1), hyphens at
// a label's ends and an all-numeric top-level label (which would be an IP address).
func NormalizeDomain(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("empty domain name")
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || strings.HasSuffix(s, ".") || strings.HasPrefix(s, ".") || strings.Contains(s, "..") {
		return "", fmt.Errorf("%q has an empty label", s)
	}
	a, err := idna.Lookup.ToASCII(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a valid domain name: %v", s, err)
	}
	a = strings.ToLower(a)
	if len(a) > 253 {
		return "", fmt.Errorf("%q is longer than 253 characters", s)
	}
	labels := strings.Split(a, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("%q needs at least two labels (e.g. example.com)", s)
	}
	for _, l := range labels {
		if l == "" {
			return "", fmt.Errorf("%q has an empty label", s)
		}
		if len(l) > 63 {
			return "", fmt.Errorf("%q has a label longer than 63 characters", s)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("%q contains %q, not allowed in a host name", s, c)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("%q has a label starting or ending with a hyphen", s)
		}
	}
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return "", fmt.Errorf("%q has an all-numeric top-level label", s)
	}
	return a, nil
}

// NormalizeHost returns a relay host as stored: an IP literal in canonical form (brackets removed, IPv4 in
// IPv6 unmapped), or a host name normalised like a domain.
func NormalizeHost(s string) (host string, ip netip.Addr, err error) {
	s = strings.TrimSpace(s)
	lit := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, perr := netip.ParseAddr(lit); perr == nil {
		if a.Zone() != "" {
			return "", netip.Addr{}, fmt.Errorf("%q: an address with a zone cannot identify a client", s)
		}
		a = a.Unmap()
		return a.String(), a, nil
	}
	d, err := NormalizeDomain(s)
	if err != nil {
		return "", netip.Addr{}, err
	}
	return d, netip.Addr{}, nil
}

// Shortest prefixes accepted as source IPs: anything wider is a mistake, not a customer's network.
const (
	minBits4 = 8
	minBits6 = 32
)

// ParsePrefix parses a source IP or CIDR. A single address becomes a /32 (IPv4) or /128 (IPv6); IPv4-mapped
// IPv6 becomes IPv4; host bits are cleared, so 10.1.2.3/24 gives 10.1.2.0/24.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty address")
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: an address with a zone cannot identify a client", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix must be /96 or longer", s)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	p = p.Masked()
	if p.Addr().Is4() && p.Bits() < minBits4 || p.Addr().Is6() && p.Bits() < minBits6 {
		return netip.Prefix{}, fmt.Errorf("%q is too wide (at most /%d for IPv4, /%d for IPv6)", s, minBits4, minBits6)
	}
	return p, nil
}

// Address ranges that never identify a client: "this network", multicast, reserved and broadcast
// (RFC 6890), IPv6 unspecified and multicast (RFC 4291).
var refusedRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("ff00::/8"),
}

// Private ranges: RFC 1918, shared address space (RFC 6598), loopback, link-local (RFC 3927, RFC 4291) and
// unique local IPv6 (RFC 4193). They are accepted only when the operator allows them.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// checkRange refuses prefixes that cannot identify a client, and private ones unless allowPrivate.
func checkRange(p netip.Prefix, allowPrivate bool) error {
	for _, r := range refusedRanges {
		if p.Overlaps(r) {
			return fmt.Errorf("%s overlaps %s, which cannot identify a client", p, r)
		}
	}
	if !allowPrivate {
		for _, r := range privateRanges {
			if p.Overlaps(r) {
				return fmt.Errorf("%s overlaps the private range %s, which this installation does not accept", p, r)
			}
		}
	}
	return nil
}

// CheckClientAddr returns why a client address cannot identify a customer, as a relay host or source IP
// registered here would be refused: reserved and multicast ranges always, private ones unless allowPrivate.
// It returns nil for an acceptable address. The access table applies it to the addresses of relay host names.
func CheckClientAddr(a netip.Addr, allowPrivate bool) error {
	a = a.Unmap()
	if !a.IsValid() {
		return fmt.Errorf("not an IP address")
	}
	return checkRange(netip.PrefixFrom(a, a.BitLen()), allowPrivate)
}
