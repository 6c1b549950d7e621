package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"easymail/internal/api"
	"easymail/internal/config"
	"easymail/internal/testkit"
	"easymail/internal/testkit/testnode"
)

// addr is a pool IP on the loopback.
func addr(address, helo string, warmup ...int) config.PoolAddr {
	return config.PoolAddr{Address: address, HELO: helo, Weight: 1, Warmup: warmup}
}

// ips returns the node's outbound IPs by address.
func ips(t *testing.T, n *testnode.Node) map[string]api.IP {
	t.Helper()
	var list []api.IP
	n.API(t, "GET", "/ips", nil, 200, &list)
	out := map[string]api.IP{}
	for _, ip := range list {
		out[ip.Address] = ip
	}
	return out
}

// waitIP polls GET /ips until ok holds for address.
func waitIP(t *testing.T, n *testnode.Node, address string, what string, ok func(api.IP) bool) api.IP {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ip := ips(t, n)[address]
		if ok(ip) {
			return ip
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not %s: %+v", address, what, ip)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendN sends n messages from alice@acme.test to rcpt and returns their queue ids.
func sendN(t *testing.T, e *env, n int, rcpt, subject string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{rcpt},
			message("alice@acme.test", rcpt, fmt.Sprintf("%s %d", subject, i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, queueID(t, reply))
	}
	return ids
}

// sources counts the client addresses of the messages received from index from on.
func sources(msgs []testkit.Received, from int) map[string]int {
	out := map[string]int{}
	for _, m := range msgs[from:] {
		out[m.RemoteIP]++
	}
	return out
}

func TestPoolsDNSBLListingFallbackAndReturn(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Pools = []config.Pool{
			{Name: "default", IPs: []config.PoolAddr{addr("127.0.0.20", "out20.easymail.test")}},
			{Name: "main", IPs: []config.PoolAddr{addr("127.0.0.2", "out2.easymail.test"), addr("127.0.0.3", "out3.easymail.test")}},
			{Name: "backup", IPs: []config.PoolAddr{addr("127.0.0.5", "out5.easymail.test")}},
		}
		c.RBL.Zones = []config.RBLZone{{Zone: "bl.test"}}
		c.RBL.Interval = 200 * time.Millisecond
		c.RBL.Hold = 600 * time.Millisecond
		c.OperatorEmail = "noc@ops.test"
	})
	e.n.API(t, "PATCH", "/customers/"+e.custID, map[string]string{"pool": "main", "fallback_pool": "backup"}, 200, nil)
	mx := e.mx(t, "dest.test", 11)
	ops := e.mx(t, "ops.test", 12)
	e.dns.AddPTR("127.0.0.2", "out2.easymail.test")
	e.dns.AddA("out2.easymail.test", "127.0.0.2")

	// Mail leaves from the customer's pool only, from both of its IPs.
	sendN(t, e, 4, "bob@dest.test", "before")
	got := sources(mx.WaitMessages(t, 4, 15*time.Second), 0)
	if got["127.0.0.2"] == 0 || got["127.0.0.3"] == 0 || got["127.0.0.2"]+got["127.0.0.3"] != 4 {
		t.Fatalf("sources %v, want 127.0.0.2 and 127.0.0.3 only", got)
	}
	// The PTR was published after the node started: a later check confirms it.
	ip2 := waitIP(t, e.n, "127.0.0.2", "FCrDNS-confirmed", func(ip api.IP) bool { return ip.FCrDNS.Status == api.FCrDNSOK })
	if ip2.State != api.IPActive || ip2.LastCheck == nil || ip2.Last24h.Sent == 0 {
		t.Fatalf("127.0.0.2 before listing: %+v", ip2)
	}
	if ip3 := ips(t, e.n)["127.0.0.3"]; ip3.FCrDNS.Status != api.FCrDNSMismatch || !strings.Contains(ip3.FCrDNS.Detail, "no PTR") {
		t.Fatalf("FCrDNS warning of 127.0.0.3: %+v", ip3.FCrDNS)
	}

	// The DNSBL lists 127.0.0.2: it leaves rotation, and the operator is told.
	e.dns.AddA("2.0.0.127.bl.test", "127.0.0.2")
	e.dns.AddTXT("2.0.0.127.bl.test", "Listed for spam, see https://bl.test/127.0.0.2")
	ip2 = waitIP(t, e.n, "127.0.0.2", "listed", func(ip api.IP) bool { return ip.State == api.IPListed })
	if len(ip2.Listings) != 1 || ip2.Listings[0].Zone != "bl.test" || ip2.Listings[0].Code != "127.0.0.2" ||
		!strings.Contains(ip2.Listings[0].Reason, "Listed for spam") {
		t.Fatalf("listing %+v", ip2)
	}
	sendN(t, e, 4, "bob@dest.test", "listed")
	if got := sources(mx.WaitMessages(t, 8, 15*time.Second), 4); got["127.0.0.3"] != 4 {
		t.Fatalf("with 127.0.0.2 listed, sources %v, want 127.0.0.3 only", got)
	}
	notice := ops.WaitMessages(t, 1, 15*time.Second)[0]
	if notice.From != "postmaster@relay.easymail.test" || notice.To[0] != "noc@ops.test" ||
		!strings.Contains(string(notice.Data), "127.0.0.2 listed") || !strings.Contains(string(notice.Data), "bl.test (127.0.0.2") {
		t.Fatalf("operator notice from %s to %v:\n%s", notice.From, notice.To, notice.Data)
	}
	if m := metricsText(t, e.n); !strings.Contains(m, `easymail_ip_listed{ip="127.0.0.2",zone="bl.test"} 1`) ||
		!strings.Contains(m, `easymail_ip_state{ip="127.0.0.2",state="listed"} 1`) ||
		!strings.Contains(m, `easymail_rbl_checks_total{result="listed",zone="bl.test"}`) {
		t.Fatalf("metrics:\n%s", m)
	}

	// Both IPs of the pool listed: the fallback pool carries the mail.
	e.dns.AddA("3.0.0.127.bl.test", "127.0.0.3")
	waitIP(t, e.n, "127.0.0.3", "listed", func(ip api.IP) bool { return ip.State == api.IPListed })
	sendN(t, e, 3, "bob@dest.test", "fallback")
	if got := sources(mx.WaitMessages(t, 11, 15*time.Second), 8); got["127.0.0.5"] != 3 {
		t.Fatalf("with the pool listed, sources %v, want the fallback 127.0.0.5 only", got)
	}

	// Delisted, the IPs come back after the hold.
	e.dns.Remove("2.0.0.127.bl.test", dns.TypeA)
	e.dns.Remove("2.0.0.127.bl.test", dns.TypeTXT)
	e.dns.Remove("3.0.0.127.bl.test", dns.TypeA)
	held := waitIP(t, e.n, "127.0.0.2", "delisted", func(ip api.IP) bool { return len(ip.Listings) == 0 })
	if held.State == api.IPListed && held.HoldUntil == nil {
		t.Fatalf("delisted and held without a hold time: %+v", held)
	}
	for _, a := range []string{"127.0.0.2", "127.0.0.3"} {
		waitIP(t, e.n, a, "back in rotation", func(ip api.IP) bool { return ip.State == api.IPActive })
	}
	sendN(t, e, 4, "bob@dest.test", "after")
	got = sources(mx.WaitMessages(t, 15, 15*time.Second), 11)
	if got["127.0.0.2"] == 0 || got["127.0.0.2"]+got["127.0.0.3"] != 4 {
		t.Fatalf("after delisting, sources %v", got)
	}
	if m := metricsText(t, e.n); !strings.Contains(m, `easymail_ip_listed{ip="127.0.0.2",zone="bl.test"} 0`) {
		t.Fatalf("metrics after delisting:\n%s", m)
	}
}

