package node_test

import (
	"strconv"
	"testing"
	"time"

	"easymail/internal/testkit"
	"easymail/internal/testkit/testnode"
)

// TestDeliveriesShareTheDNSCache: with records of a real TTL, the second and third deliveries to a domain
// take its MX and address records from the resolver's cache (easymail_dns_cache_hits_total), not from the
// DNS server.
func TestDeliveriesShareTheDNSCache(t *testing.T) {
	dns := testkit.NewDNS(t)
	dns.SetTTL(300)
	mxp := testkit.ReserveMXPort(t)
	n := testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port()})
	n.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	dns.AddMX("dest.test", "mx.dest.test", 10)
	dns.AddA("mx.dest.test", "127.0.0.11")
	mx := mxp.NewMX(t, "127.0.0.11")

	hits := func() int {
		v, err := strconv.ParseFloat(metric(t, n, "easymail_dns_cache_hits_total"), 64)
		if err != nil {
			t.Fatalf("easymail_dns_cache_hits_total: %v", err)
		}
		return int(v)
	}
	queueOne(t, n, "first")
	mx.WaitMessages(t, 1, 20*time.Second)
	before := hits()
	queueOne(t, n, "second")
	queueOne(t, n, "third")
	mx.WaitMessages(t, 3, 20*time.Second)
	// Each later delivery finds the MX and the host's A record in the cache (the fake's AAAA NODATA has no
	// SOA, so it is not kept, as RFC 2308 wants).
	if got := hits() - before; got < 4 {
		t.Fatalf("%d cache hits for two deliveries to a cached domain, want at least 4", got)
	}
}
