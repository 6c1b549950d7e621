package resolver

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// resolvConf is the system resolver configuration read when no server is configured.
const resolvConf = "/etc/resolv.conf"

// ednsBufferSize is the UDP payload size advertised in the EDNS0 OPT record (RFC 6891 §6.2.5). 4096 is the
// customary value; larger answers come back truncated and are retried over TCP.
const ednsBufferSize = 4096

// maxCNAMEHops bounds how many CNAMEs of an answer are followed, so that a looping or absurd chain ends.
const maxCNAMEHops = 16

// DNS is a Resolver that sends queries to recursive DNS servers with github.com/miekg/dns, and keeps their
// answers in a bounded cache for their TTL when made with NewCaching. It is safe for concurrent use.
type DNS struct {
	servers []string
	timeout time.Duration
	udp     *dns.Client
	tcp     *dns.Client
	// cache is nil without caching; inflight joins the lookups of one question.
	cache    *cache
	inflight singleflight.Group
}

// New returns a DNS resolver without a cache that asks servers ("host:port") in order, each query waiting at
// most timeout for one server. When servers is empty the name servers of /etc/resolv.conf are used.
func New(servers []string, timeout time.Duration) (*DNS, error) {
	return newDNS(servers, timeout, resolvConf)
}

// NewCaching is New with an answer cache (CacheOptions; a Size of 0 makes none).
func NewCaching(servers []string, timeout time.Duration, c CacheOptions) (*DNS, error) {
	r, err := newDNS(servers, timeout, resolvConf)
	if err != nil {
		return nil, err
	}
	r.cache = newCache(c)
	return r, nil
}

// CacheStats returns the cache's counters (zero without a cache).
func (r *DNS) CacheStats() CacheStats {
	if r.cache == nil {
		return CacheStats{}
	}
	return r.cache.stats()
}

// newDNS is New with the resolv.conf path as a parameter.
func newDNS(servers []string, timeout time.Duration, confPath string) (*DNS, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("resolver: timeout must be positive, got %v", timeout)
	}
	if len(servers) == 0 {
		conf, err := dns.ClientConfigFromFile(confPath)
		if err != nil {
			return nil, fmt.Errorf("resolver: no DNS server configured and %s unreadable: %w", confPath, err)
		}
		if len(conf.Servers) == 0 {
			return nil, fmt.Errorf("resolver: no DNS server configured and no nameserver in %s", confPath)
		}
		for _, s := range conf.Servers {
			servers = append(servers, net.JoinHostPort(s, conf.Port))
		}
	}
	for i, s := range servers {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return nil, fmt.Errorf("resolver: server %d %q must be host:port: %w", i, s, err)
		}
		if host == "" || port == "" {
			return nil, fmt.Errorf("resolver: server %d %q must be host:port with both parts", i, s)
		}
	}
	return &DNS{
		servers: slices.Clone(servers),
		timeout: timeout,
		udp:     &dns.Client{Net: "udp", Timeout: timeout},
		tcp:     &dns.Client{Net: "tcp", Timeout: timeout},
	}, nil
}

// LookupMX returns the MX records of domain sorted by preference, those of equal preference shuffled
// (RFC 5321 §5.1). A null MX (RFC 7505 §3: a single MX of "." with preference 0) comes back as MX{Host: ""}.
func (r *DNS) LookupMX(ctx context.Context, domain string) ([]MX, error) {
	rrs, err := r.query(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	mxs := make([]MX, 0, len(rrs))
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		mxs = append(mxs, MX{Host: hostName(mx.Mx), Pref: mx.Preference})
	}
	// Shuffle first, then sort stably: records of equal preference keep their random order, spreading the
	// load over them as RFC 5321 §5.1 asks.
	rand.Shuffle(len(mxs), func(i, j int) { mxs[i], mxs[j] = mxs[j], mxs[i] })
	slices.SortStableFunc(mxs, func(a, b MX) int { return int(a.Pref) - int(b.Pref) })
	return mxs, nil
}