func TestPoolsDNSBLRefusalCodeIsNotAListing(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Pools = []config.Pool{{Name: "default", IPs: []config.PoolAddr{addr("127.0.0.2", "out2.easymail.test")}}}
		c.RBL.Zones = []config.RBLZone{{Zone: "bl.test"}, {Zone: "strict.test", Refused: []string{"127.0.0.1"}}}
		c.RBL.Interval = 200 * time.Millisecond
	})
	mx := e.mx(t, "dest.test", 11)
	// Spamhaus answers 127.255.255.254 to a public resolver; this zone documents 127.0.0.1 as its refusal.
	e.dns.AddA("2.0.0.127.bl.test", "127.255.255.254")
	e.dns.AddA("2.0.0.127.strict.test", "127.0.0.1")
	var ip api.IP
	e.n.API(t, "POST", "/ips/127.0.0.2/check", nil, 200, &ip)
	if ip.State != api.IPActive || len(ip.Listings) != 0 || len(ip.CheckErrors) != 2 ||
		!strings.Contains(ip.CheckErrors[0].Error, "refused the query (answer 127.255.255.254)") {
		t.Fatalf("after a check answered with refusal codes: %+v", ip)
	}
	// Periodic checks agree, and mail still leaves from the IP.
	if ip.LastCheck == nil {
		t.Fatalf("the check left no time: %+v", ip)
	}
	manual := *ip.LastCheck
	waitIP(t, e.n, "127.0.0.2", "checked again", func(ip api.IP) bool { return ip.LastCheck != nil && ip.LastCheck.After(manual) })
	sendN(t, e, 2, "bob@dest.test", "refused")
	if got := sources(mx.WaitMessages(t, 2, 15*time.Second), 0); got["127.0.0.2"] != 2 {
		t.Fatalf("sources %v", got)
	}
	if ip := ips(t, e.n)["127.0.0.2"]; ip.State != api.IPActive {
		t.Fatalf("IP taken out by a refusal code: %+v", ip)
	}
}

