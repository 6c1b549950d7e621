package resolver

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"easymail/internal/testkit"
)

// newResolver returns a resolver asking servers, with a timeout short enough for dead servers.
func newResolver(t *testing.T, servers ...string) *DNS {
	t.Helper()
	r, err := New(servers, 2*time.Second)
	if err != nil {
		t.Fatalf("New(%v): %v", servers, err)
	}
	return r
}

// blackhole returns the address of a UDP socket that never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// deadAddr returns a loopback address where nothing answers and UDP gets "connection refused". The port is
// held until the test ends by a socket connected to another address (the discard port, which sends
// nothing): datagrams from anywhere else match no socket and are refused, and no other program can bind
// the port meanwhile, as it could one that was closed.
func deadAddr(t *testing.T) string {
	t.Helper()
	hold, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hold.Close() })
	return hold.LocalAddr().String()
}

// serveUDP runs a UDP DNS server answering with handler, for answers the test kit does not give.
func serveUDP(t *testing.T, handler dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: handler, NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
	return pc.LocalAddr().String()
}

// wantNotFound fails the test unless err wraps ErrNotFound.
func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("%s: error %v, want ErrNotFound", what, err)
	}
}

// wantTemporary fails the test unless err is an error other than ErrNotFound whose text holds all of parts.
func wantTemporary(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("%s: error %v, want a temporary error", what, err)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not name %q", what, err, p)
		}
	}
}

func TestLookupMXOrder(t *testing.T) {
	d := testkit.NewDNS(t)
	d.AddMX("Example.COM", "MX-C.Example.com.", 10)
	d.AddMX("example.com", "mx-d.example.com", 30)
	d.AddMX("example.com", "mx-b.example.com", 20)
	d.AddMX("example.com", "mx-a.example.com", 10)
	r := newResolver(t, d.Addr())

	firsts := map[string]int{}
	for range 64 {
		mxs, err := r.LookupMX(t.Context(), "example.com")
		if err != nil {
			t.Fatal(err)
		}
		if len(mxs) != 4 {
			t.Fatalf("got %v, want 4 MX", mxs)
		}
		if !slices.IsSortedFunc(mxs, func(a, b MX) int { return int(a.Pref) - int(b.Pref) }) {
			t.Fatalf("not sorted by preference: %v", mxs)
		}
		if mxs[2] != (MX{Host: "mx-b.example.com", Pref: 20}) || mxs[3] != (MX{Host: "mx-d.example.com", Pref: 30}) {
			t.Fatalf("got %v", mxs)
		}
		pair := []string{mxs[0].Host, mxs[1].Host}
		slices.Sort(pair)
		if !slices.Equal(pair, []string{"mx-a.example.com", "mx-c.example.com"}) {
			t.Fatalf("preference 10 hosts %v, want lowercased mx-a and mx-c without dot", pair)
		}
		firsts[mxs[0].Host]++
	}
	// Equal preferences come in random order: in 64 lookups both come first (a failure chance of 2^-63).
	if len(firsts) != 2 {
		t.Errorf("first MX over 64 lookups: %v, want both preference-10 hosts to appear", firsts)
	}
}

func TestLookupMXNull(t *testing.T) {
	d := testkit.NewDNS(t)
	d.AddNullMX("nomail.example")
	r := newResolver(t, d.Addr())
	mxs, err := r.LookupMX(t.Context(), "nomail.example")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mxs, []MX{{Host: "", Pref: 0}}) {
		t.Errorf("null MX gave %#v, want [{Host:\"\" Pref:0}]", mxs)
	}
}

