package ippool

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"easymail/internal/config"
	"easymail/internal/delivery"
	"easymail/internal/fielderr"
	"easymail/internal/queue"
	"easymail/internal/smtperr"
	"easymail/internal/store"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	ctx = context.Background()
	t0  = time.Date(2030, 1, 7, 10, 0, 0, 0, time.UTC)

	ipA1 = netip.MustParseAddr("192.0.2.1")
	ipA2 = netip.MustParseAddr("192.0.2.2")
	ipB1 = netip.MustParseAddr("198.51.100.1")
)

func settings() config.IPPool {
	c := config.Default().IPPool
	c.BlockThreshold = 3
	c.BlockWindow = time.Hour
	c.PauseFor = 4 * time.Hour
	return c
}

func twoPools() []config.Pool {
	return []config.Pool{
		{Name: "a", IPs: []config.PoolAddr{{Address: ipA1.String(), HELO: "a1.relay.test", Weight: 1},
			{Address: ipA2.String(), HELO: "a2.relay.test", Weight: 3}}},
		{Name: "b", IPs: []config.PoolAddr{{Address: ipB1.String(), HELO: "b1.relay.test"}}},
	}
}

func newPools(t *testing.T, clock *fakeClock, cfg []config.Pool, st Store) *Pools {
	t.Helper()
	p, err := New(ctx, Options{Pools: cfg, IPPool: settings(), Hold: time.Hour, Store: st, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// events drains the queued operator notices.
func events(p *Pools) []Event {
	var out []Event
	for {
		select {
		case e := <-p.events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func pick(t *testing.T, p *Pools, req queue.PickRequest) netip.Addr {
	t.Helper()
	src, err := p.Pick(ctx, req)
	if err != nil {
		t.Fatalf("pick %+v: %v", req, err)
	}
	return src.IP
}

func state(t *testing.T, p *Pools, ip netip.Addr) IP {
	t.Helper()
	v, err := p.IPView(ip)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPickByWeightWithinThePool(t *testing.T) {
	clock := &fakeClock{t: t0}
	p := newPools(t, clock, twoPools(), nil)
	counts := map[netip.Addr]int{}
	for range 40 {
		src, err := p.Pick(ctx, queue.PickRequest{Pool: "a", FallbackPool: "b", Domain: "dest.test"})
		if err != nil {
			t.Fatal(err)
		}
		counts[src.IP]++
		if src.IP == ipA1 && src.HELO != "a1.relay.test" {
			t.Fatalf("HELO %q for %s", src.HELO, src.IP)
		}
	}
	if counts[ipA1] != 10 || counts[ipA2] != 30 || counts[ipB1] != 0 {
		t.Fatalf("picks %v, want 10 from %s, 30 from %s (weights 1:3), none from the fallback", counts, ipA1, ipA2)
	}
	// The default pool is the first.
	if got := pick(t, p, queue.PickRequest{Domain: "x.test"}); got != ipA1 && got != ipA2 {
		t.Fatalf("default pool gave %s", got)
	}
	if _, err := p.Pick(ctx, queue.PickRequest{Pool: "gold"}); err == nil || !strings.Contains(err.Error(), `"gold" is not configured`) {
		t.Fatalf("unknown pool: %v", err)
	}
}

func listed(zone, code string) ZoneResult {
	return ZoneResult{Zone: zone, Listed: true, Code: code, Reason: "spam source"}
}
func clean(zone string) ZoneResult { return ZoneResult{Zone: zone} }

func TestListingLeavesRotationAtOnceAndHoldBringsItBack(t *testing.T) {
	clock := &fakeClock{t: t0}
	p := newPools(t, clock, twoPools(), nil)
	if err := p.ApplyCheck(ctx, ipA2, CheckReport{At: t0, Zones: []ZoneResult{listed("bl.test", "127.0.0.2"), clean("other.test")}}); err != nil {
		t.Fatal(err)
	}
	v := state(t, p, ipA2)
	if v.State != StateListed || len(v.Listings) != 1 || v.Listings[0].Code != "127.0.0.2" || v.Listings[0].Reason != "spam source" ||
		!strings.Contains(v.Reason, "bl.test (127.0.0.2: spam source)") {
		t.Fatalf("after listing: %+v", v)
	}
	ev := events(p)
	if len(ev) != 1 || ev[0].Kind != EventState || ev[0].From != StateActive || ev[0].To != StateListed || ev[0].IP != ipA2 {
		t.Fatalf("events %+v", ev)
	}
	for range 10 {
		if got := pick(t, p, queue.PickRequest{Pool: "a"}); got != ipA1 {
			t.Fatalf("picked the listed IP %s", got)
		}
	}
	// A check that fails leaves the listing alone.
	clock.Add(10 * time.Minute)
	p.ApplyCheck(ctx, ipA2, CheckReport{At: clock.Now(), Zones: []ZoneResult{{Zone: "bl.test", Err: "SERVFAIL"}, clean("other.test")}})
	if v := state(t, p, ipA2); v.State != StateListed || len(v.CheckErrors) != 1 || v.CheckErrors[0].Zone != "bl.test" {
		t.Fatalf("after a failed check: %+v", v)
	}
	// Delisted: held out for rbl.hold.
	clock.Add(10 * time.Minute)
	delisted := clock.Now()
	p.ApplyCheck(ctx, ipA2, CheckReport{At: delisted, Zones: []ZoneResult{clean("bl.test"), clean("other.test")}})
	v = state(t, p, ipA2)
	if v.State != StateListed || len(v.Listings) != 0 || v.HoldUntil == nil || !v.HoldUntil.Equal(delisted.Add(time.Hour)) {
		t.Fatalf("after delisting: %+v", v)
	}
	if ev := events(p); len(ev) != 1 || ev[0].Kind != EventListing {
		t.Fatalf("events at delisting %+v", ev)
	}
	clock.Add(59 * time.Minute)
	p.Tick(ctx)
	if got := pick(t, p, queue.PickRequest{Pool: "a"}); got != ipA1 {
		t.Fatalf("picked %s during the hold", got)
	}
	clock.Add(time.Minute)
	p.Tick(ctx)
	if v := state(t, p, ipA2); v.State != StateActive || v.Reason != "" {
		t.Fatalf("after the hold: %+v", v)
	}
	ev = events(p)
	if len(ev) != 1 || ev[0].From != StateListed || ev[0].To != StateActive || !strings.Contains(ev[0].Subject(), "back in rotation") {
		t.Fatalf("events after the hold %+v", ev)
	}
	seen := map[netip.Addr]bool{}
	for range 4 {
		seen[pick(t, p, queue.PickRequest{Pool: "a"})] = true
	}
	if !seen[ipA2] {
		t.Fatal("the IP did not come back into rotation")
	}
}

func TestFallbackPoolWhenNoIPIsUsable(t *testing.T) {
	clock := &fakeClock{t: t0}
	p := newPools(t, clock, twoPools(), nil)
	for _, ip := range []netip.Addr{ipA1, ipA2} {
		p.ApplyCheck(ctx, ip, CheckReport{At: t0, Zones: []ZoneResult{listed("bl.test", "127.0.0.4")}})
	}
	if got := pick(t, p, queue.PickRequest{Pool: "a", FallbackPool: "b"}); got != ipB1 {
		t.Fatalf("picked %s, want the fallback pool's %s", got, ipB1)
	}
	_, err := p.Pick(ctx, queue.PickRequest{Pool: "a", Domain: "d.test"})
	if err == nil || !strings.Contains(err.Error(), `pool "a" (2 listed)`) {
		t.Fatalf("no fallback: %v", err)
	}
	p.ApplyCheck(ctx, ipB1, CheckReport{At: t0, Zones: []ZoneResult{listed("bl.test", "127.0.0.4")}})
	_, err = p.Pick(ctx, queue.PickRequest{Pool: "a", FallbackPool: "b"})
	if err == nil || !strings.Contains(err.Error(), `fallback pool "b" (1 listed)`) {
		t.Fatalf("fallback listed too: %v", err)
	}
	// Operator mail (no customer pool) may use any pool; a customer's may not.
	p.Resume(ctx, ipB1)
	p.ApplyCheck(ctx, ipB1, CheckReport{At: t0, Zones: []ZoneResult{clean("bl.test")}})
	clock.Add(2 * time.Hour)
	p.Tick(ctx)
	if got := pick(t, p, queue.PickRequest{}); got != ipB1 {
		t.Fatalf("operator mail picked %s", got)
	}
	if _, err := p.Pick(ctx, queue.PickRequest{Pool: "a"}); err == nil {
		t.Fatal("a customer's mail left from another pool")
	}
}

func blockResult(text string) delivery.Result {
	return delivery.Result{RemoteIP: "203.0.113.5", Rcpts: []delivery.RcptResult{
		{Rcpt: "x@dest.test", Err: &smtperr.Error{Code: 421, Enhanced: [3]int{4, 7, 0}, Message: "remote host mx.dest.test said: " + text}},
	}}
}

func TestBlockRepliesPauseTheIPForThatDestinationOnly(t *testing.T) {
	clock := &fakeClock{t: t0}
	p := newPools(t, clock, twoPools(), nil)
	src := delivery.Source{IP: ipA1, HELO: "a1.relay.test"}
	// Not signals: a local error, and a reply that says nothing of the IP.
	for range 5 {
		p.Observe(src, "yahoo.test", delivery.Result{Rcpts: []delivery.RcptResult{{Err: smtperr.New(451, [3]int{4, 4, 1},
			"Cannot connect to mx.blocked.test[203.0.113.5]")}}})
		p.Observe(src, "yahoo.test", blockResult("452 4.2.2 mailbox full"))
	}
	p.Observe(src, "yahoo.test", blockResult("421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to user complaints"))
	clock.Add(30 * time.Minute)
	p.Observe(src, "yahoo.test", blockResult("421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred"))
	if v := state(t, p, ipA1); len(v.PausedDestinations) != 0 || v.Last24h.Blocked != 2 || v.Last24h.Deferred != 12 {
		t.Fatalf("after 2 signals: %+v", v)
	}
	clock.Add(31 * time.Minute) // the first signal leaves the window
	p.Observe(src, "yahoo.test", blockResult("554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"))
	if v := state(t, p, ipA1); len(v.PausedDestinations) != 0 {
		t.Fatalf("paused although a signal left the window: %+v", v.PausedDestinations)
	}
	p.Observe(src, "yahoo.test", blockResult("550 5.7.606 Access denied, banned sending IP [192.0.2.1]"))
	v := state(t, p, ipA1)
	if v.State != StateActive || len(v.PausedDestinations) != 1 || v.PausedDestinations[0].Domain != "yahoo.test" ||
		!v.PausedDestinations[0].Until.Equal(clock.Now().Add(4*time.Hour)) || !strings.Contains(v.PausedDestinations[0].Reason, "5.7.606") {
		t.Fatalf("after 3 signals in the window: %+v", v)
	}
	ev := events(p)
	if len(ev) != 1 || ev[0].Kind != EventDestPaused || ev[0].Domain != "yahoo.test" {
		t.Fatalf("events %+v", ev)
	}
	for range 8 {
		if got := pick(t, p, queue.PickRequest{Pool: "a", Domain: "yahoo.test"}); got != ipA2 {
			t.Fatalf("yahoo.test got %s, paused for it", got)
		}
	}
	seen := map[netip.Addr]int{}
	for range 8 {
		seen[pick(t, p, queue.PickRequest{Pool: "a", Domain: "other.test"})]++
	}
	if seen[ipA1] == 0 {
		t.Fatal("the IP is paused for other destinations too")
	}
	clock.Add(4 * time.Hour)
	p.Tick(ctx)
	if v := state(t, p, ipA1); len(v.PausedDestinations) != 0 {
		t.Fatalf("pause did not end: %+v", v.PausedDestinations)
	}
	if ev := events(p); len(ev) != 1 || ev[0].Kind != EventDestResumed {
		t.Fatalf("events at the end of the pause %+v", ev)
	}
}

func TestWarmingIPNeverExceedsItsDailyCap(t *testing.T) {
	clock := &fakeClock{t: t0}
	cfg := []config.Pool{{Name: "w", IPs: []config.PoolAddr{
		{Address: ipA1.String(), HELO: "a1.relay.test", Warmup: []int{2, 5}},
		{Address: ipA2.String(), HELO: "a2.relay.test"},
	}}, {Name: "solo", IPs: []config.PoolAddr{{Address: ipB1.String(), HELO: "b1.relay.test", Warmup: []int{3}}}}}
	p := newPools(t, clock, cfg, nil)
	if v := state(t, p, ipA1); v.State != StateWarming || v.Warmup == nil || v.Warmup.Cap != 2 {
		t.Fatalf("new warming IP %+v", v)
	}
	count := func(n int) int {
		c := 0
		for range n {
			if pick(t, p, queue.PickRequest{Pool: "w"}) == ipA1 {
				c++
			}
		}
		return c
	}
	// Alone in its pool, a warming IP at its cap leaves the message waiting.
	for range 3 {
		pick(t, p, queue.PickRequest{Pool: "solo"})
	}
	_, err := p.Pick(ctx, queue.PickRequest{Pool: "solo"})
	if err == nil || !strings.Contains(err.Error(), "warm-up cap") {
		t.Fatalf("over the cap: %v", err)
	}
	if c := count(20); c != 2 {
		t.Fatalf("day 1: warming IP carried %d, want its cap 2", c)
	}
	clock.Add(24 * time.Hour)
	if c := count(20); c != 5 {
		t.Fatalf("day 2: warming IP carried %d, want its cap 5", c)
	}
	clock.Add(24 * time.Hour)
	p.Tick(ctx)
	if v := state(t, p, ipA1); v.State != StateActive || v.Warmup != nil {
		t.Fatalf("after the schedule: %+v", v)
	}
	if c := count(20); c != 10 {
		t.Fatalf("after the schedule: %d of 20, want half", c)
	}
}

func TestOperatorActionsAndInput(t *testing.T) {
	clock := &fakeClock{t: t0}
	p := newPools(t, clock, twoPools(), nil)
	v, err := p.Drain(ctx, ipA1, "")
	if err != nil || v.State != StateDraining || v.Reason != "draining by an operator" {
		t.Fatalf("drain: %+v %v", v, err)
	}
	for range 4 {
		if pick(t, p, queue.PickRequest{Pool: "a"}) != ipA2 {
			t.Fatal("a draining IP got a message")
		}
	}
	// Operator actions are logged, not mailed.
	if ev := events(p); len(ev) != 0 {
		t.Fatalf("operator action mailed: %+v", ev)
	}
	if v, _ := p.Pause(ctx, ipA1, "maintenance"); v.State != StatePaused || v.Reason != "maintenance" {
		t.Fatalf("pause: %+v", v)
	}
	// An operator's pause takes precedence over a listing; resume leaves the listing.
	p.ApplyCheck(ctx, ipA1, CheckReport{At: t0, Zones: []ZoneResult{listed("bl.test", "127.0.0.2")}})
	if v, _ := p.Resume(ctx, ipA1); v.State != StateListed {
		t.Fatalf("resume of a listed IP: %+v", v)
	}
	p.ApplyCheck(ctx, ipA1, CheckReport{At: t0, Zones: []ZoneResult{clean("bl.test")}})
	if v, _ := p.Resume(ctx, ipA1); v.State != StateActive {
		t.Fatalf("resume ends the hold: %+v", v)
	}
	if _, err := p.Pause(ctx, netip.MustParseAddr("203.0.113.9"), ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pause of an unknown IP: %v", err)
	}
	if _, err := p.Pause(ctx, ipA1, "bad\nreason"); !isField(err, "reason") {
		t.Fatalf("control characters in the reason: %v", err)
	}

	bad := []struct {
		pool  string
		in    IPRequest
		field string
	}{
		{"a", IPRequest{Address: "not-an-ip", HELO: "x.relay.test"}, "address"},
		{"a", IPRequest{Address: "", HELO: "x.relay.test"}, "address"},
		{"a", IPRequest{Address: "0.0.0.0", HELO: "x.relay.test"}, "address"},
		{"a", IPRequest{Address: "192.0.2.9"}, "helo"},
		{"a", IPRequest{Address: "192.0.2.9", HELO: "no spaces.test"}, "helo"},
		{"a", IPRequest{Address: "192.0.2.9", HELO: "localhost"}, "helo"},
		{"a", IPRequest{Address: "192.0.2.9", HELO: "x.relay.test", Weight: -1}, "weight"},
		{"a", IPRequest{Address: "192.0.2.9", HELO: "x.relay.test", Weight: 1001}, "weight"},
		{"a", IPRequest{Address: "192.0.2.9", HELO: "x.relay.test", Warmup: []int{10, 0}}, "warmup"},
		{"a", IPRequest{Address: ipB1.String(), HELO: "x.relay.test"}, "address"},
	}
	for _, b := range bad {
		if _, err := p.Add(ctx, b.pool, b.in); !isField(err, b.field) {
			t.Errorf("add %+v: %v, want an error naming %s", b.in, err, b.field)
		}
	}
	var ie *fielderr.Error
	if _, err := p.Add(ctx, "a", IPRequest{Address: ipB1.String(), HELO: "x.relay.test"}); !errors.As(err, &ie) || !ie.Conflict {
		t.Fatalf("duplicate address: %v", err)
	}
	if _, err := p.Add(ctx, "gold", IPRequest{Address: "192.0.2.9", HELO: "x.relay.test"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown pool: %v", err)
	}
	v, err = p.Add(ctx, "a", IPRequest{Address: "::ffff:192.0.2.9", HELO: "X.Relay.Test.", Weight: 2})
	if err != nil || v.Address != "192.0.2.9" || v.HELO != "x.relay.test" || v.State != StateWarming || v.Origin != OriginAPI ||
		v.Warmup.Cap != 50 {
		t.Fatalf("add: %+v %v", v, err)
	}
	v, err = p.Add(ctx, "b", IPRequest{Address: "2001:db8::5", HELO: "v6.relay.test", Warmup: []int{}})
	if err != nil || v.State != StateActive {
		t.Fatalf("add without warm-up: %+v %v", v, err)
	}
	if err := p.Remove(ctx, "b", netip.MustParseAddr("192.0.2.9")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove from the wrong pool: %v", err)
	}
	if err := p.Remove(ctx, "a", netip.MustParseAddr("192.0.2.9")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.IPView(netip.MustParseAddr("192.0.2.9")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed IP still there: %v", err)
	}
	pools := p.PoolViews()
	if len(pools) != 2 || pools[0].Name != "a" || pools[0].IPs != 2 || pools[1].IPs != 2 || pools[1].Usable != 2 {
		t.Fatalf("pools %+v", pools)
	}
}

func isField(err error, field string) bool {
	var ie *fielderr.Error
	return errors.As(err, &ie) && ie.Field == field
}

func TestStatePersistsAcrossRestarts(t *testing.T) {
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := DBStore{DB: db}
	clock := &fakeClock{t: t0}
	cfg := twoPools()
	cfg[1].IPs[0].Warmup = []int{5, 10}
	p := newPools(t, clock, cfg, st)
	p.ApplyCheck(ctx, ipA2, CheckReport{At: t0, Zones: []ZoneResult{listed("bl.test", "127.0.0.2")},
		FCrDNS: FCrDNS{Status: FCrDNSMismatch, Detail: "no PTR"}})
	p.Pause(ctx, ipA1, "maintenance")
	for range 3 {
		pick(t, p, queue.PickRequest{Pool: "b"})
	}
	if _, err := p.Add(ctx, "b", IPRequest{Address: "198.51.100.7", HELO: "b7.relay.test", Warmup: []int{}}); err != nil {
		t.Fatal(err)
	}
	src := delivery.Source{IP: ipA1}
	for range 3 {
		p.Observe(src, "yahoo.test", blockResult("421 4.7.0 [TSS04] deferred"))
	}
	p.Observe(src, "ok.test", delivery.Result{Rcpts: []delivery.RcptResult{{Rcpt: "a@ok.test"}, {Rcpt: "b@ok.test"}}})
	p.Tick(ctx)
	p.flushCounters(ctx)

	clock.Add(time.Minute)
	p = newPools(t, clock, cfg, st)
	a2 := state(t, p, ipA2)
	if a2.State != StateListed || len(a2.Listings) != 1 || a2.Listings[0].Zone != "bl.test" || a2.FCrDNS.Detail != "no PTR" {
		t.Fatalf("listed IP after restart: %+v", a2)
	}
	a1 := state(t, p, ipA1)
	if a1.State != StatePaused || a1.Reason != "maintenance" || len(a1.PausedDestinations) != 1 ||
		a1.Last24h.Sent != 2 || a1.Last24h.Blocked != 3 {
		t.Fatalf("paused IP after restart: %+v", a1)
	}
	if b := state(t, p, ipB1); b.Warmup == nil || b.Warmup.SentToday != 3 {
		t.Fatalf("warm-up count after restart: %+v", b.Warmup)
	}
	if _, err := p.IPView(netip.MustParseAddr("198.51.100.7")); err != nil {
		t.Fatalf("IP added through the API lost: %v", err)
	}
	// The cap holds across the restart: 2 more, then none.
	for range 2 {
		if got := pick(t, p, queue.PickRequest{Pool: "b", Domain: "d.test"}); got != ipB1 && got != netip.MustParseAddr("198.51.100.7") {
			t.Fatal(got)
		}
	}

	// A configured IP removed through the API stays removed; one dropped from the configuration goes.
	if err := p.Remove(ctx, "a", ipA1); err != nil {
		t.Fatal(err)
	}
	p = newPools(t, clock, cfg, st)
	if _, err := p.IPView(ipA1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed configured IP came back: %v", err)
	}
	cfg[0].IPs = cfg[0].IPs[:1] // only ipA1, tombstoned
	p = newPools(t, clock, cfg, st)
	if _, err := p.IPView(ipA2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("IP dropped from the configuration still there: %v", err)
	}
	recs, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Address == ipA2.String() {
			t.Fatalf("stored record of a dropped IP: %+v", r)
		}
	}
	// Added back through the API, the removed IP is a new IP.
	if _, err := p.Add(ctx, "a", IPRequest{Address: ipA1.String(), HELO: "a1.relay.test", Warmup: []int{}}); err != nil {
		t.Fatal(err)
	}
	p = newPools(t, clock, cfg, st)
	if v := state(t, p, ipA1); v.State != StateActive {
		t.Fatalf("re-added IP: %+v", v)
	}
}
