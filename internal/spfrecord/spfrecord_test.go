package spfrecord

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"blitiri.com.ar/go/spf"

	"easymail/internal/testkit"
)

func ips(n4, n6 int) []netip.Addr {
	var out []netip.Addr
	for i := 0; i < n4; i++ {
		out = append(out, netip.MustParseAddr(fmt.Sprintf("198.51.%d.%d", 100+i/200, 1+i%200)))
	}
	for i := 0; i < n6; i++ {
		out = append(out, netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::%x", i, i+1)))
	}
	return out
}

func TestOneRecord(t *testing.T) {
	recs, lookups, err := Build("_spf.example.net.", []netip.Addr{netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("::ffff:192.0.2.1"), netip.MustParseAddr("2001:db8::1")})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || lookups != 0 {
		t.Fatalf("records %+v lookups %d", recs, lookups)
	}
	if want := "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 ~all"; recs[0].Value != want || recs[0].Name != "_spf.example.net" {
		t.Fatalf("got %s %q, want %q", recs[0].Name, recs[0].Value, want)
	}
}

func TestErrors(t *testing.T) {
	if _, _, err := Build("", ips(1, 0)); err == nil {
		t.Error("no domain accepted")
	}
	if _, _, err := Build("_spf.example.net", nil); err == nil {
		t.Error("no IP accepted")
	}
	// ~22 mechanisms per record, 6 records at most.
	if _, _, err := Build("_spf.example.net", ips(400, 0)); err == nil || !strings.Contains(err.Error(), "lookups") {
		t.Errorf("400 IPs: %v", err)
	}
}

// TestChainAuthorisesEveryIP publishes a chain built for many IPs in a fake DNS and evaluates, with a real
// SPF library, a customer's record that includes it: every IP passes, another fails, and each record and
// string stays within its limits.
func TestChainAuthorisesEveryIP(t *testing.T) {
	all := ips(70, 12)
	recs, lookups, err := Build("_spf.example.net", all)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 3 || lookups != len(recs)-1 {
		t.Fatalf("%d records, %d lookups", len(recs), lookups)
	}
	d := testkit.NewDNS(t)
	for _, r := range recs {
		if len(r.Value) > MaxRecordLen {
			t.Errorf("%s: %d octets", r.Name, len(r.Value))
		}
		if strings.Join(r.Strings, "") != r.Value {
			t.Errorf("%s: strings do not make the value", r.Name)
		}
		for _, s := range r.Strings {
			if len(s) > 255 {
				t.Errorf("%s: a string of %d octets", r.Name, len(s))
			}
		}
		d.AddTXT(r.Name, r.Value)
	}
	d.AddTXT("customer.example", "v=spf1 mx include:_spf.example.net -all")
	d.AddMX("customer.example", "mx.customer.example", 10)
	d.AddA("mx.customer.example", "203.0.113.9")
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, network, d.Addr())
	}}
	check := func(ip netip.Addr) spf.Result {
		r, _ := spf.CheckHostWithSender(net.IP(ip.AsSlice()), "relay.example.net", "a@customer.example",
			spf.WithResolver(res), spf.WithContext(context.Background()))
		return r
	}
	for _, ip := range all {
		if r := check(ip); r != spf.Pass {
			t.Errorf("%s: %s", ip, r)
		}
	}
	if r := check(netip.MustParseAddr("192.0.2.99")); r != spf.Fail {
		t.Errorf("unlisted IP: %s", r)
	}
	if z := Zone(recs[:1]); !strings.HasPrefix(z, "_spf.example.net. IN TXT \"v=spf1 ") {
		t.Errorf("zone line %q", z)
	}
}