func TestPoolsReceiverBlockRepliesPauseTheIPForThatDestination(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Pools = []config.Pool{
			{Name: "default", IPs: []config.PoolAddr{addr("127.0.0.20", "out20.easymail.test")}},
			{Name: "main", IPs: []config.PoolAddr{addr("127.0.0.2", "out2.easymail.test")}},
			{Name: "backup", IPs: []config.PoolAddr{addr("127.0.0.5", "out5.easymail.test")}},
		}
		c.IPPool.BlockThreshold = 2
		c.IPPool.PauseFor = time.Hour
	})
	e.n.API(t, "PATCH", "/customers/"+e.custID, map[string]string{"pool": "main", "fallback_pool": "backup"}, 200, nil)
	blocky := e.mx(t, "blocky.test", 13)
	other := e.mx(t, "other.test", 11)
	blocky.FailNext(2, 421, [3]int{4, 7, 0}, "[TSS04] Messages from 127.0.0.2 temporarily deferred due to user complaints")
	ids := sendN(t, e, 2, "bob@blocky.test", "blocked")
	// Both are deferred from 127.0.0.2; their retries leave from the fallback pool.
	got := blocky.WaitMessages(t, 2, 20*time.Second)
	if s := sources(got, 0); s["127.0.0.5"] != 2 {
		t.Fatalf("blocky.test got mail from %v, want the fallback 127.0.0.5 after the pause", s)
	}
	// Two refusals from 127.0.0.2 in all, then the fallback. Which message took them depends on how the
	// first attempts and the retries interleave (a slow machine may retry the first before trying the second).
	blocks := 0
	for _, id := range ids {
		tr := e.waitStatus(t, id, "delivered")
		for i, a := range tr.Attempts {
			last := i == len(tr.Attempts)-1
			switch {
			case last && a.OutboundIP == "127.0.0.5" && a.Code == 250:
			case !last && a.OutboundIP == "127.0.0.2" && a.Code/100 == 4:
				blocks++
			default:
				t.Fatalf("attempts %+v", tr.Attempts)
			}
		}
	}
	if blocks != 2 {
		t.Fatalf("%d attempts refused from 127.0.0.2, want 2 (the block threshold)", blocks)
	}
	ip := ips(t, e.n)["127.0.0.2"]
	if ip.State != api.IPActive || len(ip.PausedDestinations) != 1 || ip.PausedDestinations[0].Domain != "blocky.test" ||
		!strings.Contains(ip.PausedDestinations[0].Reason, "TSS04") || ip.Last24h.Blocked != 2 {
		t.Fatalf("127.0.0.2 %+v", ip)
	}
	// Other destinations still get mail from the IP.
	sendN(t, e, 2, "bob@other.test", "other")
	if s := sources(other.WaitMessages(t, 2, 15*time.Second), 0); s["127.0.0.2"] != 2 {
		t.Fatalf("other.test got mail from %v, want 127.0.0.2", s)
	}
	// Resuming the IP ends the destination pause.
	e.n.API(t, "POST", "/ips/127.0.0.2/resume", nil, 200, &ip)
	if len(ip.PausedDestinations) != 0 {
		t.Fatalf("after resume: %+v", ip)
	}
	sendN(t, e, 1, "bob@blocky.test", "resumed")
	if s := sources(blocky.WaitMessages(t, 3, 15*time.Second), 2); s["127.0.0.2"] != 1 {
		t.Fatalf("after resume blocky.test got mail from %v", s)
	}
}

