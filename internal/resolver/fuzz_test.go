package resolver

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzAnswer feeds arbitrary bytes, as a DNS server could send them, through the parts of the resolver that
// interpret answers: unpacking (miekg/dns), answer's selection of records along the CNAME chain, and the
// per-type conversions of LookupMX, LookupTXT, LookupIP and LookupPTR. Nothing may panic, and answer may
// only return records of the type asked, owned by the name asked or a name of its CNAME chain.
func FuzzAnswer(f *testing.F) {
	for _, m := range seedAnswers() {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		resp := new(dns.Msg)
		if err := resp.Unpack(data); err != nil {
			return
		}
		// Ask the question the answer claims to answer, so that the selection logic is reached, and one it
		// does not answer.
		names := []string{"example.test."}
		if len(resp.Question) > 0 {
			names = append(names, resp.Question[0].Name)
		}
		for _, fqdn := range names {
			for _, qtype := range []uint16{dns.TypeMX, dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypePTR} {
				rrs, err := answer(resp, fqdn, qtype)
				if err != nil {
					if len(rrs) != 0 {
						t.Fatalf("records with an error: %v", err)
					}
					continue
				}
				if len(rrs) == 0 {
					t.Fatalf("no records and no error for %s %d", fqdn, qtype)
				}
				for _, rr := range rrs {
					if rr.Header().Rrtype != qtype || rr.Header().Class != dns.ClassINET {
						t.Fatalf("answer for type %d returned %v", qtype, rr)
					}
					interpret(t, rr)
				}
			}
		}
	})
}

// interpret converts a record the way the Lookup methods do.
func interpret(t *testing.T, rr dns.RR) {
	switch rr := rr.(type) {
	case *dns.MX:
		_ = MX{Host: hostName(rr.Mx), Pref: rr.Preference}
	case *dns.TXT:
		var b strings.Builder
		for _, part := range rr.Txt {
			b.WriteString(unescapeTXT(part))
		}
		_ = b.String()
	case *dns.PTR:
		if h := hostName(rr.Ptr); strings.HasSuffix(h, ".") && h != "" {
			t.Fatalf("host name %q keeps its trailing dot", h)
		}
	case *dns.A, *dns.AAAA:
	default:
		t.Fatalf("unexpected record type %T", rr)
	}
}

// seedAnswers are well-formed answers of each kind the resolver reads, and a CNAME chain.
func seedAnswers() []*dns.Msg {
	mk := func(name string, qtype uint16, rrs ...string) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Response = true
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				panic(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		return m
	}
	nx := mk("nx.example.test.", dns.TypeA)
	nx.Rcode = dns.RcodeNameError
	sf := mk("sf.example.test.", dns.TypeMX)
	sf.Rcode = dns.RcodeServerFailure
	return []*dns.Msg{
		mk("example.test.", dns.TypeMX, "example.test. 300 IN MX 10 mx1.example.test.", "example.test. 300 IN MX 20 mx2.example.test."),
		mk("example.test.", dns.TypeMX, "example.test. 300 IN MX 0 ."),
		mk("example.test.", dns.TypeA, "example.test. 300 IN A 192.0.2.1"),
		mk("example.test.", dns.TypeAAAA, "example.test. 300 IN AAAA 2001:db8::1"),
		mk("example.test.", dns.TypeTXT, `example.test. 300 IN TXT "v=spf1 " "include:_spf.example.net -all"`),
		mk("1.2.0.192.in-addr.arpa.", dns.TypePTR, "1.2.0.192.in-addr.arpa. 300 IN PTR host.example.test."),
		mk("example.test.", dns.TypeA, "example.test. 300 IN CNAME a.example.test.", "a.example.test. 300 IN CNAME b.example.test.",
			"b.example.test. 300 IN A 192.0.2.7"),
		mk("example.test.", dns.TypeA, "example.test. 300 IN CNAME a.example.test.", "a.example.test. 300 IN CNAME example.test."),
		nx, sf,
	}
}
