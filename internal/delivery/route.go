package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"easymail/internal/resolver"
	"easymail/internal/smtperr"
)

// maxTargets bounds the addresses tried in one attempt, so that a domain with many unreachable hosts cannot
// hold a worker for long (the purpose of Postfix's smtp_mx_address_limit).
const maxTargets = 10

// target is one address of one MX host.
type target struct {
	host string
	ip   netip.Addr
	// perConn is the provider's messages-per-connection limit (0: none).
	perConn int
}

// mxHosts returns the exchangers of domain in preference order, or the outcome for all recipients when mail
// cannot go there. implicit is set when the domain has no MX records and stands for itself.
func (d *Deliverer) mxHosts(ctx context.Context, domain string) (mxs []resolver.MX, implicit bool, _ *smtperr.Error) {
	mxs, err := d.resolver.LookupMX(ctx, domain)
	switch {
	case err == nil && len(mxs) > 0:
	case err == nil || errors.Is(err, resolver.ErrNotFound):
		// RFC 5321 §5.1: without MX records the domain itself is the implicit MX, of preference 0.
		return []resolver.MX{{Host: domain}}, true, nil
	case ctx.Err() != nil:
		return nil, false, aborted(ctx.Err())
	default:
		return nil, false, dnsFailed(domain, err)
	}
	// RFC 7505 §3: a null MX is the domain's only MX record. When other records come with it, the domain is
	// misconfigured and the real exchangers are tried.
	if !slices.ContainsFunc(mxs, func(mx resolver.MX) bool { return mx.Host != "" }) {
		return nil, false, nullMX(domain)
	}
	// RFC 5321 §5.1: lowest preference first. The resolver sorts already (and shuffles equal preferences);
	// a stable sort keeps its order and guards against one that does not.
	mxs = slices.DeleteFunc(slices.Clone(mxs), func(mx resolver.MX) bool { return mx.Host == "" })
	slices.SortStableFunc(mxs, func(a, b resolver.MX) int { return cmp.Compare(a.Pref, b.Pref) })
	return mxs, false, nil
}

// hostAddrs returns the addresses of host that can be reached from the source address: IPv4 from IPv4, IPv6
// from IPv6.
func (d *Deliverer) hostAddrs(ctx context.Context, host string, v4 bool) ([]netip.Addr, error) {
	ips, err := d.resolver.LookupIP(ctx, host)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap().Is4() == v4 {
			out = append(out, a.Unmap())
		}
	}
	return out, nil
}

// routeFailure is the outcome when no address at all was found to try.
func routeFailure(domain string, implicit, v4 bool, dnsErr, notFound error) *smtperr.Error {
	switch {
	case dnsErr != nil:
		return dnsFailed(domain, dnsErr)
	case implicit && notFound != nil:
		return noSuchDomain(domain, notFound)
	default:
		family := "IPv6"
		if v4 {
			family = "IPv4"
		}
		return noHostReached(fmt.Errorf("no %s address for the MX hosts of %s", family, domain))
	}
}
