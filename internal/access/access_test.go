package access

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/customer"
	"easymail/internal/resolver"
	"easymail/internal/store"
	"easymail/internal/testkit"
)

// TestMaySend: deactivated and removed customers are refused; a terminating one until its date only.
func TestMaySend(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		status customer.Status
		at     time.Time
		want   bool
	}{
		{customer.StatusPending, time.Time{}, true},
		{customer.StatusActive, time.Time{}, true},
		{customer.StatusTerminating, now.Add(time.Hour), true},
		{customer.StatusTerminating, now.Add(-time.Second), false},
		{customer.StatusTerminating, time.Time{}, true},
		{customer.StatusDeactivated, time.Time{}, false},
		{customer.StatusRemoved, time.Time{}, false},
	} {
		cu := &Customer{Status: c.status, DeactivateAt: c.at}
		if got := cu.MaySend(); got != c.want {
			t.Errorf("%s (deactivate at %v): MaySend %v, want %v", c.status, c.at, got, c.want)
		}
	}
}

// TestDomainAllowed: a domain's subdomains send only when it was registered with include_subdomains; the
// closest registered parent that includes them decides.
func TestDomainAllowed(t *testing.T) {
	c := &Customer{domains: map[string]bool{"acme.example": false, "wide.example": true, "shop.wide.example": false,
		"xn--bcher-kva.example": true}}
	for d, want := range map[string]bool{
		"acme.example":           true,
		"ACME.example.":          true,
		"mail.acme.example":      false,
		"x.mail.acme.example":    false,
		"wide.example":           true,
		"news.wide.example":      true,
		"a.b.wide.example":       true,
		"shop.wide.example":      true,
		"x.shop.wide.example":    true, // wide.example includes everything under it
		"example":                false,
		"other.example":          false,
		"mail.bücher.example":    true,
		"notacme.example":        false,
		"acme.example.evil.test": false,
		"":                       false,
	} {
		if got := c.DomainAllowed(d); got != want {
			t.Errorf("DomainAllowed(%q) = %v, want %v", d, got, want)
		}
	}
}

// accessEnv is a database with customers provisioned through package customer, a fake DNS and a table.
type accessEnv struct {
	db      *store.DB
	svc     *customer.Service
	dns     *testkit.DNS
	res     resolver.Resolver
	clock   time.Time
	notices chan string
	reg     *prometheus.Registry
}

