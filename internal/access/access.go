// Package access decides who may relay through Easymail: it maps a client IP to the customer that registered
// it (as a source IP or CIDR, or through a relay host name resolved to IPs), and tells whether a sender or
// header-From domain belongs to that customer.
//
// The table is an immutable snapshot, swapped atomically on Reload, so that lookups on the SMTP hot path take
// no lock and no database round trip. Reload runs after every provisioning change and periodically, to
// follow relay host names whose addresses change.
package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/idna"

	"easymail/internal/resolver"
	"easymail/internal/store"
)

// Customer statuses that matter for relaying.
const (
	StatusPending     = "pending"
	StatusActive      = "active"
	StatusTerminating = "terminating"
	StatusDeactivated = "deactivated"
	StatusRemoved     = "removed"
)

// Customer is what the SMTP side needs to know of a customer.
type Customer struct {
	ID             string
	Name           string
	Status         string
	Pool           string
	TopologyHiding bool
	AntiSpoofing   bool
	// DeactivateAt is the scheduled deactivation of a terminating customer (zero: none).
	DeactivateAt time.Time
	domains      map[string]bool
}

// MaySend reports whether the customer's mail is accepted at all: it is refused once deactivated or
// removed, and from the scheduled deactivation date on even before the lifecycle scheduler has run.
func (c *Customer) MaySend() bool {
	switch c.Status {
	case StatusDeactivated, StatusRemoved:
		return false
	case StatusTerminating:
		return c.DeactivateAt.IsZero() || time.Now().Before(c.DeactivateAt)
	}
	return true
}

// DomainAllowed reports whether domain (any case, U-label or A-label) is one of the customer's domains or a
// subdomain of one.
func (c *Customer) DomainAllowed(domain string) bool {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return false
	}
	for {
		if c.domains[d] {
			return true
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return false
		}
		d = d[i+1:]
	}
}

// NormalizeDomain returns domain as a lower-case A-label name without a trailing dot.
func NormalizeDomain(domain string) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(domain), ".")
	if d == "" {
		return "", errors.New("empty domain")
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", err
	}
	return a, nil
}

type prefixEntry struct {
	prefix   netip.Prefix
	customer *Customer
}

// table is one immutable snapshot.
type table struct {
	prefixes []prefixEntry // longest prefix first
	hosts    map[netip.Addr]*Customer
	byID     map[string]*Customer
}

// Access is the relay access table. It is safe for concurrent use.
type Access struct {
	db  *store.DB
	res resolver.Resolver
	log *slog.Logger

	cur atomic.Pointer[table]

	mu       sync.Mutex              // serialises reloads
	resolved map[string][]netip.Addr // last good resolution of each relay host name
}

// New returns an empty table; call Reload to fill it.
func New(db *store.DB, res resolver.Resolver, log *slog.Logger) *Access {
	a := &Access{db: db, res: res, log: log, resolved: map[string][]netip.Addr{}}
	a.cur.Store(&table{hosts: map[netip.Addr]*Customer{}, byID: map[string]*Customer{}})
	return a
}

// Identify returns the customer that ip belongs to. Source IPs and CIDRs win over relay hosts; among
// prefixes the longest wins.
func (a *Access) Identify(ip netip.Addr) (*Customer, bool) {
	ip = ip.Unmap()
	t := a.cur.Load()
	for _, p := range t.prefixes {
		if p.prefix.Contains(ip) {
			return p.customer, true
		}
	}
	c, ok := t.hosts[ip]
	return c, ok
}

// Customer returns the customer with the given id, as of the last reload.
func (a *Access) Customer(id string) (*Customer, bool) {
	c, ok := a.cur.Load().byID[id]
	return c, ok
}

// Reload reads customers, domains, source IPs and relay hosts from the database and swaps the table in.
// Relay host names are resolved; a name that fails to resolve keeps its last known addresses.
func (a *Access) Reload(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := &table{hosts: map[netip.Addr]*Customer{}, byID: map[string]*Customer{}}

	rows, err := a.db.R.QueryContext(ctx, `SELECT id, name, status, pool, topology_hiding, anti_spoofing, deactivate_at FROM customers`)
	if err != nil {
		return err
	}
	for rows.Next() {
		c := &Customer{domains: map[string]bool{}}
		var deactivateAt sql.NullInt64
		if err := rows.Scan(&c.ID, &c.Name, &c.Status, &c.Pool, &c.TopologyHiding, &c.AntiSpoofing, &deactivateAt); err != nil {
			rows.Close()
			return err
		}
		if deactivateAt.Valid && c.Status == StatusTerminating {
			c.DeactivateAt = store.Time(deactivateAt.Int64)
		}
		t.byID[c.ID] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	err = each(ctx, a.db.R, `SELECT customer_id, domain FROM customer_domains`, func(c *Customer, v string) {
		c.domains[v] = true
	}, t)
	if err != nil {
		return err
	}
	err = each(ctx, a.db.R, `SELECT customer_id, cidr FROM source_ips`, func(c *Customer, v string) {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			if ip, err2 := netip.ParseAddr(v); err2 == nil {
				p = netip.PrefixFrom(ip, ip.BitLen())
			} else {
				a.log.Warn("access: unparsable source ip in database", "customer", c.ID, "cidr", v)
				return
			}
		}
		t.prefixes = append(t.prefixes, prefixEntry{prefix: p.Masked(), customer: c})
	}, t)
	if err != nil {
		return err
	}
	sort.SliceStable(t.prefixes, func(i, j int) bool { return t.prefixes[i].prefix.Bits() > t.prefixes[j].prefix.Bits() })

	type hostRow struct {
		c    *Customer
		host string
	}
	var hosts []hostRow
	err = each(ctx, a.db.R, `SELECT customer_id, host FROM relay_hosts`, func(c *Customer, v string) {
		hosts = append(hosts, hostRow{c, v})
	}, t)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		seen[h.host] = true
		for _, ip := range a.resolveHost(ctx, h.host) {
			t.hosts[ip] = h.c
		}
	}
	for name := range a.resolved {
		if !seen[name] {
			delete(a.resolved, name)
		}
	}
	a.cur.Store(t)
	return nil
}

func (a *Access) resolveHost(ctx context.Context, host string) []netip.Addr {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ips, err := a.res.LookupIP(ctx, host)
	if err != nil {
		a.log.Warn("access: relay host does not resolve; keeping its last addresses", "host", host, "err", err,
			"kept", len(a.resolved[host]))
		return a.resolved[host]
	}
	var out []netip.Addr
	for _, ip := range ips {
		if addr, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, addr.Unmap())
		}
	}
	a.resolved[host] = out
	return out
}

func each(ctx context.Context, db *sql.DB, q string, fn func(*Customer, string), t *table) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			return err
		}
		if c := t.byID[id]; c != nil {
			fn(c, v)
		}
	}
	return rows.Err()
}

// Run reloads the table every interval until ctx ends, so relay host names are re-resolved.
func (a *Access) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := a.Reload(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("access: reload failed", "err", err)
			}
		}
	}
}

// String describes the table size, for logs.
func (a *Access) String() string {
	t := a.cur.Load()
	return fmt.Sprintf("%d customers, %d prefixes, %d relay host addresses", len(t.byID), len(t.prefixes), len(t.hosts))
}
