package ippool

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"easymail/internal/fielderr"
)

// maxReason bounds an operator's reason.
const maxReason = 300

// ParseAddr parses an outbound IP address as the API names it; errors are *fielderr.Error for field.
func ParseAddr(s, field string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, &fielderr.Error{Field: field, Msg: fmt.Sprintf("%q is not an IP address", s)}
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}, &fielderr.Error{Field: field, Msg: fmt.Sprintf("%s cannot be a source address", a)}
	}
	return a, nil
}

// Add adds an IP to a configured pool. The IP starts warming with its schedule: in.Warmup, or the default
// schedule (ippool.warmup) when in.Warmup is nil; an empty schedule makes it active at once.
func (p *Pools) Add(ctx context.Context, pool string, in IPRequest) (IP, error) {
	if p.pools[pool] == nil {
		return IP{}, fmt.Errorf("pool %q: %w (pools are configured in the configuration file)", pool, ErrNotFound)
	}
	addr, err := ParseAddr(in.Address, "address")
	if err != nil {
		return IP{}, err
	}
	helo := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(in.HELO)), ".")
	if helo == "" {
		return IP{}, &fielderr.Error{Field: "helo", Msg: "is required: the name the IP gives in EHLO, matching its PTR"}
	}
	if !isHostName(helo) {
		return IP{}, &fielderr.Error{Field: "helo", Msg: fmt.Sprintf("%q is not a host name", in.HELO)}
	}
	weight := in.Weight
	if weight == 0 {
		weight = 1
	}
	if weight < 1 || weight > 1000 {
		return IP{}, &fielderr.Error{Field: "weight", Msg: "must be 1-1000"}
	}
	warmup := in.Warmup
	if warmup == nil {
		warmup = p.o.IPPool.Warmup
	}
	for i, n := range warmup {
		if n < 1 {
			return IP{}, &fielderr.Error{Field: "warmup", Msg: fmt.Sprintf("day %d: must be at least 1 message a day", i)}
		}
	}
	if len(warmup) > 366 {
		return IP{}, &fielderr.Error{Field: "warmup", Msg: "is longer than 366 days"}
	}
	now := p.clock.Now()
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.mu.Lock()
	if old := p.ips[addr]; old != nil {
		p.mu.Unlock()
		return IP{}, &fielderr.Error{Field: "address", Msg: fmt.Sprintf("%s is already in pool %q", addr, old.pool), Conflict: true}
	}
	ip := fromRecord(addr, Record{Address: addr.String(), Pool: pool, HELO: helo, Weight: weight, Warmup: slices.Clone(warmup),
		Origin: OriginAPI, AddedAt: now, StateSince: now})
	p.refreshLocked(ip, now, false)
	ip.dirty = false
	rec := ip.record()
	p.mu.Unlock()
	if p.o.Store != nil {
		// A tombstone of a removed configured IP, or stale rows, give way to the new IP.
		if err := p.o.Store.Delete(ctx, rec.Address); err != nil {
			return IP{}, err
		}
		if err := p.o.Store.Save(ctx, rec); err != nil {
			return IP{}, err
		}
	}
	p.mu.Lock()
	p.addLocked(ip)
	p.m.setState(ip)
	view := p.viewLocked(ip, now)
	p.mu.Unlock()
	p.publish([]*Event{{Time: now, IP: addr, Pool: pool, Kind: EventState, From: "added", To: ip.state, Reason: ip.reason, ByOperator: true}})
	return view, nil
}

// Remove takes an IP out of its pool for good. A configured IP stays removed across restarts until it is
// added back through the API or deleted from the configuration.
func (p *Pools) Remove(ctx context.Context, pool string, addr netip.Addr) error {
	now := p.clock.Now()
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.mu.Lock()
	ip, err := p.lookupLocked(addr)
	if err == nil && ip.pool != pool {
		err = fmt.Errorf("outbound IP %s in pool %q: %w (it is in pool %q)", addr, pool, ErrNotFound, ip.pool)
	}
	if err != nil {
		p.mu.Unlock()
		return err
	}
	rec := ip.record()
	p.mu.Unlock()
	if p.o.Store != nil {
		if err := p.o.Store.Delete(ctx, rec.Address); err != nil {
			return err
		}
		if rec.Origin == OriginConfig {
			rec.Removed = true
			if err := p.o.Store.Save(ctx, rec); err != nil {
				return err
			}
		}
	}
	p.mu.Lock()
	delete(p.ips, ip.addr)
	ps := p.pools[ip.pool]
	ps.addrs = slices.DeleteFunc(ps.addrs, func(a netip.Addr) bool { return a == ip.addr })
	p.m.forget(ip)
	p.mu.Unlock()
	p.publish([]*Event{{Time: now, IP: ip.addr, Pool: ip.pool, Kind: EventState, From: ip.state, To: "removed", ByOperator: true}})
	return nil
}

// Drain stops giving new messages to an IP until Resume; deliveries in progress finish.
func (p *Pools) Drain(ctx context.Context, addr netip.Addr, reason string) (IP, error) {
	return p.operatorSet(ctx, addr, StateDraining, reason)
}

// Pause takes an IP out of rotation until Resume.
func (p *Pools) Pause(ctx context.Context, addr netip.Addr, reason string) (IP, error) {
	return p.operatorSet(ctx, addr, StatePaused, reason)
}

// Resume ends an operator's pause or drain and the IP's destination pauses and block counts. DNSBL listings
// stay until a check finds them gone; the hold after a delisting ends.
func (p *Pools) Resume(ctx context.Context, addr netip.Addr) (IP, error) {
	return p.operatorSet(ctx, addr, "", "")
}

