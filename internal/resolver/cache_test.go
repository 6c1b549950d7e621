package resolver

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"easymail/internal/testkit"
)

// scripted is a DNS server whose answers the test sets per name, counting the queries per name.
type scripted struct {
	mu      sync.Mutex
	answers map[string]func(req, resp *dns.Msg)
	counts  map[string]int
	// hold, when set, delays every answer until it is closed.
	hold chan struct{}
}

func newScripted() *scripted {
	return &scripted{answers: map[string]func(req, resp *dns.Msg){}, counts: map[string]int{}}
}

func (s *scripted) set(name string, f func(req, resp *dns.Msg)) {
	s.mu.Lock()
	s.answers[dns.Fqdn(name)] = f
	s.mu.Unlock()
}

func (s *scripted) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[dns.Fqdn(name)]
}

func (s *scripted) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.mu.Lock()
	q := req.Question[0].Name
	s.counts[q]++
	f, hold := s.answers[q], s.hold
	s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	if f == nil {
		resp.Rcode = dns.RcodeServerFailure
	} else {
		f(req, resp)
	}
	w.WriteMsg(resp)
}

func aRecord(name string, ttl uint32, ip string) dns.RR {
	rr, err := dns.NewRR(dns.Fqdn(name) + " " + strconv.FormatUint(uint64(ttl), 10) + " IN A " + ip)
	if err != nil {
		panic(err)
	}
	return rr
}

