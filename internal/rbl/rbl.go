// Package rbl supervises the outbound IPs through DNS: DNSBL checks (RFC 5782) against the configured zones,
// and the forward-confirmed reverse DNS of each IP against its HELO name.
//
// A zone's answer is read as RFC 5782 §2.1 and §5 say and as the large lists actually answer: NXDOMAIN (or no
// A record) is "not listed"; an A record in 127.0.0.0/8 is "listed", with the record's value as the return
// code and the TXT record as the reason; except the zone's refusal codes (by default 127.255.255.0/24, which
// Spamhaus returns to public and open resolvers and to over-quota users), which are check errors, never
// listings. SERVFAIL, timeouts and answers outside 127.0.0.0/8 (a resolver rewriting NXDOMAIN) are check
// errors too: a failed check leaves the IP's listing as it was.
//
// Monitor checks every IP of the pools at an interval and on demand, and hands the results to the pools.
package rbl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/config"
	"easymail/internal/ippool"
	"easymail/internal/resolver"
)

// Check results, as counted in easymail_rbl_checks_total.
const (
	ResultListed  = "listed"
	ResultClean   = "clean"
	ResultRefused = "refused"
	ResultError   = "error"
)

// maxReason bounds a listing's TXT reason.
const maxReason = 300

// loopback is where DNSBL answers live (RFC 5782 §2.1).
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// Zone is one DNSBL zone and the answers that mean it refused the query.
type Zone struct {
	Name    string
	Refused []netip.Prefix
}

// ParseZones turns the configuration's zones into Zones; a zone without refusal codes of its own gets
// config.DefaultRBLRefused.
func ParseZones(cfg []config.RBLZone) ([]Zone, error) {
	var out []Zone
	for i, c := range cfg {
		z := Zone{Name: strings.ToLower(strings.TrimSuffix(strings.TrimSpace(c.Zone), "."))}
		if z.Name == "" {
			return nil, fmt.Errorf("rbl.zones[%d].zone: empty", i)
		}
		for k, r := range c.RefusedAnswers() {
			p, err := netip.ParsePrefix(r)
			if err != nil {
				a, aerr := netip.ParseAddr(r)
				if aerr != nil {
					return nil, fmt.Errorf("rbl.zones[%d].refused[%d]: %q is not an IP address or CIDR prefix", i, k, r)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			z.Refused = append(z.Refused, p.Masked())
		}
		out = append(out, z)
	}
	return out, nil
}

// QueryName returns the name to look up for ip in zone: the IPv4 octets reversed (RFC 5782 §2.1), or the
// 32 nibbles of an IPv6 address reversed (RFC 5782 §2.4), then the zone.
func QueryName(ip netip.Addr, zone string) string {
	ip = ip.Unmap()
	var labels []string
	if ip.Is4() {
		b := ip.As4()
		for i := 3; i >= 0; i-- {
			labels = append(labels, fmt.Sprint(b[i]))
		}
	} else {
		b := ip.As16()
		const hex = "0123456789abcdef"
		for i := 15; i >= 0; i-- {
			labels = append(labels, string(hex[b[i]&0xf]), string(hex[b[i]>>4]))
		}
	}
	return strings.Join(labels, ".") + "." + zone
}

// Checker asks the DNS about IPs.
type Checker struct {
	res    resolver.Resolver
	zones  []Zone
	checks *prometheus.CounterVec
}

// NewChecker returns a Checker of zones through res; its metric easymail_rbl_checks_total{zone,result} goes
// to reg (nil: a private registry).
func NewChecker(res resolver.Resolver, zones []Zone, reg prometheus.Registerer) *Checker {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	c := &Checker{res: res, zones: zones, checks: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "easymail_rbl_checks_total",
		Help: "DNSBL checks of the outbound IPs, by zone and result (listed, clean, refused, error).",
	}, []string{"zone", "result"})}
	reg.MustRegister(c.checks)
	return c
}

// Zones returns the zones checked.
func (c *Checker) Zones() []Zone { return slices.Clone(c.zones) }

// Check asks every zone about ip, the zones in parallel.
func (c *Checker) Check(ctx context.Context, ip netip.Addr) []ippool.ZoneResult {
	out := make([]ippool.ZoneResult, len(c.zones))
	var wg sync.WaitGroup
	for i, z := range c.zones {
		wg.Go(func() { out[i] = c.CheckZone(ctx, ip, z) })
	}
	wg.Wait()
	return out
}

