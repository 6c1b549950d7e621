package rbl

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"easymail/internal/ippool"
)

// Pools is what Monitor supervises. *ippool.Pools implements it.
type Pools interface {
	// Targets returns every outbound IP with its HELO name.
	Targets() []ippool.Target
	// ApplyCheck records the outcome of a check of one IP.
	ApplyCheck(ctx context.Context, ip netip.Addr, rep ippool.CheckReport) error
}

// Parallel is the number of IPs checked at once.
const Parallel = 4

// checkTimeout bounds one IP's check.
const checkTimeout = time.Minute

// Monitor checks every outbound IP at an interval, and one IP on demand.
type Monitor struct {
	checker  *Checker
	pools    Pools
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger
}

// NewMonitor returns a Monitor of pools through checker, every interval. now is the clock (nil: time.Now);
// log receives check failures (nil discards them).
func NewMonitor(checker *Checker, pools Pools, interval time.Duration, now func() time.Time, log *slog.Logger) *Monitor {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Monitor{checker: checker, pools: pools, interval: interval, now: now, log: log}
}

// Run checks every IP at once and then every interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		m.CheckAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CheckAll checks every IP of the pools, Parallel at a time.
func (m *Monitor) CheckAll(ctx context.Context) {
	sem := make(chan struct{}, Parallel)
	var wg sync.WaitGroup
	for _, t := range m.pools.Targets() {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := m.check(ctx, t); err != nil && ctx.Err() == nil {
				m.log.Warn("rbl: recording a check failed", "ip", t.IP, "err", err)
			}
		})
	}
	wg.Wait()
}

// CheckNow checks ip at once and records the outcome; an error wrapping ippool.ErrNotFound means ip is not
// an outbound IP.
func (m *Monitor) CheckNow(ctx context.Context, ip netip.Addr) error {
	for _, t := range m.pools.Targets() {
		if t.IP == ip.Unmap() {
			return m.check(ctx, t)
		}
	}
	return fmt.Errorf("outbound IP %s: %w", ip, ippool.ErrNotFound)
}

func (m *Monitor) check(ctx context.Context, t ippool.Target) error {
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	rep := ippool.CheckReport{At: m.now()}
	var wg sync.WaitGroup
	wg.Go(func() { rep.FCrDNS = m.checker.FCrDNS(cctx, t.IP, t.HELO) })
	rep.Zones = m.checker.Check(cctx, t.IP)
	wg.Wait()
	if ctx.Err() != nil {
		// A check cut short by shutdown says nothing.
		return ctx.Err()
	}
	for _, z := range rep.Zones {
		if z.Err != "" {
			m.log.Debug("rbl: check failed", "ip", t.IP, "zone", z.Zone, "err", z.Err)
		}
	}
	return m.pools.ApplyCheck(ctx, t.IP, rep)
}