func soa(ttl, minimum uint32) dns.RR {
	return &dns.SOA{Hdr: dns.RR_Header{Name: "test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns: "ns.test.", Mbox: "hostmaster.test.", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: minimum}
}

func cachingResolver(t *testing.T, srv *scripted, clock *testkit.Clock, size int) *DNS {
	t.Helper()
	r, err := newDNS([]string{serveUDP(t, srv.serve)}, 2*time.Second, "")
	if err != nil {
		t.Fatal(err)
	}
	r.cache = newCache(CacheOptions{Size: size, MaxTTL: 10 * time.Minute, Now: clock.Now})
	return r
}

// TestCacheKeepsAnswersForTheirTTL: a positive answer is served from the cache until its TTL ends, then
// asked again; a TTL of 0 is never kept; MaxTTL bounds a long TTL.
func TestCacheKeepsAnswersForTheirTTL(t *testing.T) {
	srv := newScripted()
	clock := testkit.NewClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	r := cachingResolver(t, srv, clock, 100)
	ctx := context.Background()
	var ip atomic.Value
	ip.Store("192.0.2.1")
	srv.set("mx.test", func(_, resp *dns.Msg) { resp.Answer = []dns.RR{aRecord("mx.test", 60, ip.Load().(string))} })
	srv.set("zero.test", func(_, resp *dns.Msg) { resp.Answer = []dns.RR{aRecord("zero.test", 0, "192.0.2.9")} })
	srv.set("long.test", func(_, resp *dns.Msg) { resp.Answer = []dns.RR{aRecord("long.test", 86400, "192.0.2.8")} })

	lookup := func(name, want string) {
		t.Helper()
		rrs, err := r.query(ctx, name, dns.TypeA)
		if err != nil || len(rrs) != 1 || rrs[0].(*dns.A).A.String() != want {
			t.Fatalf("A %s: %v %v, want %s", name, rrs, err, want)
		}
	}
	lookup("mx.test", "192.0.2.1")
	ip.Store("192.0.2.2") // the zone changes; the cached answer stands until its TTL ends
	clock.Add(59 * time.Second)
	lookup("MX.test", "192.0.2.1") // names are case-insensitive
	if n := srv.count("mx.test"); n != 1 {
		t.Fatalf("%d queries within the TTL, want 1", n)
	}
	clock.Add(time.Second)
	lookup("mx.test", "192.0.2.2")
	if n := srv.count("mx.test"); n != 2 {
		t.Fatalf("%d queries after the TTL, want 2", n)
	}

	lookup("zero.test", "192.0.2.9")
	lookup("zero.test", "192.0.2.9")
	if n := srv.count("zero.test"); n != 2 {
		t.Fatalf("TTL 0: %d queries, want 2 (not cached)", n)
	}

	lookup("long.test", "192.0.2.8")
	clock.Add(10*time.Minute - time.Second)
	lookup("long.test", "192.0.2.8")
	clock.Add(time.Second)
	lookup("long.test", "192.0.2.8")
	if n := srv.count("long.test"); n != 2 {
		t.Fatalf("TTL beyond MaxTTL: %d queries, want 2 (kept 10 minutes only)", n)
	}
	if st := r.CacheStats(); st.Hits != 2 || st.Entries != 2 {
		t.Fatalf("stats %+v, want 2 hits (mx, long) and 2 entries (mx, long; not zero)", st)
	}
}

// TestCacheNegativeAnswers: NXDOMAIN with an SOA is kept for min(SOA TTL, MINIMUM) and still reads as
// ErrNotFound; without an SOA it is not kept; a SERVFAIL is never kept.
func TestCacheNegativeAnswers(t *testing.T) {
	srv := newScripted()
	clock := testkit.NewClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	r := cachingResolver(t, srv, clock, 100)
	ctx := context.Background()
	srv.set("gone.test", func(_, resp *dns.Msg) { resp.Rcode = dns.RcodeNameError; resp.Ns = []dns.RR{soa(300, 30)} })
	srv.set("nosoa.test", func(_, resp *dns.Msg) { resp.Rcode = dns.RcodeNameError })
	var failing atomic.Bool
	failing.Store(true)
	srv.set("flaky.test", func(_, resp *dns.Msg) {
		if failing.Load() {
			resp.Rcode = dns.RcodeServerFailure
			return
		}
		resp.Answer = []dns.RR{aRecord("flaky.test", 60, "192.0.2.7")}
	})

	for range 2 {
		_, err := r.query(ctx, "gone.test", dns.TypeA)
		wantNotFound(t, "gone.test", err)
	}
	if n := srv.count("gone.test"); n != 1 {
		t.Fatalf("NXDOMAIN with SOA: %d queries, want 1", n)
	}
	clock.Add(30 * time.Second) // MINIMUM 30 < SOA TTL 300
	_, err := r.query(ctx, "gone.test", dns.TypeA)
	wantNotFound(t, "gone.test", err)
	if n := srv.count("gone.test"); n != 2 {
		t.Fatalf("NXDOMAIN after the negative TTL: %d queries, want 2", n)
	}

	for range 2 {
		_, err := r.query(ctx, "nosoa.test", dns.TypeA)
		wantNotFound(t, "nosoa.test", err)
	}
	if n := srv.count("nosoa.test"); n != 2 {
		t.Fatalf("NXDOMAIN without SOA: %d queries, want 2 (not cached)", n)
	}

	if _, err := r.query(ctx, "flaky.test", dns.TypeA); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("SERVFAIL: %v, want a temporary error", err)
	}
	failing.Store(false)
	if rrs, err := r.query(ctx, "flaky.test", dns.TypeA); err != nil || len(rrs) != 1 {
		t.Fatalf("after SERVFAIL: %v %v, want the record (the failure was not cached)", rrs, err)
	}
}

// TestCacheIsBounded: the least recently used answer goes first when the cache is full.
func TestCacheIsBounded(t *testing.T) {
	srv := newScripted()
	clock := testkit.NewClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	r := cachingResolver(t, srv, clock, 2)
	ctx := context.Background()
	for _, n := range []string{"a.test", "b.test", "c.test"} {
		srv.set(n, func(_, resp *dns.Msg) { resp.Answer = []dns.RR{aRecord(n, 60, "192.0.2.1")} })
	}
	for _, n := range []string{"a.test", "b.test", "a.test", "c.test", "a.test", "b.test"} {
		if _, err := r.query(ctx, n, dns.TypeA); err != nil {
			t.Fatal(err)
		}
	}
	// a, b (a used again), c pushes b out; a is a hit; b is asked again.
	if got := [3]int{srv.count("a.test"), srv.count("b.test"), srv.count("c.test")}; got != [3]int{1, 2, 1} {
		t.Fatalf("queries a, b, c = %v, want [1 2 1]", got)
	}
	if st := r.CacheStats(); st.Entries != 2 {
		t.Fatalf("%d entries, want 2", st.Entries)
	}
}

// TestCacheJoinsConcurrentLookups: twenty lookups of one name at the same time send one query, and a caller
// whose context ends stops waiting without failing the others.
func TestCacheJoinsConcurrentLookups(t *testing.T) {
	srv := newScripted()
	clock := testkit.NewClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	r := cachingResolver(t, srv, clock, 100)
	srv.set("busy.test", func(_, resp *dns.Msg) { resp.Answer = []dns.RR{aRecord("busy.test", 60, "192.0.2.3")} })
	hold := make(chan struct{})
	srv.mu.Lock()
	srv.hold = hold
	srv.mu.Unlock()

	impatient, cancel := context.WithCancel(context.Background())
	impatientErr := make(chan error, 1)
	go func() {
		_, err := r.query(impatient, "busy.test", dns.TypeA)
		impatientErr <- err
	}()
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if rrs, err := r.query(context.Background(), "busy.test", dns.TypeA); err == nil && len(rrs) == 1 {
				ok.Add(1)
			}
		})
	}
	// Wait for the one query to reach the server, then give up on the impatient caller.
	for srv.count("busy.test") == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-impatientErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v, want context.Canceled", err)
	}
	close(hold)
	wg.Wait()
	if ok.Load() != 20 {
		t.Fatalf("%d of 20 lookups got the answer", ok.Load())
	}
	if n := srv.count("busy.test"); n != 1 {
		t.Fatalf("%d queries for 21 concurrent lookups, want 1", n)
	}
}
