// Package ippool manages the operator's outbound IPs: named pools ("groups") of IPs, each IP with its HELO
// name, weight and supervised state, and the choice of the IP each delivery leaves from.
//
// Each customer is served by a pool and optionally a fallback pool. Pick chooses among the usable IPs of the
// customer's pool by smooth weighted round robin, and among those of the fallback pool when none is usable;
// a message never leaves from an IP outside the customer's pools. An IP is usable when its state is active,
// or warming and under its warm-up schedule's daily cap, and it is not paused for the destination domain.
//
// The state of an IP follows from facts, by precedence: an operator's drain (draining) or pause (paused),
// DNSBL listings reported by ApplyCheck, or a delisting less than the hold time ago (listed), a warm-up
// schedule still running (warming), else active. Receivers' replies reported by Observe that say the IP is
// blocked pause it for that destination domain only, past a threshold within a window.
//
// Pools is a state machine driven by calls and a Clock: it does no network I/O. State changes are written to
// a Store (the database) and announced as Events: logged, counted in Prometheus gauges, and mailed to the
// operator when a Send hook and an address are given. Run drives the time-based transitions (the end of a
// hold, of a destination pause, of a warm-up), flushes the hourly counters and sends the notices.
package ippool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/config"
)

// Clock gives the current time; tests use a fake one.
type Clock interface {
	Now() time.Time
}

// systemClock is the real clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// ErrNotFound is returned for an IP or a pool that does not exist.
var ErrNotFound = errors.New("not found")

// Origins of an IP.
const (
	OriginConfig = "config"
	OriginAPI    = "api"
)

// Options configure Pools.
type Options struct {
	// Pools are the configured pools (validated); the first is the default pool.
	Pools []config.Pool
	// IPPool holds the block patterns, threshold, window and pause time, and the default warm-up schedule.
	IPPool config.IPPool
	// Hold is how long a delisted IP stays out of rotation (rbl.hold).
	Hold time.Duration
	// Store persists the IPs' state; nil keeps everything in memory.
	Store Store
	// Clock is the time source; nil means the system clock.
	Clock Clock
	// Logger receives the events; nil discards them.
	Logger *slog.Logger
	// Registerer receives the metrics; nil means a private registry.
	Registerer prometheus.Registerer
	// OperatorEmail is where notices are mailed through Send; "" or a nil Send sends none.
	OperatorEmail string
	Send          func(ctx context.Context, to, subject, body string) error
}

// Pools is the set of pools and their IPs. It is safe for concurrent use.
type Pools struct {
	o        Options
	clock    Clock
	log      *slog.Logger
	m        *metrics
	patterns []*regexp.Regexp
	events   chan Event
	saveMu   sync.Mutex // orders the writes of IP snapshots to the store

	mu    sync.Mutex
	order []string // pool names in configuration order
	pools map[string]*poolState
	ips   map[netip.Addr]*ipState
}

type poolState struct {
	name  string
	addrs []netip.Addr // in the order added
}

