package ippool

import (
	"maps"
	"net/netip"
	"slices"
	"time"
)

// PoolViews returns the pools as the API shows them, in configuration order.
func (p *Pools) PoolViews() []Pool {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Pool, 0, len(p.order))
	for _, name := range p.order {
		ps := p.pools[name]
		v := Pool{Name: name, IPs: len(ps.addrs), States: map[State]int{}, Addresses: []string{}}
		for _, a := range ps.addrs {
			ip := p.ips[a]
			v.States[ip.state]++
			v.Addresses = append(v.Addresses, a.String())
			if ok, _ := ip.usable("", now); ok {
				v.Usable++
			}
		}
		out = append(out, v)
	}
	return out
}

// IPViews returns the IPs of pool ("" for every pool) as the API shows them; ErrNotFound for an unknown
// pool.
func (p *Pools) IPViews(pool string) ([]IP, error) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if pool != "" && p.pools[pool] == nil {
		return nil, ErrNotFound
	}
	out := []IP{}
	for _, name := range p.order {
		if pool != "" && name != pool {
			continue
		}
		for _, a := range p.pools[name].addrs {
			out = append(out, p.viewLocked(p.ips[a], now))
		}
	}
	return out, nil
}

// IPView returns one IP as the API shows it.
func (p *Pools) IPView(addr netip.Addr) (IP, error) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	ip, err := p.lookupLocked(addr)
	if err != nil {
		return IP{}, err
	}
	return p.viewLocked(ip, now), nil
}

// viewLocked returns ip as the API shows it. p.mu must be held.
func (p *Pools) viewLocked(ip *ipState, now time.Time) IP {
	v := IP{
		Address: ip.addr.String(), Pool: ip.pool, HELO: ip.helo, Weight: ip.weight, Origin: ip.origin, AddedAt: ip.addedAt.UTC(),
		State: ip.state, Reason: ip.reason, StateSince: ip.since.UTC(), FCrDNS: ip.fcrdns,
		Listings: []Listing{}, CheckErrors: []CheckError{}, PausedDestinations: []DestinationPause{},
	}
	for _, z := range slices.Sorted(maps.Keys(ip.listings)) {
		v.Listings = append(v.Listings, ip.listings[z])
	}
	for _, z := range slices.Sorted(maps.Keys(ip.checkErrors)) {
		v.CheckErrors = append(v.CheckErrors, CheckError{Zone: z, Error: ip.checkErrors[z]})
	}
	if !ip.lastCheck.IsZero() {
		t := ip.lastCheck.UTC()
		v.LastCheck = &t
	}
	if now.Before(ip.holdUntil) {
		t := ip.holdUntil.UTC()
		v.HoldUntil = &t
	}
	if limit, sent, ok := ip.warmCap(now); ok {
		d, _ := ip.warmupDay(now)
		v.Warmup = &Warmup{Day: d, Days: len(ip.warmup), Cap: limit, SentToday: sent, Schedule: slices.Clone(ip.warmup)}
	}
	for _, d := range slices.Sorted(maps.Keys(ip.dest)) {
		if ds := ip.dest[d]; now.Before(ds.pausedUntil) {
			v.PausedDestinations = append(v.PausedDestinations, DestinationPause{Domain: d, Until: ds.pausedUntil.UTC(), Reason: ds.reason})
		}
	}
	h := hourOf(now)
	for _, b := range ip.counters {
		if b.hour > h-24 && b.hour <= h {
			v.Last24h.Sent += b.sent
			v.Last24h.Deferred += b.deferred
			v.Last24h.Bounced += b.bounced
			v.Last24h.Blocked += b.blocked
		}
	}
	return v
}
