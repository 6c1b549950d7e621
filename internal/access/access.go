// Package access decides who may relay through Easymail: it maps a client IP to the customer that registered
// it (as a source IP or CIDR, or through a relay host name resolved to IPs), and tells whether a sender or
// header-From domain belongs to that customer.
//
// The table is an immutable snapshot, swapped atomically on Reload, so that lookups on the SMTP hot path take
// no lock and no database round trip. Reload runs after every provisioning change and periodically, to
// follow relay host names whose addresses change.
//
// Tenants are walls: a client address identifies one customer only. Source IPs come first, then relay hosts
// given as IP literals, then the addresses of relay host names, the earliest registered first. An address of
// a name that is already another customer's (inside its source IP range, its literal relay host, or an
// address of its earlier relay host name), or in a range that a literal would be refused for, is ignored for
// that name: logged, counted, and raised to the operator in a notice. What each relay host resolved to, and
// which addresses were ignored and why, is recorded in the database for the API to show.
package access

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/idna"

	"easymail/internal/customer"
	"easymail/internal/resolver"
	"easymail/internal/store"
)

// Customer is what the SMTP side needs to know of a customer.
type Customer struct {
	ID             string
	Name           string
	Status         customer.Status
	Pool           string
	TopologyHiding bool
	AntiSpoofing   bool
	// UnsubscribeDelegated: the relay adds one-click unsubscription to the customer's mail (docs/events.md).
	UnsubscribeDelegated bool
	// DeactivateAt is the scheduled deactivation of a terminating customer (zero: none).
	DeactivateAt time.Time
	// domains maps each registered domain to whether its subdomains are included.
	domains map[string]bool
}

// MaySend reports whether the customer's mail is accepted at all: it is refused once deactivated or
// removed, and from the scheduled deactivation date on even before the lifecycle scheduler has run.
func (c *Customer) MaySend() bool {
	switch c.Status {
	case customer.StatusDeactivated, customer.StatusRemoved:
		return false
	case customer.StatusTerminating:
		return c.DeactivateAt.IsZero() || time.Now().Before(c.DeactivateAt)
	}
	return true
}

// DomainAllowed reports whether domain (any case, U-label or A-label) is one of the customer's domains, or a
// subdomain of one registered with its subdomains (include_subdomains).
func (c *Customer) DomainAllowed(domain string) bool {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return false
	}
	if _, ok := c.domains[d]; ok {
		return true
	}
	for {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return false
		}
		d = d[i+1:]
		if c.domains[d] {
			return true
		}
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

// maxHostAddrs bounds the addresses used of one relay host name (DNS is input from outside).
const maxHostAddrs = 32

// DefaultNoticeEvery is the least time between two operator notices about the same ignored address.
const DefaultNoticeEvery = 24 * time.Hour

