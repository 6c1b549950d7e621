// Package ippool chooses the outbound IP a delivery leaves from: each customer is served by a named pool of
// the operator's IPs, each IP with its own HELO name. A message never leaves from an IP outside its pool.
package ippool

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"easymail/internal/config"
	"easymail/internal/delivery"
)

type pool struct {
	name    string
	sources []delivery.Source
	next    atomic.Uint64
}

// Pools is the set of configured pools. It is safe for concurrent use.
type Pools struct {
	byName map[string]*pool
	first  string
}

// New builds the pools from the configuration (already validated).
func New(cfg []config.Pool) (*Pools, error) {
	p := &Pools{byName: map[string]*pool{}}
	for i, c := range cfg {
		pl := &pool{name: c.Name}
		for _, a := range c.IPs {
			ip, err := netip.ParseAddr(a.Address)
			if err != nil {
				return nil, fmt.Errorf("pool %s: %w", c.Name, err)
			}
			pl.sources = append(pl.sources, delivery.Source{IP: ip.Unmap(), HELO: a.HELO})
		}
		p.byName[c.Name] = pl
		if i == 0 {
			p.first = c.Name
		}
	}
	return p, nil
}

// Pick returns the next outbound IP of the named pool, in rotation. An empty name means the first
// configured pool.
func (p *Pools) Pick(name string) (delivery.Source, error) {
	if name == "" {
		name = p.first
	}
	pl, ok := p.byName[name]
	if !ok || len(pl.sources) == 0 {
		return delivery.Source{}, fmt.Errorf("no outbound IP: pool %q is not configured", name)
	}
	n := pl.next.Add(1) - 1
	return pl.sources[n%uint64(len(pl.sources))], nil
}

// Names returns the configured pool names.
func (p *Pools) Names() []string {
	names := make([]string, 0, len(p.byName))
	for n := range p.byName {
		names = append(names, n)
	}
	return names
}
