// Command dnsfake is the benchmark's DNS server: it answers, over UDP and TCP on one loopback address, the few
// records the benchmark needs (the destination domain's MX, the MX host's address, the relay's PTR, a
// destination's _mta-sts TXT record) and nothing else, so that Easymail resolves the destination without any
// real resolver.
//
// Usage:
//
//	dnsfake -listen 127.0.0.1:5353 -mx dest.test=sink.bench.test -a sink.bench.test=127.0.0.1 \
//	        -ptr 127.0.0.1=relay.bench.test -txt '_mta-sts.sts.test=v=STSv1; id=bench1'
//
// Each of -mx, -a, -aaaa, -ptr and -txt takes a comma-separated list of name=value pairs and may be repeated. A name
// that has some record gets NOERROR with no answer (NODATA) for the other types; any other name gets NXDOMAIN
// (RFC 2308 §2.1, §2.2).
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/miekg/dns"
)

// pairs is a repeatable flag of comma-separated name=value pairs.
type pairs []string

func (p *pairs) String() string { return strings.Join(*p, ",") }

func (p *pairs) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		k, val, ok := strings.Cut(s, "=")
		if !ok || k == "" || val == "" {
			return fmt.Errorf("%q is not name=value", s)
		}
		*p = append(*p, s)
	}
	return nil
}

// zone maps a fully qualified lower-case name to its records.
type zone map[string][]dns.RR

// ttl is the TTL of every answer.
const ttl = 300

func buildZone(mx, a, aaaa, ptr, txt pairs) (zone, error) {
	z := zone{}
	add := func(rr dns.RR) { z[rr.Header().Name] = append(z[rr.Header().Name], rr) }
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: dns.Fqdn(strings.ToLower(name)), Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	for _, s := range mx {
		name, host, _ := strings.Cut(s, "=")
		if !hostName(name) || !hostName(host) {
			return nil, fmt.Errorf("-mx %s: bad host name %q", s, host)
		}
		add(&dns.MX{Hdr: hdr(name, dns.TypeMX), Preference: 10, Mx: dns.Fqdn(strings.ToLower(host))})
	}
	for _, s := range a {
		name, v, _ := strings.Cut(s, "=")
		ip := net.ParseIP(v)
		if !hostName(name) {
			return nil, fmt.Errorf("-a %s: bad name %q", s, name)
		}
		if ip == nil || ip.To4() == nil {
			return nil, fmt.Errorf("-a %s: %q is not an IPv4 address", s, v)
		}
		add(&dns.A{Hdr: hdr(name, dns.TypeA), A: ip.To4()})
	}
	for _, s := range aaaa {
		name, v, _ := strings.Cut(s, "=")
		ip := net.ParseIP(v)
		if !hostName(name) {
			return nil, fmt.Errorf("-aaaa %s: bad name %q", s, name)
		}
		if ip == nil || ip.To4() != nil {
			return nil, fmt.Errorf("-aaaa %s: %q is not an IPv6 address", s, v)
		}
		add(&dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: ip})
	}
	for _, s := range ptr {
		v, host, _ := strings.Cut(s, "=")
		rev, err := dns.ReverseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("-ptr %s: %v", s, err)
		}
		if !hostName(host) {
			return nil, fmt.Errorf("-ptr %s: bad host name %q", s, host)
		}
		add(&dns.PTR{Hdr: hdr(rev, dns.TypePTR), Ptr: dns.Fqdn(strings.ToLower(host))})
	}
	for _, s := range txt {
		name, v, _ := strings.Cut(s, "=")
		// Owner names of TXT records start with service labels such as _mta-sts (RFC 8552).
		if !hostName(strings.ReplaceAll(name, "_", "x")) {
			return nil, fmt.Errorf("-txt %s: bad name %q", s, name)
		}
		if len(v) > 255 {
			return nil, fmt.Errorf("-txt %s: the text is over 255 bytes", s)
		}
		add(&dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: []string{v}})
	}
	if len(z) == 0 {
		return nil, errors.New("no records: give at least one of -mx, -a, -aaaa, -ptr, -txt")
	}
	return z, nil
}

// hostName reports whether s is a host name: dot-separated labels of letters, digits and hyphens
// (RFC 1123 §2.1).
func hostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// handler answers from the zone and counts queries.
type handler struct {
	z       zone
	queries atomic.Int64
}

func (h *handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	h.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	rrs, known := h.z[strings.ToLower(q.Name)]
	if !known {
		m.Rcode = dns.RcodeNameError
	}
	for _, rr := range rrs {
		if q.Qtype == dns.TypeANY || rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	// Answer the MX host's addresses too, as a real server's additional section would (RFC 1035 §3.3.9).
	for _, rr := range m.Answer {
		if mx, ok := rr.(*dns.MX); ok {
			for _, ad := range h.z[mx.Mx] {
				if t := ad.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
					m.Extra = append(m.Extra, dns.Copy(ad))
				}
			}
		}
	}
	_ = w.WriteMsg(m)
}

func main() {
	var mx, a, aaaa, ptr, txt pairs
	listen := flag.String("listen", "127.0.0.1:5353", "UDP and TCP address to answer on")
	flag.Var(&mx, "mx", "MX records: domain=host[,domain=host...]")
	flag.Var(&a, "a", "A records: name=ipv4[,...]")
	flag.Var(&aaaa, "aaaa", "AAAA records: name=ipv6[,...]")
	flag.Var(&ptr, "ptr", "PTR records: ip=name[,...]")
	flag.Var(&txt, "txt", "TXT records: name=text[,...] (the text without commas)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if flag.NArg() != 0 {
		log.Error("unexpected arguments", "args", flag.Args())
		os.Exit(2)
	}
	z, err := buildZone(mx, a, aaaa, ptr, txt)
	if err != nil {
		log.Error("dnsfake", "err", err)
		os.Exit(2)
	}
	h := &handler{z: z}

	pc, err := net.ListenPacket("udp", *listen)
	if err != nil {
		log.Error("listen udp", "err", err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen tcp", "err", err)
		os.Exit(1)
	}
	servers := []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.ActivateAndServe() }()
	}
	log.Info("dnsfake ready", "listen", *listen, "names", len(z))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Info("dnsfake stopping", "signal", s.String(), "queries", h.queries.Load())
	case err := <-errc:
		log.Error("dnsfake serve", "err", err)
		os.Exit(1)
	}
	for _, s := range servers {
		_ = s.Shutdown()
	}
}
