package ippool

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// day is the length of a warm-up day.
const day = 24 * time.Hour

// ipState is everything known of one outbound IP. It is guarded by Pools.mu.
type ipState struct {
	addr    netip.Addr
	pool    string
	helo    string
	weight  int
	warmup  []int
	origin  string
	addedAt time.Time

	// operator is "" or the state an operator set (paused, draining), opReason its reason.
	operator State
	opReason string

	listings    map[string]Listing // by zone
	checkErrors map[string]string  // zone → error of its last check
	holdUntil   time.Time
	lastCheck   time.Time
	fcrdns      FCrDNS

	// warmDay and warmSent count the messages of warm-up day warmDay.
	warmDay  int
	warmSent int

	// dest holds the block replies and pauses per destination domain.
	dest map[string]*destState

	counters [24]bucket

	// state, reason and since are the effective state as last computed by refreshLocked.
	state  State
	reason string
	since  time.Time

	// cur is the smooth weighted round robin's current weight.
	cur int
	// dirty is set when the stored record is behind.
	dirty bool
}

// destState is the supervision of one IP towards one destination domain.
type destState struct {
	signals     []time.Time // block replies within the window
	pausedUntil time.Time
	reason      string
}

// bucket counts one hour's outcomes.
type bucket struct {
	hour                             int64
	sent, deferred, bounced, blocked int64
	dirty                            bool
}

func fromRecord(addr netip.Addr, r Record) *ipState {
	ip := &ipState{
		addr: addr, pool: r.Pool, helo: r.HELO, weight: max(r.Weight, 1), warmup: slices.Clone(r.Warmup), origin: r.Origin,
		addedAt: r.AddedAt, operator: r.Operator, opReason: r.OperatorReason,
		listings: map[string]Listing{}, checkErrors: map[string]string{}, holdUntil: r.HoldUntil,
		lastCheck: r.LastCheck, fcrdns: FCrDNS{Status: r.FCrDNS, Detail: r.FCrDNSDetail},
		warmDay: r.WarmDay, warmSent: r.WarmSent, dest: map[string]*destState{},
		state: r.State, reason: r.Reason, since: r.StateSince,
	}
	if ip.fcrdns.Status == "" {
		ip.fcrdns.Status = FCrDNSUnchecked
	}
	for _, l := range r.Listings {
		ip.listings[l.Zone] = l
	}
	for _, d := range r.Pauses {
		ip.dest[d.Domain] = &destState{pausedUntil: d.Until, reason: d.Reason}
	}
	if ip.since.IsZero() {
		ip.since = r.AddedAt
	}
	return ip
}

// record is the stored form of ip.
func (ip *ipState) record() Record {
	r := Record{
		Address: ip.addr.String(), Pool: ip.pool, HELO: ip.helo, Weight: ip.weight, Warmup: slices.Clone(ip.warmup),
		Origin: ip.origin, AddedAt: ip.addedAt, Operator: ip.operator, OperatorReason: ip.opReason,
		State: ip.state, Reason: ip.reason, StateSince: ip.since, HoldUntil: ip.holdUntil, LastCheck: ip.lastCheck,
		FCrDNS: ip.fcrdns.Status, FCrDNSDetail: ip.fcrdns.Detail, WarmDay: ip.warmDay, WarmSent: ip.warmSent,
	}
	for _, z := range slices.Sorted(maps.Keys(ip.listings)) {
		r.Listings = append(r.Listings, ip.listings[z])
	}
	for _, d := range slices.Sorted(maps.Keys(ip.dest)) {
		if ds := ip.dest[d]; !ds.pausedUntil.IsZero() {
			r.Pauses = append(r.Pauses, DestinationPause{Domain: d, Until: ds.pausedUntil, Reason: ds.reason})
		}
	}
	return r
}

// warmupDay returns the warm-up day of now (0 for the day the IP was added) and whether the IP is still in
// its schedule.
func (ip *ipState) warmupDay(now time.Time) (int, bool) {
	if len(ip.warmup) == 0 {
		return 0, false
	}
	d := int(now.Sub(ip.addedAt) / day)
	if d < 0 {
		d = 0
	}
	return d, d < len(ip.warmup)
}

// warmCap returns today's cap and the messages counted against it; ok is false when the IP has no cap today.
func (ip *ipState) warmCap(now time.Time) (limit, sent int, ok bool) {
	d, warming := ip.warmupDay(now)
	if !warming {
		return 0, 0, false
	}
	if ip.warmDay == d {
		sent = ip.warmSent
	}
	return ip.warmup[d], sent, true
}

// effective computes the state and its reason from the facts, by precedence.
func (ip *ipState) effective(now time.Time) (State, string) {
	switch {
	case ip.operator == StateDraining:
		return StateDraining, orDefault(ip.opReason, "drained by an operator")
	case ip.operator == StatePaused:
		return StatePaused, orDefault(ip.opReason, "paused by an operator")
	case len(ip.listings) > 0:
		return StateListed, "listed in " + ip.listingText()
	case now.Before(ip.holdUntil):
		return StateListed, "delisted; back in rotation at " + ip.holdUntil.UTC().Format(time.RFC3339) + " (rbl.hold)"
	}
	if d, ok := ip.warmupDay(now); ok {
		return StateWarming, fmt.Sprintf("warm-up day %d of %d: at most %d messages today", d+1, len(ip.warmup), ip.warmup[d])
	}
	return StateActive, ""
}

// listingText describes the listings: "zen.example (127.0.0.2: reason), other.example (127.0.0.4)".
func (ip *ipState) listingText() string {
	var parts []string
	for _, z := range slices.Sorted(maps.Keys(ip.listings)) {
		l := ip.listings[z]
		s := z + " (" + l.Code
		if l.Reason != "" {
			s += ": " + l.Reason
		}
		parts = append(parts, s+")")
	}
	return strings.Join(parts, ", ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// refreshLocked recomputes ip's effective state at now and records a change: the state, the event (when
// announce is set) and the gauges. It marks ip dirty when its stored record is behind. p.mu must be held.
func (p *Pools) refreshLocked(ip *ipState, now time.Time, announce bool) *Event {
	state, reason := ip.effective(now)
	if state == ip.state && reason == ip.reason {
		return nil
	}
	from := ip.state
	ip.reason = reason
	ip.dirty = true
	if state == from {
		return nil
	}
	ip.state, ip.since = state, now
	p.m.setState(ip)
	if !announce || from == "" {
		return nil
	}
	return &Event{Time: now, IP: ip.addr, Pool: ip.pool, Kind: EventState, From: from, To: state, Reason: reason}
}

// usable reports whether ip may carry a message to domain at now, and if not, why.
func (ip *ipState) usable(domain string, now time.Time) (bool, string) {
	switch ip.state {
	case StateActive, StateWarming:
	default:
		return false, string(ip.state)
	}
	if ds := ip.dest[domain]; ds != nil && now.Before(ds.pausedUntil) {
		return false, "paused for this destination"
	}
	if limit, sent, ok := ip.warmCap(now); ok && sent >= limit {
		return false, "at the warm-up cap"
	}
	return true, ""
}
