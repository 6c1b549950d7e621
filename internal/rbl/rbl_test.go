package rbl

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/config"
	"easymail/internal/ippool"
	"easymail/internal/resolver"
	"easymail/internal/testkit"
)

var ctx = context.Background()

func newChecker(t *testing.T, d *testkit.DNS, zones []config.RBLZone) (*Checker, *prometheus.Registry) {
	t.Helper()
	res, err := resolver.New([]string{d.Addr()}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	zs, err := ParseZones(zones)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	return NewChecker(res, zs, reg), reg
}

func TestQueryName(t *testing.T) {
	if got := QueryName(netip.MustParseAddr("192.0.2.99"), "zen.example"); got != "99.2.0.192.zen.example" {
		t.Errorf("IPv4: %s", got)
	}
	// RFC 5782 §2.4's example.
	got := QueryName(netip.MustParseAddr("2001:db8:1:2:3:4:567:89ab"), "ugly.example.com")
	if got != "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com" {
		t.Errorf("IPv6: %s", got)
	}
	if got := QueryName(netip.MustParseAddr("::ffff:192.0.2.1"), "z.example"); got != "1.2.0.192.z.example" {
		t.Errorf("mapped: %s", got)
	}
}

func TestParseZones(t *testing.T) {
	zs, err := ParseZones([]config.RBLZone{{Zone: "Zen.Example."}, {Zone: "b.example", Refused: []string{"127.0.0.1", "127.0.0.8/29"}},
		{Zone: "c.example", Refused: []string{}}})
	if err != nil {
		t.Fatal(err)
	}
	if zs[0].Name != "zen.example" || len(zs[0].Refused) != 1 || zs[0].Refused[0].String() != "127.255.255.0/24" {
		t.Errorf("default refusal codes: %+v", zs[0])
	}
	if len(zs[1].Refused) != 2 || zs[1].Refused[0].String() != "127.0.0.1/32" || len(zs[2].Refused) != 0 {
		t.Errorf("zone refusal codes: %+v", zs)
	}
	if _, err := ParseZones([]config.RBLZone{{Zone: "x.example", Refused: []string{"nope"}}}); err == nil ||
		!strings.Contains(err.Error(), "rbl.zones[0].refused[0]") {
		t.Errorf("bad refusal code: %v", err)
	}
}

func TestZoneAnswers(t *testing.T) {
	d := testkit.NewDNS(t)
	c, reg := newChecker(t, d, []config.RBLZone{{Zone: "bl.test"}, {Zone: "strict.test", Refused: []string{"127.0.0.1"}}})
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	// Some other record makes the zone exist; the IPs below are NXDOMAIN unless added.
	d.AddA("2.0.0.127.bl.test", "127.0.0.2")
	d.AddA("10.2.0.192.bl.test", "127.0.0.2", "127.0.0.4")
	d.AddTXT("10.2.0.192.bl.test", "Listed: see https://bl.test/lookup?192.0.2.10")
	d.AddA("11.2.0.192.bl.test", "127.255.255.254")
	d.AddA("12.2.0.192.bl.test", "10.0.0.1")
	d.Fail("13.2.0.192.bl.test", dns.RcodeServerFailure)
	d.AddA("10.2.0.192.strict.test", "127.0.0.1")
	d.AddA("14.2.0.192.bl.test", "127.0.0.3")

	cases := []struct {
		ip, zone      string
		listed        bool
		code, errPart string
	}{
		{"192.0.2.1", "bl.test", false, "", ""},
		{"192.0.2.10", "bl.test", true, "127.0.0.2,127.0.0.4", ""},
		{"192.0.2.11", "bl.test", false, "", "refused the query (answer 127.255.255.254)"},
		{"192.0.2.12", "bl.test", false, "", "outside 127.0.0.0/8"},
		{"192.0.2.13", "bl.test", false, "", "no answer"},
		{"192.0.2.10", "strict.test", false, "", "refused the query (answer 127.0.0.1)"},
		{"192.0.2.14", "bl.test", true, "127.0.0.3", ""},
	}
	zones := map[string]Zone{}
	for _, z := range c.Zones() {
		zones[z.Name] = z
	}
	for _, tc := range cases {
		r := c.CheckZone(ctx, ip(tc.ip), zones[tc.zone])
		if r.Listed != tc.listed || r.Code != tc.code || (tc.errPart == "") != (r.Err == "") || !strings.Contains(r.Err, tc.errPart) {
			t.Errorf("%s in %s: %+v", tc.ip, tc.zone, r)
		}
	}
	if r := c.CheckZone(ctx, ip("192.0.2.10"), zones["bl.test"]); r.Reason != "Listed: see https://bl.test/lookup?192.0.2.10" {
		t.Errorf("TXT reason %q", r.Reason)
	}
	all := c.Check(ctx, ip("192.0.2.10"))
	if len(all) != 2 || !all[0].Listed || all[1].Err == "" {
		t.Errorf("Check: %+v", all)
	}
	mf, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range mf {
		for _, m := range f.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetValue() + "/"
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	if got["error/bl.test/"] != 2 || got["refused/bl.test/"] != 1 || got["listed/bl.test/"] != 4 || got["clean/bl.test/"] != 1 ||
		got["refused/strict.test/"] != 2 {
		t.Errorf("easymail_rbl_checks_total: %v", got)
	}
}

func TestFCrDNS(t *testing.T) {
	d := testkit.NewDNS(t)
	c, _ := newChecker(t, d, nil)
	d.AddPTR("192.0.2.1", "out1.relay.test")
	d.AddA("out1.relay.test", "192.0.2.1")
	d.AddPTR("192.0.2.2", "other.relay.test")
	d.AddPTR("192.0.2.3", "out3.relay.test")
	d.AddA("out3.relay.test", "192.0.2.33")
	d.AddPTR("192.0.2.4", "out4.relay.test")
	d.AddPTR("2001:db8::1", "v6.relay.test")
	d.AddA("v6.relay.test", "2001:db8::1")
	d.Fail("5.2.0.192.in-addr.arpa", dns.RcodeServerFailure)
	cases := []struct {
		ip, helo, status, detail string
	}{
		{"192.0.2.1", "OUT1.relay.test.", ippool.FCrDNSOK, ""},
		{"192.0.2.2", "out2.relay.test", ippool.FCrDNSMismatch, "the PTR of 192.0.2.2 is other.relay.test, not the HELO name out2.relay.test"},
		{"192.0.2.3", "out3.relay.test", ippool.FCrDNSMismatch, "resolves to 192.0.2.33, not 192.0.2.3"},
		{"192.0.2.4", "out4.relay.test", ippool.FCrDNSMismatch, "has no A or AAAA record"},
		{"192.0.2.9", "out9.relay.test", ippool.FCrDNSMismatch, "has no PTR record"},
		{"192.0.2.5", "out5.relay.test", ippool.FCrDNSError, "PTR lookup failed"},
		{"2001:db8::1", "v6.relay.test", ippool.FCrDNSOK, ""},
	}
	for _, tc := range cases {
		r := c.FCrDNS(ctx, netip.MustParseAddr(tc.ip), tc.helo)
		if r.Status != tc.status || !strings.Contains(r.Detail, tc.detail) {
			t.Errorf("%s as %s: %+v", tc.ip, tc.helo, r)
		}
	}
}

func TestMonitorAppliesChecks(t *testing.T) {
	d := testkit.NewDNS(t)
	c, _ := newChecker(t, d, []config.RBLZone{{Zone: "bl.test"}})
	pools, err := ippool.New(ctx, ippool.Options{
		Pools: []config.Pool{{Name: "p", IPs: []config.PoolAddr{{Address: "192.0.2.1", HELO: "out1.relay.test"},
			{Address: "192.0.2.2", HELO: "out2.relay.test"}, {Address: "192.0.2.3", HELO: "out3.relay.test"}}}},
		IPPool: config.Default().IPPool, Hold: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	d.AddPTR("192.0.2.1", "out1.relay.test")
	d.AddA("out1.relay.test", "192.0.2.1")
	d.AddA("1.2.0.192.bl.test", "127.0.0.2")
	d.AddA("2.2.0.192.bl.test", "127.255.255.254")
	m := NewMonitor(c, pools, time.Hour, nil, nil)
	m.CheckAll(ctx)
	views, _ := pools.IPViews("")
	by := map[string]ippool.IP{}
	for _, v := range views {
		by[v.Address] = v
	}
	if v := by["192.0.2.1"]; v.State != ippool.StateListed || v.FCrDNS.Status != ippool.FCrDNSOK || v.LastCheck == nil {
		t.Errorf("listed IP: %+v", v)
	}
	if v := by["192.0.2.2"]; v.State != ippool.StateActive || len(v.CheckErrors) != 1 || v.FCrDNS.Status != ippool.FCrDNSMismatch {
		t.Errorf("a refusal code took the IP out, or was not reported: %+v", v)
	}
	if v := by["192.0.2.3"]; v.State != ippool.StateActive || len(v.CheckErrors) != 0 {
		t.Errorf("clean IP: %+v", v)
	}
	d.Remove("1.2.0.192.bl.test", dns.TypeA)
	if err := m.CheckNow(ctx, netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if v, _ := pools.IPView(netip.MustParseAddr("192.0.2.1")); len(v.Listings) != 0 || v.HoldUntil == nil {
		t.Errorf("after delisting: %+v", v)
	}
	if err := m.CheckNow(ctx, netip.MustParseAddr("203.0.113.1")); err == nil {
		t.Error("check of an unknown IP")
	}
}