// CheckZone asks zone z about ip and reads the answer.
func (c *Checker) CheckZone(ctx context.Context, ip netip.Addr, z Zone) ippool.ZoneResult {
	r, result := c.checkZone(ctx, ip, z)
	c.checks.WithLabelValues(z.Name, result).Inc()
	return r
}

func (c *Checker) checkZone(ctx context.Context, ip netip.Addr, z Zone) (ippool.ZoneResult, string) {
	r := ippool.ZoneResult{Zone: z.Name}
	name := QueryName(ip, z.Name)
	answers, err := c.res.LookupIP(ctx, name)
	switch {
	case errors.Is(err, resolver.ErrNotFound):
		return r, ResultClean
	case err != nil:
		r.Err = "no answer: " + err.Error()
		return r, ResultError
	}
	var listed, refused, odd []string
	for _, a := range answers {
		v4 := a.To4()
		if v4 == nil {
			continue // AAAA records say nothing in a DNSBL.
		}
		addr := netip.AddrFrom4([4]byte(v4))
		switch {
		case !loopback.Contains(addr):
			odd = append(odd, addr.String())
		case slices.ContainsFunc(z.Refused, func(p netip.Prefix) bool { return p.Contains(addr) }):
			refused = append(refused, addr.String())
		default:
			listed = append(listed, addr.String())
		}
	}
	switch {
	case len(listed) > 0:
		r.Listed, r.Code = true, strings.Join(listed, ",")
		if txts, err := c.res.LookupTXT(ctx, name); err == nil {
			reason := strings.Join(txts, "; ")
			if len(reason) > maxReason {
				reason = reason[:maxReason] + "..."
			}
			r.Reason = strings.ToValidUTF8(reason, "?")
		}
		return r, ResultListed
	case len(refused) > 0:
		r.Err = "the zone refused the query (answer " + strings.Join(refused, ",") +
			"): it does not serve this resolver, or its quota is exceeded; the IP's status there is unknown"
		return r, ResultRefused
	case len(odd) > 0:
		r.Err = "unexpected answer " + strings.Join(odd, ",") +
			" outside 127.0.0.0/8 (does the resolver rewrite NXDOMAIN?)"
		return r, ResultError
	}
	return r, ResultClean
}

// FCrDNS checks the forward-confirmed reverse DNS of ip against helo: the PTR names of ip must include helo,
// and helo's addresses must include ip.
func (c *Checker) FCrDNS(ctx context.Context, ip netip.Addr, helo string) ippool.FCrDNS {
	helo = strings.ToLower(strings.TrimSuffix(helo, "."))
	names, err := c.res.LookupPTR(ctx, net.IP(ip.Unmap().AsSlice()))
	switch {
	case errors.Is(err, resolver.ErrNotFound):
		return ippool.FCrDNS{Status: ippool.FCrDNSMismatch, Detail: fmt.Sprintf("%s has no PTR record; it should name %s", ip, helo)}
	case err != nil:
		return ippool.FCrDNS{Status: ippool.FCrDNSError, Detail: "PTR lookup failed: " + err.Error()}
	}
	res := ippool.FCrDNS{PTR: names}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, helo) }) {
		res.Status = ippool.FCrDNSMismatch
		res.Detail = fmt.Sprintf("the PTR of %s is %s, not the HELO name %s", ip, strings.Join(names, ", "), helo)
		return res
	}
	addrs, err := c.res.LookupIP(ctx, helo)
	switch {
	case errors.Is(err, resolver.ErrNotFound):
		res.Status = ippool.FCrDNSMismatch
		res.Detail = fmt.Sprintf("the HELO name %s has no A or AAAA record; it should have %s", helo, ip)
		return res
	case err != nil:
		res.Status = ippool.FCrDNSError
		res.Detail = "address lookup of " + helo + " failed: " + err.Error()
		return res
	}
	var got []string
	for _, a := range addrs {
		if na, ok := netip.AddrFromSlice(a); ok && na.Unmap() == ip.Unmap() {
			res.Status = ippool.FCrDNSOK
			return res
		}
		got = append(got, a.String())
	}
	res.Status = ippool.FCrDNSMismatch
	res.Detail = fmt.Sprintf("the HELO name %s resolves to %s, not %s", helo, strings.Join(got, ", "), ip)
	return res
}