func TestNotFoundAndTemporary(t *testing.T) {
	d := testkit.NewDNS(t)
	d.AddA("host.example.com", "192.0.2.1")
	d.AddA("broken.example.com", "192.0.2.2")
	d.AddA("refused.example.com", "192.0.2.3")
	d.Fail("broken.example.com", dns.RcodeServerFailure)
	d.Fail("refused.example.com", dns.RcodeRefused)
	r := newResolver(t, d.Addr())
	ctx := t.Context()

	_, err := r.LookupMX(ctx, "nxdomain.example.com")
	wantNotFound(t, "NXDOMAIN MX", err)
	if err != nil && !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Errorf("NXDOMAIN error %q does not say so", err)
	}
	_, err = r.LookupMX(ctx, "host.example.com")
	wantNotFound(t, "NODATA MX", err)
	if err != nil && !strings.Contains(err.Error(), "NODATA") {
		t.Errorf("NODATA error %q does not say so", err)
	}
	_, err = r.LookupTXT(ctx, "host.example.com")
	wantNotFound(t, "NODATA TXT", err)
	_, err = r.LookupIP(ctx, "nxdomain.example.com")
	wantNotFound(t, "NXDOMAIN IP", err)
	_, err = r.LookupPTR(ctx, net.ParseIP("192.0.2.99"))
	wantNotFound(t, "NXDOMAIN PTR", err)

	_, err = r.LookupMX(ctx, "broken.example.com")
	wantTemporary(t, "SERVFAIL MX", err, "MX", "broken.example.com", d.Addr(), "SERVFAIL")
	_, err = r.LookupIP(ctx, "broken.example.com")
	wantTemporary(t, "SERVFAIL IP", err, "broken.example.com", d.Addr(), "SERVFAIL")
	_, err = r.LookupTXT(ctx, "refused.example.com")
	wantTemporary(t, "REFUSED TXT", err, "TXT", "refused.example.com", d.Addr(), "REFUSED")

	// Once the server recovers, the same name resolves.
	d.Unfail("broken.example.com")
	if ips, err := r.LookupIP(ctx, "broken.example.com"); err != nil || len(ips) != 1 {
		t.Errorf("after Unfail: %v, %v", ips, err)
	}
}

func TestTimeoutIsTemporary(t *testing.T) {
	addr := blackhole(t)
	r, err := New([]string{addr}, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.LookupMX(t.Context(), "example.com")
	wantTemporary(t, "timeout", err, "MX", "example.com", addr)
}

func TestLookupIP(t *testing.T) {
	d := testkit.NewDNS(t)
	d.AddA("dual.example.com", "2001:db8::1", "192.0.2.1", "192.0.2.2")
	d.AddA("v6.example.com", "2001:db8::6")
	d.AddA("v4.example.com", "192.0.2.4")
	d.AddMX("mxonly.example.com", "mx.example.com", 10)
	d.AddA("4.3.2.127.zen.example.", "127.0.0.2")
	r := newResolver(t, d.Addr())
	ctx := t.Context()

	for _, tc := range []struct {
		host string
		want []string
	}{
		{"dual.example.com", []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"}},
		{"v6.example.com", []string{"2001:db8::6"}},
		{"v4.example.com.", []string{"192.0.2.4"}},
		{"4.3.2.127.zen.example", []string{"127.0.0.2"}},
	} {
		ips, err := r.LookupIP(ctx, tc.host)
		if err != nil {
			t.Errorf("%s: %v", tc.host, err)
			continue
		}
		var got []string
		for _, ip := range ips {
			got = append(got, ip.String())
		}
		// IPv4 first; within a type the server's order.
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.host, got, tc.want)
		}
	}
	_, err := r.LookupIP(ctx, "mxonly.example.com")
	wantNotFound(t, "no address", err)
	_, err = r.LookupIP(ctx, "5.3.2.127.zen.example")
	wantNotFound(t, "DNSBL unlisted", err)
}

func TestLookupIPPartialFailure(t *testing.T) {
	// A answers, AAAA fails: the A records still come back. Both fail in different ways: temporary wins.
	addr := serveUDP(t, func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		q := req.Question[0]
		switch {
		case q.Qtype == dns.TypeAAAA:
			resp.Rcode = dns.RcodeServerFailure
		case q.Name == "v4.example.":
			rr, _ := dns.NewRR("v4.example. 60 IN A 192.0.2.1")
			resp.Answer = append(resp.Answer, rr)
		}
		w.WriteMsg(resp)
	})
	r := newResolver(t, addr)
	ips, err := r.LookupIP(t.Context(), "v4.example")
	if err != nil || len(ips) != 1 || !ips[0].Equal(net.ParseIP("192.0.2.1")) {
		t.Errorf("A with failing AAAA: %v, %v", ips, err)
	}
	_, err = r.LookupIP(t.Context(), "none.example")
	wantTemporary(t, "NODATA A, SERVFAIL AAAA", err, "AAAA", "none.example", "SERVFAIL")
}