func TestPoolsWarmingIPNeverExceedsItsDailyCap(t *testing.T) {
	dnsSrv := testkit.NewDNS(t)
	mxp := testkit.ReserveMXPort(t)
	dir := t.TempDir()
	configure := func(c *config.Config) {
		c.Pools = []config.Pool{
			{Name: "default", IPs: []config.PoolAddr{addr("127.0.0.20", "out20.easymail.test")}},
			{Name: "warm", IPs: []config.PoolAddr{addr("127.0.0.2", "out2.easymail.test", 3, 10)}},
		}
	}
	n := testnode.Start(t, testnode.Options{DNS: dnsSrv, DeliveryPort: mxp.Port(), DataDir: dir, Configure: configure})
	e := &env{n: n, dns: dnsSrv, mxp: mxp}
	e.custID = n.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	n.API(t, "PATCH", "/customers/"+e.custID, map[string]string{"pool": "warm"}, 200, nil)
	mx := e.mx(t, "dest.test", 11)

	ids := sendN(t, e, 5, "bob@dest.test", "warm")
	mx.WaitMessages(t, 3, 15*time.Second)
	// Two rounds of retries: the two messages above the cap are deferred, each after at least two attempts.
	tried := retriedAtLeast(t, e, ids, 2, 4)
	if got := sources(mx.Messages(), 0); got["127.0.0.2"] != 3 || len(mx.Messages()) != 3 {
		t.Fatalf("sources %v, want 3 (the cap) from 127.0.0.2", got)
	}
	ip := ips(t, n)["127.0.0.2"]
	if ip.State != api.IPWarming || ip.Warmup == nil || ip.Warmup.Cap != 3 || ip.Warmup.SentToday != 3 {
		t.Fatalf("warming IP %+v", ip)
	}
	deferred := 0
	for _, id := range ids {
		if tr := e.trace(t, id); tr.Status == "deferred" {
			deferred++
		}
	}
	if deferred != 2 {
		t.Fatalf("%d messages deferred, want 2", deferred)
	}

	// The count survives a restart.
	n.Stop(t)
	n = testnode.Start(t, testnode.Options{DNS: dnsSrv, DeliveryPort: mxp.Port(), DataDir: dir, Configure: configure})
	e.n = n
	// The new node retries them, and the cap still holds.
	retriedAtLeast(t, e, ids, 2, tried+2)
	if len(mx.Messages()) != 3 {
		t.Fatalf("%d messages after a restart, want still 3", len(mx.Messages()))
	}
	if ip := ips(t, n)["127.0.0.2"]; ip.Warmup == nil || ip.Warmup.SentToday != 3 {
		t.Fatalf("after restart %+v", ip.Warmup)
	}
	// Another IP in the pool takes the traffic above the cap.
	n.API(t, "POST", "/pools/warm/ips", map[string]any{"address": "127.0.0.3", "helo": "out3.easymail.test", "warmup": []int{}}, 201, nil)
	got := sources(mx.WaitMessages(t, 5, 15*time.Second), 0)
	if got["127.0.0.2"] != 3 || got["127.0.0.3"] != 2 {
		t.Fatalf("sources %v, want 3 from the warming IP and 2 from the new one", got)
	}
}

// retriedAtLeast waits until n of the messages ids are deferred and the attempts of those add up to at
// least attempts, and returns that sum.
func retriedAtLeast(t *testing.T, e *env, ids []string, n, attempts int) int {
	t.Helper()
	var sum int
	waitFor(t, fmt.Sprintf("%d deferred messages after %d attempts", n, attempts), func() bool {
		deferred := 0
		sum = 0
		for _, id := range ids {
			if tr := e.trace(t, id); tr.Status == "deferred" {
				deferred++
				sum += len(tr.Attempts)
			}
		}
		return deferred == n && sum >= attempts
	})
	return sum
}