// LookupIP returns the addresses of host: its A records, then its AAAA records. Both types are asked (at the
// same time). ErrNotFound comes only when neither type has a record; a temporary failure of one type while
// the other has records still gives those records.
func (r *DNS) LookupIP(ctx context.Context, host string) ([]net.IP, error) {
	qtypes := [2]uint16{dns.TypeA, dns.TypeAAAA}
	var (
		answers [2][]dns.RR
		errs    [2]error
		wg      sync.WaitGroup
	)
	for i, qt := range qtypes {
		wg.Go(func() { answers[i], errs[i] = r.query(ctx, host, qt) })
	}
	wg.Wait()

	var ips []net.IP
	for i := range qtypes {
		for _, rr := range answers[i] {
			switch rr := rr.(type) {
			case *dns.A:
				ips = append(ips, slices.Clone(rr.A)) // a copy: the record may be in the cache
			case *dns.AAAA:
				ips = append(ips, slices.Clone(rr.AAAA))
			}
		}
	}
	if len(ips) > 0 {
		return ips, nil
	}
	// No address: a temporary failure of either type wins over "not found", since the missing answer might
	// have held addresses.
	for _, err := range errs {
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: no A or AAAA record for %s", ErrNotFound, dns.Fqdn(host))
}

// LookupTXT returns the TXT records of name, the character-strings of each record concatenated
// (RFC 7208 §3.3 does so for SPF, and DKIM/DMARC likewise).
func (r *DNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	txts := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		var b strings.Builder
		for _, part := range rr.(*dns.TXT).Txt {
			b.WriteString(unescapeTXT(part))
		}
		txts = append(txts, b.String())
	}
	return txts, nil
}

// LookupPTR returns the names, lowercased and without the trailing dot, that the reverse zone (in-addr.arpa
// for IPv4, ip6.arpa for IPv6; RFC 1035 §3.5, RFC 3596 §2.5) gives for ip.
func (r *DNS) LookupPTR(ctx context.Context, ip net.IP) ([]string, error) {
	if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
		return nil, fmt.Errorf("resolver: PTR lookup of an invalid IP address %v", ip)
	}
	arpa, err := dns.ReverseAddr(ip.String())
	if err != nil {
		return nil, fmt.Errorf("resolver: PTR lookup of %v: %w", ip, err)
	}
	rrs, err := r.query(ctx, arpa, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		names = append(names, hostName(rr.(*dns.PTR).Ptr))
	}
	return names, nil
}

// TLSA is one TLSA record (RFC 6698 §2.1): how a server's certificate is to be matched.
type TLSA struct {
	// Usage is the certificate usage: 2 DANE-TA (a trust anchor of the chain), 3 DANE-EE (the server's own
	// certificate); 0 and 1 are not used for SMTP (RFC 7672 §3.1.3).
	Usage uint8
	// Selector is 0 for the whole certificate, 1 for its SubjectPublicKeyInfo.
	Selector uint8
	// MatchingType is 0 for the data itself, 1 for its SHA-256, 2 for its SHA-512.
	MatchingType uint8
	// Data is the certificate association data.
	Data []byte
}

// LookupTLSA returns the TLSA records at name ("_25._tcp.mx.example.com") and whether the resolver said it
// validated the answer with DNSSEC (the AD bit). A name without TLSA records gives ErrNotFound; secure then
// tells whether that denial was validated.
func (r *DNS) LookupTLSA(ctx context.Context, name string) (recs []TLSA, secure bool, _ error) {
	rrs, ad, err := r.queryAD(ctx, name, dns.TypeTLSA)
	if err != nil {
		return nil, ad, err
	}
	for _, rr := range rrs {
		t := rr.(*dns.TLSA)
		data, err := hex.DecodeString(t.Certificate)
		if err != nil {
			continue // not possible from the wire format; skipped rather than trusted
		}
		recs = append(recs, TLSA{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: data})
	}
	return recs, ad, nil
}