func TestLookupTXT(t *testing.T) {
	d := testkit.NewDNS(t)
	long := strings.Repeat("p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", 12) // 552 bytes: 3 strings
	d.AddTXT("sel._domainkey.example.com", long)
	d.AddTXT("example.com", "v=spf1 -all", `odd "quoted" back\slash`+"\x00\xff")
	special := strings.Repeat(`"\;`+"\n", 100) // 400 bytes needing escapes, across two strings
	d.AddTXT("special.example.com", special)
	r := newResolver(t, d.Addr())

	txts, err := r.LookupTXT(t.Context(), "sel._domainkey.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(txts) != 1 || txts[0] != long {
		t.Errorf("chunked TXT came back as %d records, first %d bytes; want the %d bytes joined", len(txts), len(txts[0]), len(long))
	}
	txts, err = r.LookupTXT(t.Context(), "special.example.com")
	if err != nil || len(txts) != 1 || txts[0] != special {
		t.Errorf("TXT with special bytes across strings: %q, %v", txts, err)
	}
	txts, err = r.LookupTXT(t.Context(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(txts)
	if want := []string{`odd "quoted" back\slash` + "\x00\xff", "v=spf1 -all"}; !slices.Equal(txts, want) {
		t.Errorf("TXT = %q, want %q", txts, want)
	}
}

func TestLookupPTR(t *testing.T) {
	d := testkit.NewDNS(t)
	d.AddPTR("192.0.2.25", "Mail.Example.com.")
	d.AddPTR("2001:db8::25", "mail6.example.com")
	r := newResolver(t, d.Addr())
	for ip, want := range map[string]string{"192.0.2.25": "mail.example.com", "2001:db8::25": "mail6.example.com"} {
		names, err := r.LookupPTR(t.Context(), net.ParseIP(ip))
		if err != nil {
			t.Errorf("%s: %v", ip, err)
			continue
		}
		if !slices.Equal(names, []string{want}) {
			t.Errorf("%s: %v, want [%s]", ip, names, want)
		}
	}
	// A 4-byte IPv4 address works as well as the 16-byte form.
	if names, err := r.LookupPTR(t.Context(), net.IPv4(192, 0, 2, 25).To4()); err != nil || len(names) != 1 {
		t.Errorf("4-byte IPv4: %v, %v", names, err)
	}
}

func TestCNAMEFollowing(t *testing.T) {
	d := testkit.NewDNS(t)
	d.AddCNAME("www.example.com", "web.example.com")
	d.AddCNAME("web.example.com", "host.example.net")
	d.AddA("host.example.net", "192.0.2.80", "2001:db8::80")
	d.AddCNAME("mail.example.com", "mailhost.example.net")
	d.AddMX("mailhost.example.net", "mx.example.net", 5)
	d.AddCNAME("dangling.example.com", "gone.example.net")
	d.AddCNAME("nodata.example.com", "host.example.net")
	r := newResolver(t, d.Addr())
	ctx := t.Context()

	ips, err := r.LookupIP(ctx, "www.example.com")
	if err != nil || len(ips) != 2 || !ips[0].Equal(net.ParseIP("192.0.2.80")) {
		t.Errorf("IP through 2 CNAMEs: %v, %v", ips, err)
	}
	mxs, err := r.LookupMX(ctx, "mail.example.com")
	if err != nil || !slices.Equal(mxs, []MX{{Host: "mx.example.net", Pref: 5}}) {
		t.Errorf("MX through CNAME: %v, %v", mxs, err)
	}
	_, err = r.LookupIP(ctx, "dangling.example.com")
	wantNotFound(t, "CNAME to NXDOMAIN", err)
	_, err = r.LookupMX(ctx, "nodata.example.com")
	wantNotFound(t, "CNAME to NODATA", err)
}

func TestAnswerValidation(t *testing.T) {
	// A server that answers with records of other names, a CNAME loop, or another question.
	addr := serveUDP(t, func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		add := func(s string) {
			rr, err := dns.NewRR(s)
			if err != nil {
				panic(err)
			}
			resp.Answer = append(resp.Answer, rr)
		}
		switch req.Question[0].Name {
		case "poison.example.":
			add("other.example. 60 IN A 192.0.2.66")
		case "loop.example.":
			add("loop.example. 60 IN CNAME loop2.example.")
			add("loop2.example. 60 IN CNAME LOOP.example.")
		case "unordered.example.":
			// The target's record before the CNAME, and an unrelated record: order does not matter.
			add("target.example. 60 IN A 192.0.2.7")
			add("unrelated.example. 60 IN A 192.0.2.66")
			add("Unordered.Example. 60 IN CNAME Target.Example.")
		case "wrongq.example.":
			resp.Question[0].Name = "other.example."
			add("other.example. 60 IN A 192.0.2.66")
		}
		w.WriteMsg(resp)
	})
	r := newResolver(t, addr)
	ctx := t.Context()

	_, err := r.LookupIP(ctx, "poison.example")
	wantNotFound(t, "records of another name only", err)
	_, err = r.LookupIP(ctx, "loop.example")
	wantTemporary(t, "CNAME loop", err, "loop")
	ips, err := r.LookupIP(ctx, "unordered.example")
	if err != nil || len(ips) != 1 || !ips[0].Equal(net.ParseIP("192.0.2.7")) {
		t.Errorf("CNAME after its target: %v, %v", ips, err)
	}
	_, err = r.LookupIP(ctx, "wrongq.example")
	wantTemporary(t, "answer to another question", err, "another question")
}

func TestQueryFormat(t *testing.T) {
	// RFC 1035 §4.1.1 RD, RFC 6891 EDNS0 with a 4096-byte buffer, the name made fully qualified.
	var (
		mu   sync.Mutex
		seen []*dns.Msg
	)
	addr := serveUDP(t, func(w dns.ResponseWriter, req *dns.Msg) {
		mu.Lock()
		seen = append(seen, req.Copy())
		mu.Unlock()
		resp := new(dns.Msg)
		resp.SetReply(req)
		resp.Rcode = dns.RcodeNameError
		w.WriteMsg(resp)
	})
	r := newResolver(t, addr)
	_, err := r.LookupMX(t.Context(), "Example.COM")
	wantNotFound(t, "NXDOMAIN", err)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("server got %d queries, want 1", len(seen))
	}
	q := seen[0]
	if !q.RecursionDesired {
		t.Error("RD not set")
	}
	if opt := q.IsEdns0(); opt == nil || opt.UDPSize() != 4096 {
		t.Errorf("EDNS0 OPT %v, want a 4096-byte buffer", opt)
	}
	if len(q.Question) != 1 || q.Question[0].Name != "Example.COM." || q.Question[0].Qtype != dns.TypeMX {
		t.Errorf("question %v, want MX Example.COM. as given plus the dot", q.Question)
	}
}

