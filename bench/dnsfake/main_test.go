package main

import (
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func startFake(t *testing.T, mx, a, aaaa, ptr, txt pairs) string {
	t.Helper()
	z, err := buildZone(mx, a, aaaa, ptr, txt)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	s := &dns.Server{PacketConn: pc, Handler: &handler{z: z}, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = s.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = s.Shutdown() })
	return pc.LocalAddr().String()
}

func query(t *testing.T, addr, name string, qt uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qt)
	r, _, err := new(dns.Client).Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qt], err)
	}
	return r
}

func TestAnswers(t *testing.T) {
	addr := startFake(t, pairs{"dest.test=sink.bench.test"}, pairs{"sink.bench.test=127.0.0.1"},
		pairs{"v6.bench.test=::1"}, pairs{"127.0.0.1=relay.bench.test"}, pairs{"_mta-sts.sts.test=v=STSv1; id=bench1"})

	r := query(t, addr, "DEST.test", dns.TypeMX)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("MX answer: %v", r)
	}
	if mx := r.Answer[0].(*dns.MX); mx.Mx != "sink.bench.test." {
		t.Errorf("MX host %q", mx.Mx)
	}
	if len(r.Extra) != 1 || r.Extra[0].(*dns.A).A.String() != "127.0.0.1" {
		t.Errorf("MX additional section: %v", r.Extra)
	}

	r = query(t, addr, "sink.bench.test", dns.TypeA)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.1" {
		t.Errorf("A answer: %v", r)
	}
	r = query(t, addr, "v6.bench.test", dns.TypeAAAA)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != "::1" {
		t.Errorf("AAAA answer: %v", r)
	}
	// A known name without the asked type: NODATA.
	r = query(t, addr, "sink.bench.test", dns.TypeAAAA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("AAAA of an A-only name: rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	r = query(t, addr, "other.test", dns.TypeA)
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("unknown name: rcode %s", dns.RcodeToString[r.Rcode])
	}
	r = query(t, addr, "_MTA-STS.sts.test", dns.TypeTXT)
	if len(r.Answer) != 1 || strings.Join(r.Answer[0].(*dns.TXT).Txt, "") != "v=STSv1; id=bench1" {
		t.Errorf("TXT answer: %v", r)
	}
	r = query(t, addr, "_mta-sts.other.test", dns.TypeTXT)
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("TXT of an unknown name: rcode %s", dns.RcodeToString[r.Rcode])
	}
	r = query(t, addr, "1.0.0.127.in-addr.arpa", dns.TypePTR)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.PTR).Ptr != "relay.bench.test." {
		t.Errorf("PTR answer: %v", r)
	}
}

func TestBadFlags(t *testing.T) {
	var p pairs
	if err := p.Set("a.test"); err == nil {
		t.Error("a pair without = was accepted")
	}
	if err := p.Set("a.test=1.2.3.4, b.test=5.6.7.8"); err != nil || len(p) != 2 {
		t.Errorf("two pairs: %v %v", p, err)
	}
	for _, c := range []struct{ mx, a, aaaa, ptr, txt pairs }{
		{a: pairs{"x.test=::1"}},
		{aaaa: pairs{"x.test=127.0.0.1"}},
		{a: pairs{"x.test=nope"}},
		{ptr: pairs{"nope=x.test"}},
		{mx: pairs{"x.test=bad host"}},
		{a: pairs{"bad name=127.0.0.1"}},
		{ptr: pairs{"127.0.0.1=-x.test"}},
		{txt: pairs{"bad name.test=v=STSv1"}},
		{txt: pairs{"_x.test=" + strings.Repeat("a", 256)}},
		{},
	} {
		if _, err := buildZone(c.mx, c.a, c.aaaa, c.ptr, c.txt); err == nil {
			t.Errorf("buildZone(%v) accepted", c)
		}
	}
}