// Options configure an access table.
type Options struct {
	DB       *store.DB
	Resolver resolver.Resolver
	Logger   *slog.Logger
	// AllowPrivate accepts private, loopback and link-local addresses of relay host names, as
	// customer.Service.AllowPrivate does for literals (the opposite of lifecycle.refuse_private_ips).
	AllowPrivate bool
	// Registerer, if not nil, receives the package's metrics.
	Registerer prometheus.Registerer
	// NoticeEvery is the least time between two notices about the same ignored address of a relay host;
	// 0 means DefaultNoticeEvery.
	NoticeEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// noticeSubject is the subject of the operator notices.
const noticeSubject = "[easymail] relay host addresses ignored"

// Notify queues an operator notice. It is called in its own goroutine.
type Notify func(ctx context.Context, subject, body string)

// Access is the relay access table. It is safe for concurrent use.
type Access struct {
	db  *store.DB
	res resolver.Resolver
	log *slog.Logger
	o   Options
	m   *metrics

	cur atomic.Pointer[table]

	mu       sync.Mutex            // serialises reloads; guards the fields below
	resolved map[string]resolution // last good resolution of each relay host name
	notify   Notify
	pending  []string // notices found before SetNotify
	noticed  map[noticeKey]time.Time
}

// resolution is the addresses of a name, in order, and whether more were dropped.
type resolution struct {
	addrs     []netip.Addr
	truncated bool
}

// noticeKey identifies one ignored address of one relay host, for the notices' rate limit.
type noticeKey struct {
	hostID string
	addr   netip.Addr
	reason string
}

// New returns an empty table that accepts private addresses and sends no notices; call Reload to fill it.
func New(db *store.DB, res resolver.Resolver, log *slog.Logger) *Access {
	return NewWith(Options{DB: db, Resolver: res, Logger: log, AllowPrivate: true})
}

// NewWith returns an empty table configured by o; call Reload to fill it.
func NewWith(o Options) *Access {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.NoticeEvery <= 0 {
		o.NoticeEvery = DefaultNoticeEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Access{db: o.DB, res: o.Resolver, log: o.Logger, o: o, m: newMetrics(o.Registerer),
		resolved: map[string]resolution{}, noticed: map[noticeKey]time.Time{}}
	a.cur.Store(&table{hosts: map[netip.Addr]*Customer{}, byID: map[string]*Customer{}})
	return a
}

// SetNotify sets where operator notices go, and sends those found by reloads before it was set.
func (a *Access) SetNotify(fn Notify) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.notify = fn
	for _, body := range a.pending {
		go fn(context.Background(), noticeSubject, body)
	}
	a.pending = nil
}

// send queues one notice; the caller holds a.mu.
func (a *Access) send(body string) {
	a.m.notices.Inc()
	if a.notify == nil {
		if len(a.pending) < 100 {
			a.pending = append(a.pending, body)
		}
		return
	}
	go a.notify(context.Background(), noticeSubject, body)
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

// hostRow is a relay host as read from the database.
type hostRow struct {
	id       string
	c        *Customer
	host     string
	literal  netip.Addr // valid for an IP literal
	previous string     // the resolution recorded, JSON
	res      customer.RelayHostResolution
}

// Reload reads customers, domains, source IPs and relay hosts from the database and swaps the table in.
// Relay host names are resolved; a name that fails to resolve keeps its last known addresses. The addresses
// that change hands or are ignored are recorded, logged and raised to the operator (see the package comment).
func (a *Access) Reload(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := &table{hosts: map[netip.Addr]*Customer{}, byID: map[string]*Customer{}}

	rows, err := a.db.R.QueryContext(ctx, `SELECT id, name, status, pool, topology_hiding, anti_spoofing, deactivate_at,
		unsubscribe = 'delegated' FROM customers`)
	if err != nil {
		return err
	}
	for rows.Next() {
		c := &Customer{domains: map[string]bool{}}
		var deactivateAt sql.NullInt64
		if err := rows.Scan(&c.ID, &c.Name, &c.Status, &c.Pool, &c.TopologyHiding, &c.AntiSpoofing, &deactivateAt,
			&c.UnsubscribeDelegated); err != nil {
			rows.Close()
			return err
		}
		if deactivateAt.Valid && c.Status == customer.StatusTerminating {
			c.DeactivateAt = store.Time(deactivateAt.Int64)
		}
		t.byID[c.ID] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	err = each(ctx, a.db.R, `SELECT customer_id, domain, include_subdomains FROM customer_domains`, func(c *Customer, v []string) {
		c.domains[v[0]] = v[1] == "1" || v[1] == "true"
	}, t)
	if err != nil {
		return err
	}
	err = each(ctx, a.db.R, `SELECT customer_id, cidr FROM source_ips`, func(c *Customer, v []string) {
		p, err := netip.ParsePrefix(v[0])
		if err != nil {
			if ip, err2 := netip.ParseAddr(v[0]); err2 == nil {
				p = netip.PrefixFrom(ip, ip.BitLen())
			} else {
				a.log.Warn("access: unparsable source ip in database", "customer", c.ID, "cidr", v[0])
				return
			}
		}
		t.prefixes = append(t.prefixes, prefixEntry{prefix: p.Masked(), customer: c})
	}, t)
	if err != nil {
		return err
	}
	sort.SliceStable(t.prefixes, func(i, j int) bool { return t.prefixes[i].prefix.Bits() > t.prefixes[j].prefix.Bits() })

	// Relay hosts, the earliest registered first: an earlier name keeps an address a later one resolves to.
	var hosts []*hostRow
	err = each(ctx, a.db.R, `SELECT customer_id, id, host, resolved FROM relay_hosts ORDER BY created_at, id`, func(c *Customer, v []string) {
		h := &hostRow{id: v[0], c: c, host: v[1], previous: v[2]}
		if ip, err := netip.ParseAddr(h.host); err == nil {
			h.literal = ip.Unmap()
		}
		hosts = append(hosts, h)
	}, t)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	owners := map[netip.Addr]*hostRow{}
	// Literals first: an IP literal is its customer's even against an earlier name (registering it checked
	// the source IPs and the other literals).
	for _, h := range hosts {
		if h.literal.IsValid() {
			a.place(t, owners, h, h.literal, false)
		}
	}
	for _, h := range hosts {
		if h.literal.IsValid() {
			continue
		}
		seen[h.host] = true
		r, errText := a.resolveHost(ctx, h)
		h.res.ResolveError, h.res.Truncated = errText, r.truncated
		for _, ip := range r.addrs {
			a.place(t, owners, h, ip, true)
		}
	}
	for name := range a.resolved {
		if !seen[name] {
			delete(a.resolved, name)
		}
	}
	a.cur.Store(t)
	a.record(ctx, t, hosts, owners)
	return nil
}

// place gives ip to h's customer unless it is another customer's, and notes the outcome in h.res. checkRange
// applies the private and reserved range rules (to the addresses of names; literals were checked when
// registered).
func (a *Access) place(t *table, owners map[netip.Addr]*hostRow, h *hostRow, ip netip.Addr, checkRange bool) {
	e := customer.RelayHostAddress{Address: ip.String()}
	var other *prefixEntry
	for i, p := range t.prefixes {
		if p.customer != h.c && p.prefix.Contains(ip) {
			other = &t.prefixes[i]
			break
		}
	}
	var rangeErr error
	if checkRange {
		rangeErr = customer.CheckClientAddr(ip, a.o.AllowPrivate)
	}
	prev := owners[ip]
	switch {
	case rangeErr != nil:
		e.Ignored, e.Detail = customer.IgnoredRange, rangeErr.Error()
	case other != nil:
		e.Ignored, e.Detail = customer.IgnoredSourceIP, "inside a source IP range of another customer"
	case prev != nil && prev.c != h.c && prev.literal.IsValid():
		e.Ignored, e.Detail = customer.IgnoredRelayHost, "the IP literal relay host of another customer"
	case prev != nil && prev.c != h.c:
		e.Ignored, e.Detail = customer.IgnoredRelayHost, "an address of another customer's relay host, registered earlier"
	default:
		e.Used = true
		if prev == nil {
			owners[ip] = h
		}
		t.hosts[ip] = h.c
	}
	h.res.Addresses = append(h.res.Addresses, e)
}

// resolveHost returns the addresses of h's name, sorted and at most maxHostAddrs, and, when the lookup
// failed, why (the last known addresses are used then: those of the last good lookup, or those recorded in
// the database before a restart).
func (a *Access) resolveHost(ctx context.Context, h *hostRow) (resolution, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ips, err := a.res.LookupIP(ctx, h.host)
	if err != nil {
		last, ok := a.resolved[h.host]
		if !ok {
			last = recorded(h.previous)
		}
		a.log.Warn("access: relay host does not resolve; keeping its last addresses", "host", h.host, "err", err,
			"kept", len(last.addrs))
		why := "the lookup failed temporarily"
		if errors.Is(err, resolver.ErrNotFound) {
			why = "the name has no A or AAAA record"
		}
		return last, fmt.Sprintf("%s; the %d addresses last known are used", why, len(last.addrs))
	}
	var r resolution
	set := map[netip.Addr]bool{}
	for _, ip := range ips {
		if addr, ok := netip.AddrFromSlice(ip); ok && !set[addr.Unmap()] {
			set[addr.Unmap()] = true
			r.addrs = append(r.addrs, addr.Unmap())
		}
	}
	sort.Slice(r.addrs, func(i, j int) bool { return r.addrs[i].Less(r.addrs[j]) })
	if len(r.addrs) > maxHostAddrs {
		a.log.Warn("access: relay host has too many addresses; using the first ones", "host", h.host,
			"addresses", len(r.addrs), "used", maxHostAddrs)
		r.addrs, r.truncated = r.addrs[:maxHostAddrs], true
	}
	a.resolved[h.host] = r
	return r, ""
}

// recorded returns the addresses of a resolution recorded in the database (JSON), or none.
func recorded(js string) resolution {
	var res customer.RelayHostResolution
	var r resolution
	if js == "" || json.Unmarshal([]byte(js), &res) != nil {
		return r
	}
	for _, e := range res.Addresses {
		if ip, err := netip.ParseAddr(e.Address); err == nil && len(r.addrs) < maxHostAddrs {
			r.addrs = append(r.addrs, ip)
		}
	}
	r.truncated = res.Truncated
	return r
}

// record writes the resolutions that changed to the database, sets the metrics, and logs and raises to the
// operator the addresses newly ignored. A failure to write is logged: the table is in force regardless.
func (a *Access) record(ctx context.Context, t *table, hosts []*hostRow, owners map[netip.Addr]*hostRow) {
	ignored := map[string]float64{customer.IgnoredRange: 0, customer.IgnoredSourceIP: 0, customer.IgnoredRelayHost: 0}
	now := a.o.Now()
	var changed []*hostRow
	var lines []string
	for _, h := range hosts {
		if h.res.Addresses == nil {
			h.res.Addresses = []customer.RelayHostAddress{}
		}
		js, err := json.Marshal(h.res)
		if err != nil {
			continue
		}
		if string(js) != h.previous {
			changed = append(changed, h)
		}
		before := map[string]string{}
		for _, e := range recordedEntries(h.previous) {
			before[e.Address] = e.Ignored
		}
		for _, e := range h.res.Addresses {
			if e.Used {
				continue
			}
			ignored[e.Ignored]++
			if before[e.Address] == e.Ignored {
				continue // known: logged and raised when it appeared
			}
			ip, _ := netip.ParseAddr(e.Address)
			line, attrs := describe(t, h, ip, e, owners)
			a.log.Warn("access: relay host address ignored", attrs...)
			k := noticeKey{h.id, ip, e.Ignored}
			if last, ok := a.noticed[k]; ok && now.Sub(last) < a.o.NoticeEvery {
				continue
			}
			a.noticed[k] = now
			lines = append(lines, line)
		}
		h.previous = string(js)
	}
	for k, at := range a.noticed {
		if now.Sub(at) >= a.o.NoticeEvery {
			delete(a.noticed, k)
		}
	}
	for reason, n := range ignored {
		a.m.ignored.WithLabelValues(reason).Set(n)
	}
	if len(lines) > 0 {
		a.send("Easymail ignores these addresses of relay host names: each client address identifies one customer only,\n" +
			"and a name's address must be acceptable as a relay host IP.\n\n" + strings.Join(lines, "\n\n") +
			"\n\nSee `easymail customer show ID` for each host's addresses (docs/lifecycle.md).\n")
	}
	if len(changed) == 0 {
		return
	}
	err := a.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, h := range changed {
			if err := customer.RecordResolution(ctx, tx, h.id, h.previous, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		a.log.Error("access: recording relay host addresses failed", "err", err)
	}
}

// describe says, for the operator, why e of h is ignored: a notice paragraph and log attributes, naming
// both customers.
func describe(t *table, h *hostRow, ip netip.Addr, e customer.RelayHostAddress, owners map[netip.Addr]*hostRow) (string, []any) {
	attrs := []any{"customer", h.c.ID, "host", h.host, "host_id", h.id, "address", e.Address, "reason", e.Ignored}
	line := fmt.Sprintf("- relay host %s of customer %s (%s) resolves to %s: ignored, ", h.host, h.c.Name, h.c.ID, e.Address)
	switch e.Ignored {
	case customer.IgnoredSourceIP:
		for _, p := range t.prefixes {
			if p.customer != h.c && p.prefix.Contains(ip) {
				attrs = append(attrs, "owner", p.customer.ID, "source_ip", p.prefix.String())
				line += fmt.Sprintf("it is inside source IP %s of customer %s (%s), which keeps it.", p.prefix, p.customer.Name, p.customer.ID)
				break
			}
		}
	case customer.IgnoredRelayHost:
		if o := owners[ip]; o != nil {
			attrs = append(attrs, "owner", o.c.ID, "owner_host", o.host)
			line += fmt.Sprintf("it is an address of relay host %s of customer %s (%s), which keeps it.", o.host, o.c.Name, o.c.ID)
		}
	default:
		line += e.Detail + "."
	}
	return line, attrs
}

// recordedEntries returns the addresses of a recorded resolution (JSON).
func recordedEntries(js string) []customer.RelayHostAddress {
	var res customer.RelayHostResolution
	if js == "" || json.Unmarshal([]byte(js), &res) != nil {
		return nil
	}
	return res.Addresses
}

// each runs fn for each row of q whose first column is the id of a customer in t, with the other columns
// as strings.
func each(ctx context.Context, db *sql.DB, q string, fn func(*Customer, []string), t *table) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	var id string
	vals := make([]sql.NullString, len(cols)-1)
	dest := []any{&id}
	for i := range vals {
		dest = append(dest, &vals[i])
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if c := t.byID[id]; c != nil {
			v := make([]string, len(vals))
			for i, n := range vals {
				v[i] = n.String
			}
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
