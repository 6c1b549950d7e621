package testkit

// This file is the fake DNS server; the package comment is in mx.go.

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// dnsMaxCNAMEHops bounds the CNAME chains the fake server follows, so that a test's loop ends.
const dnsMaxCNAMEHops = 16

// DNS is a fake authoritative+recursive DNS server for tests. It answers on 127.0.0.1, UDP and TCP on the same
// port, from records the test gives. Names are case-insensitive; a name exists when it has records, when Set
// created it, or when a name below it exists (an empty non-terminal, RFC 8020). A name that does not exist
// gets NXDOMAIN, an existing name without records of the asked type NOERROR with an empty answer (NODATA).
// Answers have AA and RA set and follow CNAME chains through the records it knows. UDP answers larger than the
// client's EDNS0 buffer (512 bytes without EDNS0) are truncated with TC set, as RFC 6891 §7 wants.
//
// DNS is safe for concurrent use: records may change while queries come in.
type DNS struct {
	t       testing.TB
	addr    string
	queries atomic.Int64
	ad      atomic.Bool // answers carry the AD bit (SetAuthenticated)
	ttl     atomic.Uint32

	mu    sync.Mutex
	zone  map[string]map[uint16][]dns.RR // lowercase FQDN → type → records
	fails map[string]int                 // lowercase FQDN → rcode to answer with
}

// SetTTL sets the TTL, in seconds, of the records added from now on. It is 0 at first, so that a resolver's
// cache keeps nothing and a test's change of a record is seen at once; a test of caching sets more.
func (d *DNS) SetTTL(seconds uint32) { d.ttl.Store(seconds) }

// NewDNS starts a DNS server on 127.0.0.1 at a free port, UDP and TCP, and stops it when the test ends.
func NewDNS(t testing.TB) *DNS {
	t.Helper()
	d := &DNS{
		t:     t,
		zone:  map[string]map[uint16][]dns.RR{},
		fails: map[string]int{},
	}
	pc, ln := listenUDPAndTCP(t)
	d.addr = pc.LocalAddr().String()

	udp := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serveDNS)}
	tcp := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(d.serveDNS)}
	for _, srv := range []*dns.Server{udp, tcp} {
		started := make(chan struct{})
		done := make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { done <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("testkit: DNS server on %s did not start: %v", d.addr, err)
		}
		t.Cleanup(func() {
			if err := srv.Shutdown(); err != nil {
				t.Errorf("testkit: stopping DNS server on %s: %v", d.addr, err)
			}
			<-done
		})
	}
	return d
}

// listenUDPAndTCP opens a UDP socket on a free loopback port and a TCP listener on the same port. The port
// the kernel gives for UDP may be taken for TCP, hence the retries.
func listenUDPAndTCP(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	var lastErr error
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testkit: DNS server: listening on UDP: %v", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		lastErr = err
		pc.Close()
	}
	t.Fatalf("testkit: DNS server: no port free for both UDP and TCP: %v", lastErr)
	return nil, nil
}

// Addr returns the server's address, "127.0.0.1:port", for the configuration's dns.servers.
func (d *DNS) Addr() string {
	return d.addr
}

// Queries returns how many queries the server has answered, over UDP and TCP, so that a test can check
// caching or the absence of lookups.
func (d *DNS) Queries() int {
	return int(d.queries.Load())
}

// AddMX adds an MX record of preference pref pointing to host at domain.
func (d *DNS) AddMX(domain, host string, pref uint16) {
	d.t.Helper()
	d.checkName(host)
	d.add(&dns.MX{Hdr: d.header(domain, dns.TypeMX), Preference: pref, Mx: dns.Fqdn(host)})
}

// AddNullMX adds a null MX (RFC 7505 §3: preference 0, exchange ".") at domain.
func (d *DNS) AddNullMX(domain string) {
	d.t.Helper()
	d.add(&dns.MX{Hdr: d.header(domain, dns.TypeMX), Preference: 0, Mx: "."})
}

// AddA adds address records at name: an A record for each IPv4 address, an AAAA record for each IPv6 one.
func (d *DNS) AddA(name string, ips ...string) {
	d.t.Helper()
	if len(ips) == 0 {
		d.t.Fatalf("testkit: AddA(%q) without any address", name)
	}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			d.t.Fatalf("testkit: AddA(%q): %q is not an IP address", name, s)
		}
		if v4 := ip.To4(); v4 != nil {
			d.add(&dns.A{Hdr: d.header(name, dns.TypeA), A: v4})
		} else {
			d.add(&dns.AAAA{Hdr: d.header(name, dns.TypeAAAA), AAAA: ip})
		}
	}
}

