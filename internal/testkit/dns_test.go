package testkit

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// ask sends one query to d over network ("udp" or "tcp"), with an EDNS0 buffer of ednsSize (none when 0).
func ask(t *testing.T, d *DNS, network, name string, qtype uint16, ednsSize uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	if ednsSize > 0 {
		m.SetEdns0(ednsSize, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, d.Addr())
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", dns.TypeToString[qtype], name, network, err)
	}
	return resp
}

func TestDNSAddrIsLoopback(t *testing.T) {
	d := NewDNS(t)
	host, port, err := net.SplitHostPort(d.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, want 127.0.0.1:<port>", d.Addr())
	}
	// Both transports answer on the same port.
	d.AddA("a.example", "192.0.2.1")
	for _, network := range []string{"udp", "tcp"} {
		resp := ask(t, d, network, "a.example.", dns.TypeA, 0)
		if len(resp.Answer) != 1 {
			t.Fatalf("%s: answer %v, want one A", network, resp.Answer)
		}
	}
}

func TestDNSRcodesAndFlags(t *testing.T) {
	d := NewDNS(t)
	d.AddA("host.example.com", "192.0.2.1")

	resp := ask(t, d, "udp", "host.example.com.", dns.TypeA, 0)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("A: rcode %s answer %v", dns.RcodeToString[resp.Rcode], resp.Answer)
	}
	if !resp.Authoritative || !resp.RecursionAvailable || !resp.RecursionDesired {
		t.Errorf("flags AA=%v RA=%v RD=%v, want all set", resp.Authoritative, resp.RecursionAvailable, resp.RecursionDesired)
	}
	if a := resp.Answer[0].(*dns.A); !a.A.Equal(net.ParseIP("192.0.2.1")) {
		t.Errorf("A = %v", a.A)
	}

	// NODATA: the name exists, not the type.
	resp = ask(t, d, "udp", "host.example.com.", dns.TypeMX, 0)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
		t.Errorf("NODATA: rcode %s answer %v", dns.RcodeToString[resp.Rcode], resp.Answer)
	}
	// An empty non-terminal exists too.
	resp = ask(t, d, "udp", "example.com.", dns.TypeA, 0)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
		t.Errorf("empty non-terminal: rcode %s answer %v", dns.RcodeToString[resp.Rcode], resp.Answer)
	}
	// NXDOMAIN.
	resp = ask(t, d, "udp", "nope.example.com.", dns.TypeA, 0)
	if resp.Rcode != dns.RcodeNameError {
		t.Errorf("unknown name: rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
	// A name sharing a suffix is not a parent.
	resp = ask(t, d, "udp", "st.example.com.", dns.TypeA, 0)
	if resp.Rcode != dns.RcodeNameError {
		t.Errorf("st.example.com: rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
}

func TestDNSCaseInsensitive(t *testing.T) {
	d := NewDNS(t)
	d.AddMX("Example.ORG", "mx.example.org", 10)
	resp := ask(t, d, "udp", "eXaMpLe.org.", dns.TypeMX, 0)
	if len(resp.Answer) != 1 {
		t.Fatalf("answer %v, want one MX", resp.Answer)
	}
	if got := resp.Answer[0].Header().Name; got != "eXaMpLe.org." {
		t.Errorf("owner %q, want the query's spelling", got)
	}
	d.Remove("EXAMPLE.org", dns.TypeMX)
	if resp := ask(t, d, "udp", "example.org.", dns.TypeMX, 0); resp.Rcode != dns.RcodeNameError {
		t.Errorf("after Remove of the only type: rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
}

func TestDNSRecordKinds(t *testing.T) {
	d := NewDNS(t)
	d.AddMX("example.net", "mx2.example.net", 20)
	d.AddMX("example.net", "mx1.example.net.", 10)
	d.AddMX("example.net", "mx1.example.net", 10) // duplicate, ignored
	d.AddNullMX("null.example.net")
	d.AddA("dual.example.net", "192.0.2.7", "2001:db8::7")
	d.AddPTR("192.0.2.7", "dual.example.net")
	d.AddPTR("2001:db8::7", "dual.example.net")

	resp := ask(t, d, "udp", "example.net.", dns.TypeMX, 0)
	if len(resp.Answer) != 2 {
		t.Fatalf("MX answer %v, want 2 records", resp.Answer)
	}
	resp = ask(t, d, "udp", "null.example.net.", dns.TypeMX, 0)
	if len(resp.Answer) != 1 || resp.Answer[0].(*dns.MX).Mx != "." || resp.Answer[0].(*dns.MX).Preference != 0 {
		t.Fatalf("null MX answer %v", resp.Answer)
	}
	if resp := ask(t, d, "udp", "dual.example.net.", dns.TypeA, 0); len(resp.Answer) != 1 {
		t.Errorf("A answer %v", resp.Answer)
	}
	resp = ask(t, d, "udp", "dual.example.net.", dns.TypeAAAA, 0)
	if len(resp.Answer) != 1 || !resp.Answer[0].(*dns.AAAA).AAAA.Equal(net.ParseIP("2001:db8::7")) {
		t.Errorf("AAAA answer %v", resp.Answer)
	}
	for _, arpa := range []string{"7.2.0.192.in-addr.arpa.", "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."} {
		resp := ask(t, d, "udp", arpa, dns.TypePTR, 0)
		if len(resp.Answer) != 1 || resp.Answer[0].(*dns.PTR).Ptr != "dual.example.net." {
			t.Errorf("PTR %s answer %v", arpa, resp.Answer)
		}
	}
}

func TestDNSTXTChunks(t *testing.T) {
	d := NewDNS(t)
	long := strings.Repeat("k", 600)
	d.AddTXT("sel._domainkey.example.com", long, `v=spf1 "quoted" back\slash`+"\x01")
	resp := ask(t, d, "tcp", "sel._domainkey.example.com.", dns.TypeTXT, 0)
	if len(resp.Answer) != 2 {
		t.Fatalf("TXT answer %v, want 2 records", resp.Answer)
	}
	// Each 255-byte piece is one character-string of the same record.
	chunks := resp.Answer[0].(*dns.TXT).Txt
	if len(chunks) != 3 || len(chunks[0]) != 255 || len(chunks[1]) != 255 || len(chunks[2]) != 90 {
		lens := []int{}
		for _, c := range chunks {
			lens = append(lens, len(c))
		}
		t.Errorf("long TXT in chunks of %v bytes, want [255 255 90]", lens)
	}
	// miekg/dns presents special bytes escaped; they reached the wire as the raw bytes.
	if got, want := resp.Answer[1].(*dns.TXT).Txt, []string{`v=spf1 \"quoted\" back\\slash\001`}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("special TXT = %q, want %q", got, want)
	}
}

func TestDNSCNAMEChain(t *testing.T) {
	d := NewDNS(t)
	d.AddCNAME("www.example.com", "web.example.com")
	d.AddCNAME("web.example.com", "old.example.com")
	d.AddCNAME("web.example.com", "host.example.com") // replaces the previous CNAME
	d.AddA("host.example.com", "192.0.2.80")
	d.AddCNAME("dangling.example.com", "gone.example.com")
	d.AddCNAME("loop1.example.com", "loop2.example.com")
	d.AddCNAME("loop2.example.com", "loop1.example.com")

	resp := ask(t, d, "udp", "www.example.com.", dns.TypeA, 0)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 3 {
		t.Fatalf("chain: rcode %s answer %v, want CNAME CNAME A", dns.RcodeToString[resp.Rcode], resp.Answer)
	}
	if _, ok := resp.Answer[2].(*dns.A); !ok || resp.Answer[2].Header().Name != "host.example.com." {
		t.Errorf("last record %v, want the A of host.example.com", resp.Answer[2])
	}
	// Asking for the CNAME itself gives it, not the chain.
	if resp := ask(t, d, "udp", "www.example.com.", dns.TypeCNAME, 0); len(resp.Answer) != 1 {
		t.Errorf("CNAME query answer %v, want the one CNAME", resp.Answer)
	}
	resp = ask(t, d, "udp", "dangling.example.com.", dns.TypeA, 0)
	if resp.Rcode != dns.RcodeNameError || len(resp.Answer) != 1 {
		t.Errorf("dangling: rcode %s answer %v, want NXDOMAIN with the CNAME", dns.RcodeToString[resp.Rcode], resp.Answer)
	}
	resp = ask(t, d, "udp", "loop1.example.com.", dns.TypeA, 0)
	if resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("loop: rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
}

func TestDNSSetRemove(t *testing.T) {
	d := NewDNS(t)
	d.AddMX("example.com", "old.example.com", 5)
	d.Set("example.com", dns.TypeMX, "example.com. 300 IN MX 10 mx.example.com.", "EXAMPLE.com. 60 IN MX 20 mx2.example.com.")
	resp := ask(t, d, "udp", "example.com.", dns.TypeMX, 0)
	if len(resp.Answer) != 2 || resp.Answer[0].(*dns.MX).Mx != "mx.example.com." {
		t.Fatalf("after Set: %v", resp.Answer)
	}
	d.AddA("example.com", "192.0.2.1")
	d.Remove("example.com", dns.TypeMX)
	resp = ask(t, d, "udp", "example.com.", dns.TypeMX, 0)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
		t.Errorf("after Remove: rcode %s answer %v, want NODATA", dns.RcodeToString[resp.Rcode], resp.Answer)
	}
	// Set with no records creates the name without records.
	d.Set("empty.example.org", dns.TypeTXT)
	resp = ask(t, d, "udp", "empty.example.org.", dns.TypeTXT, 0)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
		t.Errorf("Set with no records: rcode %s answer %v, want NODATA", dns.RcodeToString[resp.Rcode], resp.Answer)
	}
}

func TestDNSFail(t *testing.T) {
	d := NewDNS(t)
	d.AddA("flaky.example.com", "192.0.2.1")
	d.AddCNAME("alias.example.com", "flaky.example.com")
	d.Fail("FLAKY.example.com", dns.RcodeServerFailure)
	for _, name := range []string{"flaky.example.com.", "alias.example.com."} {
		resp := ask(t, d, "udp", name, dns.TypeA, 0)
		if resp.Rcode != dns.RcodeServerFailure || len(resp.Answer) != 0 {
			t.Errorf("%s failing: rcode %s answer %v", name, dns.RcodeToString[resp.Rcode], resp.Answer)
		}
	}
	d.Fail("nothere.example.com", dns.RcodeRefused)
	if resp := ask(t, d, "udp", "nothere.example.com.", dns.TypeA, 0); resp.Rcode != dns.RcodeRefused {
		t.Errorf("failing unknown name: rcode %s, want REFUSED", dns.RcodeToString[resp.Rcode])
	}
	d.Unfail("flaky.example.com")
	if resp := ask(t, d, "udp", "flaky.example.com.", dns.TypeA, 0); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("after Unfail: rcode %s answer %v", dns.RcodeToString[resp.Rcode], resp.Answer)
	}
}

func TestDNSTruncation(t *testing.T) {
	d := NewDNS(t)
	var txts []string
	for i := range 30 {
		txts = append(txts, strings.Repeat(string(rune('a'+i%26)), 200)+string(rune('0'+i%10)))
	}
	d.AddTXT("big.example.com", txts...)

	for _, tc := range []struct {
		network string
		edns    uint16
		trunc   bool
	}{
		{"udp", 0, true},
		{"udp", 4096, true},
		{"tcp", 0, false},
		{"tcp", 4096, false},
	} {
		resp := ask(t, d, tc.network, "big.example.com.", dns.TypeTXT, tc.edns)
		if resp.Truncated != tc.trunc {
			t.Errorf("%s edns %d: TC=%v, want %v", tc.network, tc.edns, resp.Truncated, tc.trunc)
		}
		if !tc.trunc && len(resp.Answer) != 30 {
			t.Errorf("%s edns %d: %d records, want 30", tc.network, tc.edns, len(resp.Answer))
		}
		if tc.edns > 0 && resp.IsEdns0() == nil {
			t.Errorf("%s: no OPT in the answer to an EDNS0 query", tc.network)
		}
	}
	// A small answer is not truncated over UDP.
	d.AddTXT("small.example.com", "hi")
	if resp := ask(t, d, "udp", "small.example.com.", dns.TypeTXT, 0); resp.Truncated || len(resp.Answer) != 1 {
		t.Errorf("small answer: TC=%v answer %v", resp.Truncated, resp.Answer)
	}
}

func TestDNSBLName(t *testing.T) {
	d := NewDNS(t)
	d.AddA("4.3.2.127.zen.example.", "127.0.0.2")
	d.AddTXT("4.3.2.127.zen.example.", "listed")
	resp := ask(t, d, "udp", "4.3.2.127.zen.example.", dns.TypeA, 0)
	if len(resp.Answer) != 1 || !resp.Answer[0].(*dns.A).A.Equal(net.ParseIP("127.0.0.2")) {
		t.Fatalf("DNSBL answer %v", resp.Answer)
	}
	if resp := ask(t, d, "udp", "5.3.2.127.zen.example.", dns.TypeA, 0); resp.Rcode != dns.RcodeNameError {
		t.Errorf("unlisted IP: rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
}

func TestDNSQueriesAndConcurrency(t *testing.T) {
	d := NewDNS(t)
	if n := d.Queries(); n != 0 {
		t.Fatalf("Queries() = %d before any query", n)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 40)
	for i := range 20 {
		wg.Go(func() {
			name := "h" + string(rune('a'+i)) + ".example.com."
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			c := &dns.Client{Timeout: 5 * time.Second}
			if _, _, err := c.Exchange(m, d.Addr()); err != nil {
				errs <- err.Error()
			}
		})
		// Records change while queries come in.
		d.AddA("h"+string(rune('a'+i))+".example.com", "192.0.2.9")
		d.Remove("h"+string(rune('a'+i))+".example.com", dns.TypeA)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := d.Queries(); n != 20 {
		t.Errorf("Queries() = %d, want 20", n)
	}
}

func TestEscapeTXT(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      "plain",
		`a"b`:        `a\"b`,
		`a\b`:        `a\\b`,
		"\x00\xff~ ": `\000\255~ `,
	} {
		if got := escapeTXT(in); got != want {
			t.Errorf("escapeTXT(%q) = %q, want %q", in, got, want)
		}
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the message and stops the calling goroutine.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestDNSBadInput(t *testing.T) {
	d := NewDNS(t)
	for _, tc := range []struct {
		name string
		call func()
		want string
	}{
		{"bad IP", func() { d.AddA("x.example", "300.1.1.1") }, "not an IP address"},
		{"no IP", func() { d.AddA("x.example") }, "without any address"},
		{"no TXT", func() { d.AddTXT("x.example") }, "without any text"},
		{"bad PTR IP", func() { d.AddPTR("nope", "x.example") }, "AddPTR"},
		{"empty name", func() { d.AddMX("", "mx.example", 1) }, "empty domain name"},
		{"bad name", func() { d.AddCNAME("a..b", "x.example") }, "not a domain name"},
		{"bad zone text", func() { d.Set("x.example", dns.TypeMX, "x.example. IN MX ten mx.") }, "bad record"},
		{"other name", func() { d.Set("x.example", dns.TypeMX, "y.example. 300 IN MX 10 mx.") }, "another name"},
		{"other type", func() { d.Set("x.example", dns.TypeMX, "x.example. 300 IN A 192.0.2.1") }, "has type A"},
		{"bad rcode", func() { d.Fail("x.example", 16) }, "does not fit"},
	} {
		rec := &fatalRecorder{TB: t}
		d.t = rec
		done := make(chan struct{})
		go func() {
			defer close(done)
			tc.call()
		}()
		<-done
		if !strings.Contains(rec.msg, tc.want) {
			t.Errorf("%s: fatal message %q, want it to contain %q", tc.name, rec.msg, tc.want)
		}
	}
	d.t = t
	if resp := ask(t, d, "udp", "x.example.", dns.TypeA, 0); resp.Rcode != dns.RcodeNameError {
		t.Errorf("bad input created records: rcode %s", dns.RcodeToString[resp.Rcode])
	}
}