// unescapeTXT undoes the presentation-format escaping (RFC 1035 §5.1: \X and \DDD) that miekg/dns applies
// to TXT character-strings when unpacking them, giving back the bytes of the record.
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b = append(b, c)
			continue
		}
		i++
		if i+2 < len(s) && isDigit(s[i]) && isDigit(s[i+1]) && isDigit(s[i+2]) {
			if n := int(s[i]-'0')*100 + int(s[i+1]-'0')*10 + int(s[i+2]-'0'); n <= 255 {
				b = append(b, byte(n))
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// hostName turns a domain name from an answer into the form Easymail uses: lowercase, no trailing dot. The
// root "." gives "".
func hostName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// checkName rejects names that cannot be asked: empty, malformed, or not in A-label form (the caller converts
// internationalized names with IDNA, RFC 5890 §2.3.2.1, before asking).
func checkName(name string) error {
	if name == "" {
		return errors.New("resolver: empty domain name")
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return fmt.Errorf("resolver: domain name %q is not in A-label (ASCII) form", name)
		}
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return fmt.Errorf("resolver: malformed domain name %q", name)
	}
	return nil
}

// query asks the servers in order for the records of type qtype at name and returns those of the answer
// section that belong to name or to the end of the CNAME chain starting at name. A server that cannot be
// reached or answers with an error other than NXDOMAIN (SERVFAIL, REFUSED...) is skipped for the next one.
func (r *DNS) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	rrs, _, err := r.queryAD(ctx, name, qtype)
	return rrs, err
}

// queryAD is query that also reports whether the answer had the AD bit set (RFC 4035 §3.2.3: the server
// validated it with DNSSEC). It means something only when the server is a validating resolver the relay
// trusts (dns.trust_ad).
func (r *DNS) queryAD(ctx context.Context, name string, qtype uint16) ([]dns.RR, bool, error) {
	if err := checkName(name); err != nil {
		return nil, false, err
	}
	fqdn := dns.Fqdn(name)
	if r.cache == nil {
		a := r.ask(ctx, fqdn, qtype)
		return a.rrs, a.ad, a.err
	}
	k := cacheKey{name: strings.ToLower(fqdn), qtype: qtype}
	if a, ok := r.cache.get(k); ok {
		return a.rrs, a.ad, a.err
	}
	// Lookups of the same question at the same time (twenty deliveries to one domain) share one query. It
	// runs to its own end, bounded by the servers' timeouts, so that one caller's deadline does not fail
	// the others; each caller still waits no longer than its own context.
	ch := r.inflight.DoChan(k.name+"/"+dns.TypeToString[qtype], func() (any, error) {
		shared, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*r.timeout*time.Duration(len(r.servers)))
		defer cancel()
		a := r.ask(shared, fqdn, qtype)
		a.key = k
		if a.err == nil || errors.Is(a.err, ErrNotFound) {
			r.cache.put(a, a.ttl)
		}
		return a, nil
	})
	select {
	case <-ctx.Done():
		return nil, false, fmt.Errorf("resolver: %s %s: %w", dns.TypeToString[qtype], fqdn, ctx.Err())
	case res := <-ch:
		a := res.Val.(*cached)
		return a.rrs, a.ad, a.err
	}
}

// ask sends the question to the servers in order until one answers: the records, or ErrNotFound, with how
// long the answer may be cached; or the failures of every server.
func (r *DNS) ask(ctx context.Context, fqdn string, qtype uint16) *cached {
	what := dns.TypeToString[qtype] + " " + fqdn
	var failures []string
	for _, server := range r.servers {
		if err := contextDone(ctx); err != nil {
			return &cached{err: fmt.Errorf("resolver: %s: %w", what, err)}
		}
		resp, err := r.exchange(ctx, server, fqdn, qtype)
		if err != nil {
			if ctxErr := contextDone(ctx); ctxErr != nil {
				return &cached{err: fmt.Errorf("resolver: %s: %w", what, ctxErr)}
			}
			failures = append(failures, fmt.Sprintf("%s: %v", server, err))
			continue
		}
		rrs, err := answer(resp, fqdn, qtype)
		if errors.Is(err, ErrNotFound) {
			return &cached{ad: resp.AuthenticatedData, ttl: negativeTTL(resp),
				err: fmt.Errorf("%w: %s (%v from %s)", ErrNotFound, what, err, server)}
		}
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", server, err))
			continue
		}
		return &cached{rrs: rrs, ad: resp.AuthenticatedData, ttl: positiveTTL(resp)}
	}
	return &cached{err: fmt.Errorf("resolver: %s: no answer: %s", what, strings.Join(failures, "; "))}
}

