package ippool

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"easymail/internal/delivery"
	"easymail/internal/queue"
)

// Pick chooses the outbound IP for one delivery of a message to req.Domain: among the usable IPs of
// req.Pool ("" is the default pool) by smooth weighted round robin, else among those of req.FallbackPool.
// Operator mail (req.Pool "") may leave from any pool, the default pool first. A warming IP's pick counts
// against its daily cap, durably, before Pick returns. The error says why no IP is usable; the queue
// defers the message and retries.
func (p *Pools) Pick(ctx context.Context, req queue.PickRequest) (delivery.Source, error) {
	now := p.clock.Now()
	p.mu.Lock()
	ip, err := p.pickLocked(req, now)
	if err != nil {
		p.mu.Unlock()
		return delivery.Source{}, err
	}
	src := delivery.Source{IP: ip.addr, HELO: ip.helo}
	d, warming := ip.warmupDay(now)
	if warming {
		if ip.warmDay != d {
			ip.warmDay, ip.warmSent = d, 0
		}
		ip.warmSent++
	}
	p.mu.Unlock()
	if warming && p.o.Store != nil {
		if err := p.o.Store.CountWarm(ctx, src.IP.String(), d); err != nil {
			p.mu.Lock()
			if ip.warmDay == d && ip.warmSent > 0 {
				ip.warmSent--
			}
			p.mu.Unlock()
			return delivery.Source{}, fmt.Errorf("cannot record the warm-up count of outbound IP %s: %w", src.IP, err)
		}
	}
	return src, nil
}

// pickLocked chooses the IP. p.mu must be held.
func (p *Pools) pickLocked(req queue.PickRequest, now time.Time) (*ipState, error) {
	primary := req.Pool
	if primary == "" {
		primary = p.order[0]
	}
	if p.pools[primary] == nil {
		return nil, fmt.Errorf("no outbound IP: pool %q is not configured", primary)
	}
	tried := []string{primary}
	if fb := req.FallbackPool; fb != "" && fb != primary && p.pools[fb] != nil {
		tried = append(tried, fb)
	}
	if req.Pool == "" {
		for _, n := range p.order {
			if n != primary {
				tried = append(tried, n)
			}
		}
	}
	var why []string
	for i, name := range tried {
		if ip := p.chooseLocked(p.pools[name], req.Domain, now); ip != nil {
			return ip, nil
		}
		label := fmt.Sprintf("pool %q", name)
		if i == 1 && req.FallbackPool != "" {
			label = fmt.Sprintf("fallback pool %q", name)
		}
		why = append(why, label+" "+p.unusableSummaryLocked(p.pools[name], req.Domain, now))
	}
	return nil, fmt.Errorf("no outbound IP usable now: %s; will retry", strings.Join(why, ", "))
}

// chooseLocked runs smooth weighted round robin (each candidate gains its weight, the highest is chosen and
// loses the candidates' total) over the usable IPs of ps, or returns nil when none is usable.
func (p *Pools) chooseLocked(ps *poolState, domain string, now time.Time) *ipState {
	var best *ipState
	total := 0
	for _, a := range ps.addrs {
		ip := p.ips[a]
		if ok, _ := ip.usable(domain, now); !ok {
			continue
		}
		ip.cur += ip.weight
		total += ip.weight
		if best == nil || ip.cur > best.cur {
			best = ip
		}
	}
	if best != nil {
		best.cur -= total
	}
	return best
}

// unusableSummaryLocked says why no IP of ps is usable: "(2 listed, 1 paused for this destination)".
func (p *Pools) unusableSummaryLocked(ps *poolState, domain string, now time.Time) string {
	if len(ps.addrs) == 0 {
		return "(it has no IP)"
	}
	counts := map[string]int{}
	for _, a := range ps.addrs {
		_, why := p.ips[a].usable(domain, now)
		counts[why]++
	}
	var parts []string
	for why, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, why))
	}
	sort.Strings(parts)
	return "(" + strings.Join(parts, ", ") + ")"
}

// lookupLocked returns the IP at addr. p.mu must be held.
func (p *Pools) lookupLocked(addr netip.Addr) (*ipState, error) {
	ip := p.ips[addr.Unmap()]
	if ip == nil {
		return nil, fmt.Errorf("outbound IP %s: %w", addr, ErrNotFound)
	}
	return ip, nil
}

var _ queue.SourcePicker = (*Pools)(nil)