func (p *Pools) operatorSet(ctx context.Context, addr netip.Addr, state State, reason string) (IP, error) {
	reason = strings.TrimSpace(reason)
	if len(reason) > maxReason {
		return IP{}, &fielderr.Error{Field: "reason", Msg: fmt.Sprintf("is longer than %d bytes", maxReason)}
	}
	if strings.ContainsFunc(reason, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return IP{}, &fielderr.Error{Field: "reason", Msg: "must not contain control characters"}
	}
	now := p.clock.Now()
	p.mu.Lock()
	ip, err := p.lookupLocked(addr)
	if err != nil {
		p.mu.Unlock()
		return IP{}, err
	}
	ip.operator, ip.opReason = state, reason
	if state != "" && reason == "" {
		ip.opReason = string(state) + " by an operator"
	}
	ip.dirty = true
	if state == "" {
		ip.holdUntil = time.Time{}
		ip.dest = map[string]*destState{}
		p.m.destPauses.WithLabelValues(ip.addr.String()).Set(0)
	}
	e := p.refreshLocked(ip, now, true)
	if e != nil {
		e.ByOperator = true
	}
	view := p.viewLocked(ip, now)
	p.mu.Unlock()
	p.publish([]*Event{e})
	if err := p.saveDirty(ctx); err != nil {
		return IP{}, err
	}
	return view, nil
}

// ZoneResult is the answer of one DNSBL zone about one IP.
type ZoneResult struct {
	Zone string
	// Listed is set when the zone lists the IP, with its answer (Code) and TXT reason.
	Listed bool
	Code   string
	Reason string
	// Err is set when the check failed (no answer, or a refusal code): the listing there is unchanged.
	Err string
}

// CheckReport is the outcome of one supervision check of an IP: every configured zone's answer and the
// FCrDNS check. Listings in zones the report does not name (no longer configured) are dropped.
type CheckReport struct {
	At     time.Time
	Zones  []ZoneResult
	FCrDNS FCrDNS
}

// ApplyCheck records a check of addr: a new listing takes the IP out of rotation at once; the end of the
// last listing starts the hold, after which the IP returns. A failed zone changes nothing.
func (p *Pools) ApplyCheck(ctx context.Context, addr netip.Addr, rep CheckReport) error {
	now := p.clock.Now()
	p.mu.Lock()
	ip, err := p.lookupLocked(addr)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	before := slices.Sorted(maps.Keys(ip.listings))
	wasListed := len(ip.listings) > 0
	seen := map[string]bool{}
	ip.checkErrors = map[string]string{}
	for _, z := range rep.Zones {
		seen[z.Zone] = true
		switch {
		case z.Err != "":
			ip.checkErrors[z.Zone] = z.Err
		case z.Listed:
			l, had := ip.listings[z.Zone]
			if !had {
				l = Listing{Zone: z.Zone, Since: rep.At}
			}
			l.Code, l.Reason = z.Code, z.Reason
			ip.listings[z.Zone] = l
			p.m.listed.WithLabelValues(ip.addr.String(), z.Zone).Set(1)
		default:
			if _, had := ip.listings[z.Zone]; had {
				delete(ip.listings, z.Zone)
				p.m.listed.WithLabelValues(ip.addr.String(), z.Zone).Set(0)
			}
		}
	}
	for z := range ip.listings {
		if !seen[z] {
			delete(ip.listings, z)
			p.m.listed.DeleteLabelValues(ip.addr.String(), z)
		}
	}
	switch {
	case len(ip.listings) > 0:
		ip.holdUntil = time.Time{}
	case wasListed:
		ip.holdUntil = now.Add(p.o.Hold)
	}
	ip.lastCheck = rep.At
	ip.fcrdns = rep.FCrDNS
	ip.dirty = true
	after := slices.Sorted(maps.Keys(ip.listings))
	e := p.refreshLocked(ip, now, true)
	if e == nil && !slices.Equal(before, after) {
		reason := "no longer listed in " + strings.Join(diff(before, after), ", ")
		if added := diff(after, before); len(added) > 0 {
			reason = "listed in " + ip.listingText()
		}
		e = &Event{Time: now, IP: ip.addr, Pool: ip.pool, Kind: EventListing, To: ip.state, Reason: reason}
	}
	p.mu.Unlock()
	p.publish([]*Event{e})
	return p.saveDirty(ctx)
}

// diff returns the elements of a not in b.
func diff(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// saveDirty writes the records of the IPs whose stored state is behind.
func (p *Pools) saveDirty(ctx context.Context) error {
	if p.o.Store == nil {
		p.mu.Lock()
		for _, ip := range p.ips {
			ip.dirty = false
		}
		p.mu.Unlock()
		return nil
	}
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	var recs []Record
	var dirty []*ipState
	p.mu.Lock()
	for _, ip := range p.ips {
		if ip.dirty {
			ip.dirty = false
			recs = append(recs, ip.record())
			dirty = append(dirty, ip)
		}
	}
	p.mu.Unlock()
	for i, r := range recs {
		if err := p.o.Store.Save(ctx, r); err != nil {
			p.mu.Lock()
			for _, ip := range dirty[i:] {
				ip.dirty = true
			}
			p.mu.Unlock()
			p.log.Error("ippool: saving the state of an outbound IP failed; will retry", "ip", r.Address, "err", err)
			return err
		}
	}
	return nil
}

// isHostName reports whether s is a host name: two or more dot-separated labels of letters, digits and
// hyphens (RFC 1123 §2.1), at most 253 characters.
func isHostName(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