func TestTCPFallbackOnTruncation(t *testing.T) {
	d := testkit.NewDNS(t)
	var want []string
	for i := range 30 { // 30 × 210 bytes: more than the 4096-byte EDNS0 buffer
		want = append(want, strings.Repeat(string(rune('a'+i%26)), 200)+strings.Repeat(string(rune('0'+i%10)), 10))
	}
	d.AddTXT("big.example.com", want...)
	r := newResolver(t, d.Addr())

	got, err := r.LookupTXT(t.Context(), "big.example.com")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got %d TXT records, want all %d", len(got), len(want))
	}
	if n := d.Queries(); n != 2 {
		t.Errorf("server answered %d queries, want 2 (UDP truncated, then TCP)", n)
	}
}

func TestServerFallback(t *testing.T) {
	good := testkit.NewDNS(t)
	good.AddMX("example.com", "mx.example.com", 10)
	failing := testkit.NewDNS(t)
	failing.AddMX("example.com", "wrong.example.com", 10)
	failing.Fail("example.com", dns.RcodeServerFailure)

	for _, tc := range []struct {
		name  string
		first string
	}{
		{"refused port", deadAddr(t)},
		{"no answer", blackhole(t)},
		{"SERVFAIL", failing.Addr()},
	} {
		// Long enough for the good server to answer however busy the machine; the blackhole costs it once.
		r, err := New([]string{tc.first, good.Addr()}, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		mxs, err := r.LookupMX(t.Context(), "example.com")
		if err != nil || !slices.Equal(mxs, []MX{{Host: "mx.example.com", Pref: 10}}) {
			t.Errorf("%s first: %v, %v; want the second server's answer", tc.name, mxs, err)
		}
	}

	// NXDOMAIN is an answer: the next server is not asked.
	nx := testkit.NewDNS(t)
	r := newResolver(t, nx.Addr(), good.Addr())
	before := good.Queries()
	_, err := r.LookupMX(t.Context(), "example.com")
	wantNotFound(t, "NXDOMAIN from the first server", err)
	if good.Queries() != before {
		t.Errorf("second server asked after an NXDOMAIN from the first")
	}

	// All servers failing: a temporary error naming each.
	dead := deadAddr(t)
	r = newResolver(t, dead, failing.Addr())
	_, err = r.LookupMX(t.Context(), "example.com")
	wantTemporary(t, "all servers failing", err, dead, failing.Addr(), "SERVFAIL")
}

func TestContextCancel(t *testing.T) {
	r, err := New([]string{blackhole(t)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.LookupMX(ctx, "example.com")
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		if errors.Is(err, ErrNotFound) {
			t.Errorf("cancel reported as ErrNotFound")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("lookup did not return after its context was cancelled")
	}

	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	go func() {
		_, err := r.LookupIP(ctx, "example.com")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("lookup did not return at its context's deadline")
	}

	// An already cancelled context asks nothing.
	d := testkit.NewDNS(t)
	r = newResolver(t, d.Addr())
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if _, err := r.LookupTXT(ctx, "example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if d.Queries() != 0 {
		t.Errorf("a query was sent with a cancelled context")
	}
}

func TestConcurrentLookups(t *testing.T) {
	d := testkit.NewDNS(t)
	d.AddMX("example.com", "mx.example.com", 10)
	d.AddA("mx.example.com", "192.0.2.1")
	r := newResolver(t, d.Addr())
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := r.LookupMX(t.Context(), "example.com"); err != nil {
				t.Error(err)
			}
			if _, err := r.LookupIP(t.Context(), "mx.example.com"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestBadInput(t *testing.T) {
	d := testkit.NewDNS(t)
	r := newResolver(t, d.Addr())
	ctx := t.Context()
	for name, want := range map[string]string{
		"":                                   "empty",
		"bücher.example":                     "A-label",
		"a..example.com":                     "malformed",
		strings.Repeat("a", 64) + ".example": "malformed",
	} {
		_, err := r.LookupMX(ctx, name)
		if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), want) {
			t.Errorf("LookupMX(%q): %v, want an error containing %q", name, err, want)
		}
	}
	if _, err := r.LookupPTR(ctx, nil); err == nil || !strings.Contains(err.Error(), "invalid IP") {
		t.Errorf("LookupPTR(nil): %v", err)
	}
	if d.Queries() != 0 {
		t.Errorf("bad input reached the server")
	}

	for _, tc := range []struct {
		servers []string
		timeout time.Duration
		want    string
	}{
		{[]string{"127.0.0.1"}, time.Second, "host:port"},
		{[]string{":53"}, time.Second, "both parts"},
		{[]string{"127.0.0.1:53"}, 0, "timeout"},
	} {
		if _, err := New(tc.servers, tc.timeout); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%v, %v): %v, want an error containing %q", tc.servers, tc.timeout, err, tc.want)
		}
	}
}

func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("# test\nsearch example.com\nnameserver 127.0.0.53\nnameserver ::1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := newDNS(nil, time.Second, conf)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.53:53", "[::1]:53"}; !slices.Equal(r.servers, want) {
		t.Errorf("servers %v, want %v", r.servers, want)
	}
	// Configured servers win over the file.
	r, err = newDNS([]string{"127.0.0.9:5353"}, time.Second, conf)
	if err != nil || !slices.Equal(r.servers, []string{"127.0.0.9:5353"}) {
		t.Errorf("configured servers: %v, %v", r, err)
	}

	if _, err := newDNS(nil, time.Second, filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing resolv.conf: %v", err)
	}
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, []byte("search example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := newDNS(nil, time.Second, empty); err == nil || !strings.Contains(err.Error(), "no nameserver") {
		t.Errorf("resolv.conf without nameserver: %v", err)
	}
}

func TestUnescapeTXT(t *testing.T) {
	for in, want := range map[string]string{
		"plain":        "plain",
		`a\"b`:         `a"b`,
		`a\\b`:         `a\b`,
		`\000\255x`:    "\x00\xffx",
		`\999`:         "999",
		`trailing\`:    `trailing\`,
		`\12`:          "12",
		`v=DKIM1\; k=`: "v=DKIM1; k=",
	} {
		if got := unescapeTXT(in); got != want {
			t.Errorf("unescapeTXT(%q) = %q, want %q", in, got, want)
		}
	}
}
