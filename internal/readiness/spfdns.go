package readiness

import (
	"context"
	"errors"
	"net"
	"strings"

	"easymail/internal/resolver"
)

// spfDNS lets blitiri.com.ar/go/spf resolve through Easymail's resolver (the configured DNS servers), with
// the error and name conventions of *net.Resolver that the library relies on: *net.DNSError with IsNotFound
// for a name or record that does not exist, IsTemporary for a failure, and names with a trailing dot.
type spfDNS struct{ r resolver.Resolver }

func dnsError(name string, err error) error {
	if errors.Is(err, resolver.ErrNotFound) {
		return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true}
}

func (d spfDNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txts, err := d.r.LookupTXT(ctx, name)
	if err != nil {
		return nil, dnsError(name, err)
	}
	return txts, nil
}

func (d spfDNS) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mxs, err := d.r.LookupMX(ctx, name)
	if err != nil {
		return nil, dnsError(name, err)
	}
	var out []*net.MX
	for _, mx := range mxs {
		if mx.Host == "" {
			continue // a null MX (RFC 7505) names no host
		}
		out = append(out, &net.MX{Host: mx.Host + ".", Pref: mx.Pref})
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return out, nil
}

func (d spfDNS) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, err := d.r.LookupIP(ctx, strings.TrimSuffix(host, "."))
	if err != nil {
		return nil, dnsError(host, err)
	}
	out := make([]net.IPAddr, len(ips))
	for i, ip := range ips {
		out[i] = net.IPAddr{IP: ip}
	}
	return out, nil
}

func (d spfDNS) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip := net.ParseIP(addr)
	if ip == nil {
		return nil, &net.DNSError{Err: "not an IP address", Name: addr, IsNotFound: true}
	}
	names, err := d.r.LookupPTR(ctx, ip)
	if err != nil {
		return nil, dnsError(addr, err)
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + "."
	}
	return out, nil
}