// AddTXT adds one TXT record per string at name. A string longer than 255 bytes is split into 255-byte
// character-strings within its record (RFC 1035 §3.3.14, RFC 7208 §3.3), as DKIM keys are published.
func (d *DNS) AddTXT(name string, txts ...string) {
	d.t.Helper()
	if len(txts) == 0 {
		d.t.Fatalf("testkit: AddTXT(%q) without any text", name)
	}
	for _, txt := range txts {
		var parts []string
		for len(txt) > 255 {
			parts = append(parts, escapeTXT(txt[:255]))
			txt = txt[255:]
		}
		parts = append(parts, escapeTXT(txt))
		d.add(&dns.TXT{Hdr: d.header(name, dns.TypeTXT), Txt: parts})
	}
}

// escapeTXT writes raw bytes in the presentation format (RFC 1035 §5.1) that miekg/dns expects in a TXT
// record's strings, so that quotes, backslashes and unprintable bytes reach the wire unchanged.
func escapeTXT(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// AddTLSA adds a TLSA record (RFC 6698) at name ("_25._tcp.mx.example.com"): usage, selector, matching type
// and the association data in hex.
func (d *DNS) AddTLSA(name string, usage, selector, matching uint8, data string) {
	d.t.Helper()
	d.add(&dns.TLSA{Hdr: d.header(name, dns.TypeTLSA), Usage: usage, Selector: selector, MatchingType: matching,
		Certificate: data})
}

// SetAuthenticated makes every answer from now on carry the AD bit or not, as a validating resolver does for
// the answers it validated with DNSSEC (RFC 4035 §3.2.3): the double of a trusted local validating resolver.
func (d *DNS) SetAuthenticated(on bool) {
	d.ad.Store(on)
}

// AddPTR adds a PTR record naming name at the reverse name (in-addr.arpa or ip6.arpa) of ip.
func (d *DNS) AddPTR(ip, name string) {
	d.t.Helper()
	arpa, err := dns.ReverseAddr(ip)
	if err != nil {
		d.t.Fatalf("testkit: AddPTR(%q): %v", ip, err)
	}
	d.checkName(name)
	d.add(&dns.PTR{Hdr: d.header(arpa, dns.TypePTR), Ptr: dns.Fqdn(name)})
}

// AddCNAME makes name an alias of target, replacing any earlier CNAME of name (a name has at most one,
// RFC 1034 §3.6.2).
func (d *DNS) AddCNAME(name, target string) {
	d.t.Helper()
	d.checkName(target)
	rr := &dns.CNAME{Hdr: d.header(name, dns.TypeCNAME), Target: dns.Fqdn(target)}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.typesLocked(name)[dns.TypeCNAME] = []dns.RR{rr}
}

// Set replaces all the records of type rrType at name with rrs, written as zone-file lines such as
// "example.com. 300 IN MX 10 mx.example.com.". With no rrs, name exists without records of that type.
func (d *DNS) Set(name string, rrType uint16, rrs ...string) {
	d.t.Helper()
	d.checkName(name)
	parsed := make([]dns.RR, 0, len(rrs))
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			d.t.Fatalf("testkit: Set(%q): bad record %q: %v", name, s, err)
		}
		if rr == nil {
			d.t.Fatalf("testkit: Set(%q): empty record", name)
		}
		h := rr.Header()
		if !strings.EqualFold(h.Name, dns.Fqdn(name)) {
			d.t.Fatalf("testkit: Set(%q): record %q is for another name", name, s)
		}
		if h.Rrtype != rrType {
			d.t.Fatalf("testkit: Set(%q, %s): record %q has type %s", name, dns.TypeToString[rrType], s, dns.TypeToString[h.Rrtype])
		}
		parsed = append(parsed, rr)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.typesLocked(name)[rrType] = parsed
}

// Remove deletes the records of type rrType at name. A name left without records stops existing.
func (d *DNS) Remove(name string, rrType uint16) {
	d.t.Helper()
	d.checkName(name)
	key := canonical(name)
	d.mu.Lock()
	defer d.mu.Unlock()
	types := d.zone[key]
	delete(types, rrType)
	if len(types) == 0 {
		delete(d.zone, key)
	}
}

// Fail makes the server answer every query for name (or through it, in a CNAME chain) with rcode, such as
// dns.RcodeServerFailure or dns.RcodeRefused, until Unfail.
func (d *DNS) Fail(name string, rcode int) {
	d.t.Helper()
	d.checkName(name)
	if rcode < 0 || rcode > 15 {
		d.t.Fatalf("testkit: Fail(%q): rcode %d does not fit the DNS header (0-15)", name, rcode)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fails[canonical(name)] = rcode
}

// Unfail ends a Fail of name.
func (d *DNS) Unfail(name string) {
	d.t.Helper()
	d.checkName(name)
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.fails, canonical(name))
}