// New builds the pools from the configuration and the store: an IP of the configuration unknown to the store
// is added (active, or warming when it has a schedule); one known takes its pool, HELO, weight and schedule
// from the configuration and keeps its state; one removed through the API stays removed; one the
// configuration no longer has is dropped. IPs added through the API are kept while their pool exists.
func New(ctx context.Context, o Options) (*Pools, error) {
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if len(o.Pools) == 0 {
		return nil, errors.New("ippool: no pool configured")
	}
	p := &Pools{o: o, clock: o.Clock, log: o.Logger, m: newMetrics(o.Registerer), events: make(chan Event, 1024),
		pools: map[string]*poolState{}, ips: map[netip.Addr]*ipState{}}
	for i, s := range o.IPPool.BlockPatterns {
		re, err := regexp.Compile("(?i)" + s)
		if err != nil {
			return nil, fmt.Errorf("ippool.block_patterns[%d]: %w", i, err)
		}
		p.patterns = append(p.patterns, re)
	}
	for _, c := range o.Pools {
		p.order = append(p.order, c.Name)
		p.pools[c.Name] = &poolState{name: c.Name}
	}
	if err := p.load(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// load merges the configuration with the stored records.
func (p *Pools) load(ctx context.Context) error {
	now := p.clock.Now()
	stored := map[netip.Addr]Record{}
	var counters []Counter
	if p.o.Store != nil {
		recs, err := p.o.Store.Load(ctx)
		if err != nil {
			return fmt.Errorf("ippool: loading the outbound IPs: %w", err)
		}
		for _, r := range recs {
			a, err := netip.ParseAddr(r.Address)
			if err != nil {
				return fmt.Errorf("ippool: stored outbound IP %q: %w", r.Address, err)
			}
			stored[a] = r
		}
		if counters, err = p.o.Store.LoadCounters(ctx, hourOf(now)-23); err != nil {
			return fmt.Errorf("ippool: loading the IP counters: %w", err)
		}
	}
	var save []Record
	var drop []string
	inConfig := map[netip.Addr]bool{}
	for _, c := range p.o.Pools {
		for _, a := range c.IPs {
			addr, err := netip.ParseAddr(a.Address)
			if err != nil {
				return fmt.Errorf("pool %s: %w", c.Name, err)
			}
			addr = addr.Unmap()
			inConfig[addr] = true
			weight := a.Weight
			if weight == 0 {
				weight = 1
			}
			r, ok := stored[addr]
			switch {
			case ok && r.Removed:
				p.log.Warn("ippool: an IP of the configuration was removed through the API and stays out; "+
					"delete it from the configuration, or add it back with `easymail ip add`", "ip", addr, "pool", c.Name)
				continue
			case !ok:
				r = Record{Address: addr.String(), AddedAt: now, StateSince: now}
			}
			r.Pool, r.HELO, r.Weight, r.Warmup, r.Origin = c.Name, a.HELO, weight, slices.Clone(a.Warmup), OriginConfig
			ip := fromRecord(addr, r)
			p.addLocked(ip)
			p.refreshLocked(ip, now, false)
			save = append(save, ip.record())
		}
	}
	for addr, r := range stored {
		if inConfig[addr] {
			continue
		}
		switch {
		case r.Origin == OriginConfig:
			// Gone from the configuration (or a tombstone no longer needed).
			drop = append(drop, r.Address)
		case p.pools[r.Pool] == nil:
			p.log.Warn("ippool: an IP added through the API belongs to a pool no longer configured; it is not used",
				"ip", addr, "pool", r.Pool)
		default:
			ip := fromRecord(addr, r)
			p.addLocked(ip)
			p.refreshLocked(ip, now, false)
			save = append(save, ip.record())
		}
	}
	for _, c := range counters {
		a, err := netip.ParseAddr(c.Address)
		if err != nil {
			continue
		}
		if ip := p.ips[a]; ip != nil {
			ip.loadCounter(c)
		}
	}
	for _, ip := range p.ips {
		p.m.setState(ip)
	}
	if p.o.Store != nil {
		for _, r := range save {
			if err := p.o.Store.Save(ctx, r); err != nil {
				return fmt.Errorf("ippool: saving outbound IP %s: %w", r.Address, err)
			}
		}
		for _, a := range drop {
			if err := p.o.Store.Delete(ctx, a); err != nil {
				return fmt.Errorf("ippool: dropping outbound IP %s: %w", a, err)
			}
		}
	}
	return nil
}

// addLocked puts ip in its pool. p.mu must be held (or p not yet shared).
func (p *Pools) addLocked(ip *ipState) {
	p.ips[ip.addr] = ip
	ps := p.pools[ip.pool]
	ps.addrs = append(ps.addrs, ip.addr)
}

// hourOf returns the hour number of t (hours since the Unix epoch).
func hourOf(t time.Time) int64 { return t.Unix() / 3600 }

// Targets returns every outbound IP with its HELO name, for supervision.
func (p *Pools) Targets() []Target {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Target, 0, len(p.ips))
	for _, name := range p.order {
		for _, a := range p.pools[name].addrs {
			out = append(out, Target{IP: a, HELO: p.ips[a].helo})
		}
	}
	return out
}

// Target is an outbound IP to supervise.
type Target struct {
	IP   netip.Addr
	HELO string
}

// stateNames are the IP states, for metrics.
var stateNames = []State{StateActive, StateWarming, StatePaused, StateListed, StateDraining}