// contextDone returns the context's error, or context.DeadlineExceeded as soon as its deadline has passed: the
// connection's deadline, set from the context's, may fire a moment before the context notices.
func contextDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// exchange sends one query to server, over UDP first and again over TCP when the UDP answer is truncated
// (RFC 1035 §4.2.1, RFC 7766 §5). The query asks for recursion (RD) and advertises an EDNS0 buffer
// (RFC 6891).
func (r *DNS) exchange(ctx context.Context, server, fqdn string, qtype uint16) (*dns.Msg, error) {
	msg := new(dns.Msg)
	msg.SetQuestion(fqdn, qtype)
	msg.RecursionDesired = true
	// RFC 6840 §5.7: AD in a query asks a validating resolver to say whether it validated the answer, without
	// the DNSSEC records that DO would bring.
	msg.AuthenticatedData = true
	msg.SetEdns0(ednsBufferSize, false)

	resp, err := exchangeWith(ctx, r.udp, msg, server)
	if err != nil {
		return nil, err
	}
	if resp.Truncated {
		resp, err = exchangeWith(ctx, r.tcp, msg, server)
		if err != nil {
			return nil, fmt.Errorf("TCP retry of truncated answer: %w", err)
		}
		if resp.Truncated {
			return nil, errors.New("truncated answer over TCP")
		}
	}
	return resp, nil
}

// exchangeWith sends msg to server with client. The client obeys the context's deadline only, so the
// connection is closed when the context is cancelled to make the exchange return at once.
func exchangeWith(ctx context.Context, client *dns.Client, msg *dns.Msg, server string) (*dns.Msg, error) {
	conn, err := client.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	resp, _, err := client.ExchangeWithConnContext(ctx, msg, conn)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// answer interprets a response to the question (fqdn, qtype): the records of that type owned by fqdn or by
// the target of the CNAME chain (RFC 1034 §3.6.2) that the answer section holds from fqdn on. NXDOMAIN and
// NODATA (RFC 2308 §2.1, §2.2) give ErrNotFound; other response codes give a temporary error.
func answer(resp *dns.Msg, fqdn string, qtype uint16) ([]dns.RR, error) {
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, fmt.Errorf("%s", rcodeName(resp.Rcode))
	}
	if len(resp.Question) != 1 || resp.Question[0].Qtype != qtype || !strings.EqualFold(resp.Question[0].Name, fqdn) {
		return nil, errors.New("answer to another question")
	}

	owner := fqdn
	seen := map[string]bool{}
	for range maxCNAMEHops {
		seen[strings.ToLower(owner)] = true
		var rrs []dns.RR
		var target string
		for _, rr := range resp.Answer {
			h := rr.Header()
			if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, owner) {
				continue
			}
			if h.Rrtype == qtype {
				rrs = append(rrs, rr)
			} else if cname, ok := rr.(*dns.CNAME); ok {
				target = cname.Target
			}
		}
		if len(rrs) > 0 {
			return rrs, nil
		}
		if target == "" {
			// RFC 6604 §3: with a CNAME chain, the response code is that of the last name.
			if resp.Rcode == dns.RcodeNameError {
				return nil, fmt.Errorf("%w: NXDOMAIN", ErrNotFound)
			}
			return nil, fmt.Errorf("%w: NODATA", ErrNotFound)
		}
		if seen[strings.ToLower(target)] {
			return nil, fmt.Errorf("CNAME loop at %s", target)
		}
		owner = target
	}
	return nil, fmt.Errorf("CNAME chain longer than %d", maxCNAMEHops)
}

// rcodeName names a DNS response code for error messages.
func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rcode)
}

// Interface check.
var (
	_ Resolver     = (*DNS)(nil)
	_ TLSAResolver = (*DNS)(nil)
)