func newAccessEnv(t *testing.T) *accessEnv {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &accessEnv{db: db, dns: testkit.NewDNS(t), clock: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		notices: make(chan string, 16)}
	e.svc = &customer.Service{DB: db, Pools: []string{"default"}, Now: func() time.Time { return e.clock }}
	if e.res, err = resolver.New([]string{e.dns.Addr()}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	return e
}

// table returns a new access table (a node starting) with its own metrics, notices going to e.notices.
func (e *accessEnv) table(t *testing.T) *Access {
	t.Helper()
	e.reg = prometheus.NewRegistry()
	a := NewWith(Options{DB: e.db, Resolver: e.res, Registerer: e.reg, Now: func() time.Time { return e.clock }})
	a.SetNotify(func(_ context.Context, subject, body string) { e.notices <- subject + "\n" + body })
	return a
}

// tick advances the provisioning clock, so that registrations are ordered.
func (e *accessEnv) tick() { e.clock = e.clock.Add(time.Second) }

func (e *accessEnv) customer(t *testing.T, name string) string {
	t.Helper()
	e.tick()
	c, err := e.svc.Create(context.Background(), customer.Create{Name: name, ContactEmail: "it@" + name + ".example"})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func (e *accessEnv) relayHost(t *testing.T, id, host string) string {
	t.Helper()
	e.tick()
	h, err := e.svc.AddRelayHost(context.Background(), id, host)
	if err != nil {
		t.Fatal(err)
	}
	return h.ID
}

// addresses returns the recorded addresses of the customer's relay host, by address.
func (e *accessEnv) addresses(t *testing.T, id, host string) (map[string]customer.RelayHostAddress, customer.RelayHost) {
	t.Helper()
	c, err := e.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range c.RelayHosts {
		if h.Host == host {
			out := map[string]customer.RelayHostAddress{}
			for _, a := range h.Addresses {
				out[a.Address] = a
			}
			return out, h
		}
	}
	t.Fatalf("customer %s has no relay host %s", id, host)
	return nil, customer.RelayHost{}
}

// notice waits for one notice.
func (e *accessEnv) notice(t *testing.T) string {
	t.Helper()
	select {
	case n := <-e.notices:
		return n
	case <-time.After(5 * time.Second):
		t.Fatal("no operator notice")
		return ""
	}
}

// noticesRaised is the notice counter of the last table: counted when Reload raises a notice, before it
// is sent, so that a test can tell that none was raised without waiting.
func (e *accessEnv) noticesRaised(t *testing.T) float64 {
	t.Helper()
	return e.metric(t, "easymail_access_notices_total", "")
}

// metric returns the value of the series name (with reason label reason, if not "") of the last table.
func (e *accessEnv) metric(t *testing.T, name, reason string) float64 {
	t.Helper()
	fams, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if reason != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != reason) {
				continue
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s{reason=%q}", name, reason)
	return 0
}

func identify(t *testing.T, a *Access, ip string) string {
	t.Helper()
	c, ok := a.Identify(netip.MustParseAddr(ip))
	if !ok {
		return ""
	}
	return c.Name
}

// TestRelayHostAddressesBelongToOneCustomer: a relay host name whose addresses are another customer's
// (inside its source IP range, its IP literal relay host, an address of its earlier relay host name) does
// not take them; the ignored addresses are recorded with their reason, logged and raised to the operator
// once, and counted.
func TestRelayHostAddressesBelongToOneCustomer(t *testing.T) {
	ctx := context.Background()
	e := newAccessEnv(t)
	b := e.customer(t, "beta")
	e.tick()
	if _, err := e.svc.AddSourceIP(ctx, b, "198.51.100.0/24"); err != nil {
		t.Fatal(err)
	}
	e.relayHost(t, b, "192.0.2.6")
	c := e.customer(t, "gamma")
	e.dns.AddA("mta.gamma.test", "203.0.113.7")
	e.relayHost(t, c, "mta.gamma.test")
	a := e.customer(t, "alpha")
	e.dns.AddA("mta.alpha.test", "192.0.2.6", "198.51.100.8", "203.0.113.7", "203.0.113.9")
	e.relayHost(t, a, "mta.alpha.test")
	// A literal registered after gamma's name still wins: the literal's owner keeps its address.
	d := e.customer(t, "delta")
	e.dns.AddA("mta.late.test", "192.0.2.99")
	e.relayHost(t, c, "mta.late.test")
	e.relayHost(t, d, "192.0.2.99")

	acc := e.table(t)
	if err := acc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]string{
		"192.0.2.6": "beta", "198.51.100.8": "beta", "203.0.113.7": "gamma", "203.0.113.9": "alpha", "192.0.2.99": "delta",
	} {
		if got := identify(t, acc, ip); got != want {
			t.Errorf("%s identifies %q, want %q", ip, got, want)
		}
	}
	addrs, h := e.addresses(t, a, "mta.alpha.test")
	if h.ResolvedAt == nil || h.ResolveError != "" || len(addrs) != 4 {
		t.Fatalf("alpha's host %+v", h)
	}
	for ip, reason := range map[string]string{"192.0.2.6": customer.IgnoredRelayHost, "198.51.100.8": customer.IgnoredSourceIP,
		"203.0.113.7": customer.IgnoredRelayHost, "203.0.113.9": ""} {
		got := addrs[ip]
		if got.Used != (reason == "") || got.Ignored != reason {
			t.Errorf("%s: %+v, want ignored %q", ip, got, reason)
		}
		// What a customer reads names no other customer.
		if strings.Contains(got.Detail, "beta") || strings.Contains(got.Detail, "gamma") || strings.Contains(got.Detail, "198.51.100.0") {
			t.Errorf("%s: detail %q tells of another customer", ip, got.Detail)
		}
	}
	late, _ := e.addresses(t, c, "mta.late.test")
	if late["192.0.2.99"].Ignored != customer.IgnoredRelayHost || !strings.Contains(late["192.0.2.99"].Detail, "literal") {
		t.Errorf("gamma's late name: %+v", late)
	}
	if own, _ := e.addresses(t, b, "192.0.2.6"); !own["192.0.2.6"].Used {
		t.Errorf("beta's literal: %+v", own)
	}

	// One notice for the reload, naming both sides of each conflict.
	n := e.notice(t)
	for _, want := range []string{"relay host addresses ignored", "mta.alpha.test of customer alpha", "192.0.2.6",
		"relay host 192.0.2.6 of customer beta", "source IP 198.51.100.0/24 of customer beta",
		"relay host mta.gamma.test of customer gamma", "mta.late.test of customer gamma", "customer delta"} {
		if !strings.Contains(n, want) {
			t.Errorf("notice lacks %q:\n%s", want, n)
		}
	}
	if v := e.metric(t, "easymail_access_relay_addresses_ignored", customer.IgnoredRelayHost); v != 3 {
		t.Errorf("relay_host ignored gauge %v, want 3", v)
	}
	if v := e.metric(t, "easymail_access_relay_addresses_ignored", customer.IgnoredSourceIP); v != 1 {
		t.Errorf("source_ip ignored gauge %v, want 1", v)
	}
	if v := e.noticesRaised(t); v != 1 {
		t.Errorf("notices %v, want 1", v)
	}

	// The same conflicts again: no new notice, and none after a restart either (the record is read back).
	if err := acc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if v := e.noticesRaised(t); v != 1 {
		t.Errorf("notices after the same reload %v, want 1", v)
	}
	acc = e.table(t)
	if err := acc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if v := e.noticesRaised(t); v != 0 {
		t.Errorf("notices after a restart %v, want 0", v)
	}

	// A new conflicting address is raised; a fresh free one is taken.
	e.dns.AddA("mta.alpha.test", "198.51.100.9", "203.0.113.10")
	if err := acc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.notice(t); !strings.Contains(n, "198.51.100.9") || strings.Contains(n, "192.0.2.6") {
		t.Errorf("second notice:\n%s", n)
	}
	if identify(t, acc, "203.0.113.10") != "alpha" || identify(t, acc, "198.51.100.9") != "beta" {
		t.Error("addresses after the DNS change")
	}

	// Gamma's name goes: its address is alpha's at the next reload.
	for _, h := range mustGet(t, e, c).RelayHosts {
		if h.Host == "mta.gamma.test" {
			if err := e.svc.RemoveRelayHost(ctx, c, h.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := acc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := identify(t, acc, "203.0.113.7"); got != "alpha" {
		t.Errorf("203.0.113.7 after gamma's removal: %q", got)
	}

	// A name that stops resolving keeps its addresses, and says so.
	e.dns.Fail("mta.alpha.test", dns.RcodeServerFailure)
	if err := acc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if identify(t, acc, "203.0.113.9") != "alpha" {
		t.Error("a failed lookup dropped the addresses")
	}
	if _, h := e.addresses(t, a, "mta.alpha.test"); !strings.Contains(h.ResolveError, "last known") {
		t.Errorf("resolve error %q", h.ResolveError)
	}
}

func mustGet(t *testing.T, e *accessEnv, id string) *customer.Customer {
	t.Helper()
	c, err := e.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestResolvedAddressesObeyTheRangeRules: with private ranges refused, a name resolving to a private or
// loopback address does not make it a relay host, as a literal would be refused; reserved ranges are
// always ignored.
func TestResolvedAddressesObeyTheRangeRules(t *testing.T) {
	ctx := context.Background()
	e := newAccessEnv(t)
	a := e.customer(t, "alpha")
	e.dns.AddA("mta.alpha.test", "10.1.2.3", "127.0.0.5", "192.0.2.1", "240.0.0.1")
	e.relayHost(t, a, "mta.alpha.test")
	acc := NewWith(Options{DB: e.db, Resolver: e.res, AllowPrivate: false})
	if err := acc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]string{"10.1.2.3": "", "127.0.0.5": "", "192.0.2.1": "alpha", "240.0.0.1": ""} {
		if got := identify(t, acc, ip); got != want {
			t.Errorf("%s identifies %q, want %q", ip, got, want)
		}
	}
	addrs, _ := e.addresses(t, a, "mta.alpha.test")
	for _, ip := range []string{"10.1.2.3", "127.0.0.5", "240.0.0.1"} {
		if addrs[ip].Ignored != customer.IgnoredRange || addrs[ip].Detail == "" {
			t.Errorf("%s: %+v", ip, addrs[ip])
		}
	}
	// Allowed, private addresses are used; reserved ones still not.
	acc = NewWith(Options{DB: e.db, Resolver: e.res, AllowPrivate: true})
	if err := acc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if identify(t, acc, "10.1.2.3") != "alpha" || identify(t, acc, "127.0.0.5") != "alpha" || identify(t, acc, "240.0.0.1") != "" {
		t.Error("with private addresses allowed")
	}
}

// TestTooManyAddresses: at most maxHostAddrs addresses of a name are used, the lowest, and the host says it
// was cut.
func TestTooManyAddresses(t *testing.T) {
	ctx := context.Background()
	e := newAccessEnv(t)
	a := e.customer(t, "alpha")
	var ips []string
	for i := 40; i > 0; i-- {
		ips = append(ips, fmt.Sprintf("192.0.2.%d", i))
	}
	e.dns.AddA("mta.alpha.test", ips...)
	e.relayHost(t, a, "mta.alpha.test")
	acc := e.table(t)
	if err := acc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	addrs, h := e.addresses(t, a, "mta.alpha.test")
	if len(addrs) != maxHostAddrs || !h.Truncated || identify(t, acc, "192.0.2.32") != "alpha" || identify(t, acc, "192.0.2.33") != "" {
		t.Fatalf("%d addresses, truncated %v", len(addrs), h.Truncated)
	}
}