// canonical returns the key of name in the zone: lowercase, fully qualified.
func canonical(name string) string {
	return strings.ToLower(dns.Fqdn(name))
}

// checkName fails the test when name is not a domain name.
func (d *DNS) checkName(name string) {
	d.t.Helper()
	if name == "" {
		d.t.Fatalf("testkit: empty domain name")
	}
	if _, ok := dns.IsDomainName(name); !ok {
		d.t.Fatalf("testkit: %q is not a domain name", name)
	}
}

// header returns the header of a new record of type rrType at name.
func (d *DNS) header(name string, rrType uint16) dns.RR_Header {
	d.t.Helper()
	d.checkName(name)
	return dns.RR_Header{Name: dns.Fqdn(name), Rrtype: rrType, Class: dns.ClassINET, Ttl: d.ttl.Load()}
}

// add adds rr to its name, unless the same record is already there (an RRset holds no duplicates,
// RFC 2181 §5).
func (d *DNS) add(rr dns.RR) {
	h := rr.Header()
	d.mu.Lock()
	defer d.mu.Unlock()
	types := d.typesLocked(h.Name)
	for _, old := range types[h.Rrtype] {
		if dns.IsDuplicate(old, rr) {
			return
		}
	}
	types[h.Rrtype] = append(types[h.Rrtype], rr)
}

// typesLocked returns the records of name by type, creating the name. d.mu must be held.
func (d *DNS) typesLocked(name string) map[uint16][]dns.RR {
	key := canonical(name)
	types := d.zone[key]
	if types == nil {
		types = map[uint16][]dns.RR{}
		d.zone[key] = types
	}
	return types
}

// existsLocked reports whether the name (canonical) exists: it has records, or a name below it has
// (an empty non-terminal). d.mu must be held.
func (d *DNS) existsLocked(key string) bool {
	if _, ok := d.zone[key]; ok {
		return true
	}
	if key == "." {
		return len(d.zone) > 0
	}
	for name := range d.zone {
		if strings.HasSuffix(name, "."+key) {
			return true
		}
	}
	return false
}

// serveDNS answers one query.
func (d *DNS) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	d.queries.Add(1)
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = true
	resp.AuthenticatedData = d.ad.Load()
	switch {
	case req.Opcode != dns.OpcodeQuery:
		resp.Rcode = dns.RcodeNotImplemented
	case len(req.Question) != 1:
		resp.Rcode = dns.RcodeFormatError
	case req.Question[0].Qclass != dns.ClassINET:
		resp.Rcode = dns.RcodeRefused
	default:
		d.resolve(resp, req.Question[0])
	}

	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(4096, false)
		size = int(opt.UDPSize())
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		resp.Truncate(size)
	}
	if err := w.WriteMsg(resp); err != nil {
		d.t.Logf("testkit: DNS server: answering %v: %v", req.Question, err)
	}
}

// resolve fills resp with the answer to q, following CNAMEs (RFC 1034 §4.3.2 step 3.a) through the known
// records. The owner names of the answer are spelled as the query spelled them.
func (d *DNS) resolve(resp *dns.Msg, q dns.Question) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := q.Name
	for range dnsMaxCNAMEHops {
		key := strings.ToLower(name)
		if rcode, ok := d.fails[key]; ok {
			resp.Answer = nil
			resp.Rcode = rcode
			return
		}
		if !d.existsLocked(key) {
			// RFC 6604 §3: after a CNAME, the response code is that of the last name of the chain.
			resp.Rcode = dns.RcodeNameError
			return
		}
		types := d.zone[key]
		var found []dns.RR
		if q.Qtype == dns.TypeANY {
			for _, rrs := range types {
				found = append(found, rrs...)
			}
		} else {
			found = types[q.Qtype]
		}
		if len(found) > 0 {
			for _, rr := range found {
				resp.Answer = append(resp.Answer, renamed(rr, name))
			}
			return
		}
		cnames := types[dns.TypeCNAME]
		if len(cnames) == 0 || q.Qtype == dns.TypeCNAME {
			return // NODATA
		}
		resp.Answer = append(resp.Answer, renamed(cnames[0], name))
		name = cnames[0].(*dns.CNAME).Target
	}
	// A CNAME chain too long or looping: what a recursive server reports for it.
	resp.Answer = nil
	resp.Rcode = dns.RcodeServerFailure
}

// renamed returns a copy of rr owned by name.
func renamed(rr dns.RR, name string) dns.RR {
	c := dns.Copy(rr)
	c.Header().Name = name
	return c
}
