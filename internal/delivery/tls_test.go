package delivery

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"time"

	"easymail/internal/dane"
	"easymail/internal/mtasts"
	"easymail/internal/resolver"
	"easymail/internal/testkit"
)

// fakeSTS gives fixed MTA-STS policies.
type fakeSTS map[string]*mtasts.Policy

func (f fakeSTS) Policy(_ context.Context, domain string) (*mtasts.Policy, error) {
	return f[domain], nil
}

// reports records the TLS-RPT sessions.
type reports struct {
	mu   sync.Mutex
	list []TLSSession
}

func (r *reports) ReportTLS(s TLSSession) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, s)
}

func (r *reports) results() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.list {
		out = append(out, s.PolicyType+":"+s.MXHost+":"+s.Result)
	}
	return out
}

// tlsCase is one MX certificate situation.
type tlsCase struct {
	name string
	set  func(m *testkit.MX, ca *testkit.CA)
}

func certCases(t *testing.T) []tlsCase {
	other := testkit.NewCA(t) // a CA the client does not trust
	return []tlsCase{
		{"good", func(m *testkit.MX, ca *testkit.CA) { m.EnableTLSWith(ca.Good("mx1.dest.example")) }},
		{"expired", func(m *testkit.MX, ca *testkit.CA) { m.EnableTLSWith(ca.Expired("mx1.dest.example")) }},
		{"wrong name", func(m *testkit.MX, ca *testkit.CA) { m.EnableTLSWith(ca.Good("other.example")) }},
		{"untrusted", func(m *testkit.MX, _ *testkit.CA) { m.EnableTLSWith(other.Good("mx1.dest.example")) }},
		{"no TLS", func(*testkit.MX, *testkit.CA) {}},
		{"broken handshake", func(m *testkit.MX, _ *testkit.CA) { m.BreakTLS() }},
	}
}

// TestTLSPolicies delivers to MX hosts with good, expired, wrong-name, untrusted and missing certificates
// under each policy: may always delivers, encrypt needs TLS, verify a verified certificate; a failure is a
// temporary error naming the policy and the result, and nothing goes in plain text.
func TestTLSPolicies(t *testing.T) {
	want := map[string]map[string]string{ // policy -> case -> TLSVerify ("!" prefix: deferred)
		"may": {"good": "unverified", "expired": "unverified", "wrong name": "unverified", "untrusted": "unverified",
			"no TLS": "none", "broken handshake": "none"},
		"encrypt": {"good": "unverified", "expired": "unverified", "wrong name": "unverified", "untrusted": "unverified",
			"no TLS": "!starttls-not-supported", "broken handshake": "!validation-failure"},
		"verify": {"good": "verified", "expired": "!certificate-expired", "wrong name": "!certificate-host-mismatch",
			"untrusted": "!certificate-not-trusted", "no TLS": "!starttls-not-supported", "broken handshake": "!validation-failure"},
	}
	for _, policy := range []string{"may", "encrypt", "verify"} {
		for _, tc := range certCases(t) {
			t.Run(policy+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t)
				ca := testkit.NewCA(t)
				m := e.mx("mx1.dest.example", "127.0.0.11")
				tc.set(m, ca)
				e.dns.setMX("dest.example", mx1)
				d := e.deliverer(func(o *Options) { o.RootCAs = ca.Pool() })
				j := job("dest.example", "x@dest.example")
				j.TLSPolicy = policy
				res := d.Deliver(context.Background(), j)
				exp := want[policy][tc.name]
				if res.TLSVerify != strings.TrimPrefix(exp, "!") {
					t.Errorf("TLSVerify = %q, want %q", res.TLSVerify, strings.TrimPrefix(exp, "!"))
				}
				wantSource := PolicyCustomer
				if policy == "may" {
					wantSource = PolicyNone
				}
				if res.TLSPolicy != wantSource {
					t.Errorf("TLSPolicy = %q, want %q", res.TLSPolicy, wantSource)
				}
				if strings.HasPrefix(exp, "!") {
					enh := [3]int{4, 7, 5}
					if exp == "!starttls-not-supported" {
						enh = [3]int{4, 7, 10}
					}
					err := wantAll(t, res, 451, enh)
					if !strings.Contains(err.Message, "TLS policy (customer: "+policy+")") ||
						!strings.Contains(err.Message, strings.TrimPrefix(exp, "!")) {
						t.Errorf("reason %q does not name the policy and the result", err.Message)
					}
					if n := len(m.Messages()); n != 0 {
						t.Fatalf("%d messages delivered despite the policy", n)
					}
					return
				}
				wantOK(t, res)
				got := m.WaitMessages(t, 1, 5*time.Second)[0]
				if got.TLS != (exp != "none") {
					t.Errorf("received with TLS %v, want %v", got.TLS, exp != "none")
				}
				if exp != "none" && (res.TLSVersion == "" || res.TLSCipher == "") {
					t.Errorf("TLS version %q cipher %q not recorded", res.TLSVersion, res.TLSCipher)
				}
			})
		}
	}
}

// TestTLSPolicyDestinationAndStrictest: the destination's policy applies to its mail; the strictest of the
// default, the destination's and the customer's wins.
func TestTLSPolicyDestinationAndStrictest(t *testing.T) {
	e := newEnv(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	m.EnableTLS() // self-signed: encrypt passes, verify does not
	e.dns.setMX("dest.example", mx1)
	d := e.deliverer(func(o *Options) { o.TLSPolicies = map[string]TLSPolicy{"dest.example": TLSEncrypt} })
	j := job("dest.example", "x@dest.example")
	j.TLSPolicy = "may"
	res := d.Deliver(context.Background(), j)
	wantOK(t, res)
	if res.TLSPolicy != PolicyDestination || res.TLSVerify != VerifyUnverified {
		t.Fatalf("policy %q verify %q, want destination/unverified", res.TLSPolicy, res.TLSVerify)
	}
	j.TLSPolicy = "verify"
	res = d.Deliver(context.Background(), j)
	wantAll(t, res, 451, [3]int{4, 7, 5})
	if res.TLSPolicy != PolicyCustomer {
		t.Fatalf("policy %q, want customer", res.TLSPolicy)
	}
	// A connection set up under one requirement is not reused for a stricter one: the may delivery left an
	// idle connection, the verify one dialled anew (and failed).
	if m.Connections() < 2 {
		t.Fatalf("connections = %d, want a fresh one for the stricter policy", m.Connections())
	}
}

var mxOther = resolver.MX{Host: "mx2.dest.example", Pref: 5}

// TestMTASTSEnforce: MX hosts not in the policy are not used; the listed one must verify.
func TestMTASTSEnforce(t *testing.T) {
	for _, tc := range certCases(t)[:3] {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ca := testkit.NewCA(t)
			m := e.mx("mx1.dest.example", "127.0.0.11")
			tc.set(m, ca)
			other := e.mx("mx2.dest.example", "127.0.0.12") // preferred, but not in the policy
			other.EnableTLSWith(ca.Good("mx2.dest.example"))
			e.dns.setMX("dest.example", mx1, mxOther)
			rep := &reports{}
			pol, err := mtasts.Parse("version: STSv1\nmode: enforce\nmx: mx1.dest.example\nmax_age: 86400\n")
			if err != nil {
				t.Fatal(err)
			}
			d := e.deliverer(func(o *Options) {
				o.RootCAs, o.MTASTS, o.Reporter = ca.Pool(), fakeSTS{"dest.example": pol}, rep
			})
			res := d.Deliver(context.Background(), job("dest.example", "x@dest.example"))
			if other.Connections() != 0 {
				t.Fatalf("MX host outside the policy was connected to")
			}
			if res.TLSPolicy != PolicyMTASTS {
				t.Fatalf("TLSPolicy = %q", res.TLSPolicy)
			}
			got := rep.results()
			if len(got) != 2 || got[0] != "sts:mx2.dest.example:validation-failure" {
				t.Fatalf("reports = %v", got)
			}
			if tc.name == "good" {
				wantOK(t, res)
				if res.TLSVerify != VerifyVerified || got[1] != "sts:mx1.dest.example:" {
					t.Fatalf("verify %q, reports %v", res.TLSVerify, got)
				}
				return
			}
			wantAll(t, res, 451, [3]int{4, 7, 5})
			if len(m.Messages()) != 0 || !strings.HasSuffix(got[1], ":"+res.TLSVerify) || res.TLSVerify == "" {
				t.Fatalf("verify %q, reports %v, messages %d", res.TLSVerify, got, len(m.Messages()))
			}
		})
	}
}

// TestMTASTSTesting delivers despite a failing certificate, and reports the failure.
func TestMTASTSTesting(t *testing.T) {
	e := newEnv(t)
	ca := testkit.NewCA(t)
	m := e.mx("mx1.dest.example", "127.0.0.11")
	m.EnableTLSWith(ca.Expired("mx1.dest.example"))
	e.dns.setMX("dest.example", mx1)
	rep := &reports{}
	pol, _ := mtasts.Parse("version: STSv1\nmode: testing\nmx: *.dest.example\nmax_age: 86400\n")
	d := e.deliverer(func(o *Options) { o.RootCAs, o.MTASTS, o.Reporter = ca.Pool(), fakeSTS{"dest.example": pol}, rep })
	res := d.Deliver(context.Background(), job("dest.example", "x@dest.example"))
	wantOK(t, res)
	if got := rep.results(); len(got) != 1 || got[0] != "sts:mx1.dest.example:certificate-expired" {
		t.Fatalf("reports = %v", got)
	}
	if res.TLSVerify != "certificate-expired" || res.TLSPolicy != PolicyNone {
		t.Fatalf("verify %q policy %q", res.TLSVerify, res.TLSPolicy)
	}
}

// TestDANE uses TLSA records served by the fake DNS: trusted only with the AD bit; when usable, TLS is
// mandatory and must match them.
func TestDANE(t *testing.T) {
	ca := testkit.NewCA(t)
	good := ca.Good("mx1.dest.example")
	expired := ca.Expired("mx1.dest.example")
	hexOf := func(c *tls.Certificate, usage, sel, m uint8) string {
		leaf := c.Leaf
		if usage == dane.UsageDANETA {
			leaf = ca.Cert
		}
		return strings.ToUpper(hexString(dane.Record(leaf, sel, m)))
	}
	for _, tc := range []struct {
		name      string
		cert      *tls.Certificate // nil: no STARTTLS
		usage     uint8
		secure    bool
		recordFor *tls.Certificate
		verify    string // "!" prefix: deferred
	}{
		{"EE match", good, 3, true, good, "dane"},
		{"EE expired matches", expired, 3, true, expired, "dane"},
		{"EE mismatch", good, 3, true, expired, "!validation-failure"},
		{"TA match", good, 2, true, good, "dane"},
		{"TA expired", expired, 2, true, expired, "!certificate-expired"},
		{"no STARTTLS", nil, 3, true, good, "!starttls-not-supported"},
		{"not validated: ignored", good, 3, false, expired, "unverified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			m := e.mx("mx1.dest.example", "127.0.0.11")
			if tc.cert != nil {
				m.EnableTLSWith(tc.cert)
			}
			e.dns.setMX("dest.example", mx1)
			dnsSrv := testkit.NewDNS(t)
			dnsSrv.AddTLSA("_25._tcp.mx1.dest.example", tc.usage, 1, 1, hexOf(tc.recordFor, tc.usage, 1, 1))
			dnsSrv.SetAuthenticated(tc.secure)
			res0, err := resolver.New([]string{dnsSrv.Addr()}, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			rep := &reports{}
			d := e.deliverer(func(o *Options) { o.TLSA, o.Reporter = res0, rep })
			res := d.Deliver(context.Background(), job("dest.example", "x@dest.example"))
			if res.TLSVerify != strings.TrimPrefix(tc.verify, "!") {
				t.Fatalf("TLSVerify = %q, want %q", res.TLSVerify, strings.TrimPrefix(tc.verify, "!"))
			}
			if !tc.secure {
				wantOK(t, res)
				if len(rep.results()) != 0 || res.TLSPolicy != PolicyNone {
					t.Fatalf("unvalidated TLSA used: policy %q, reports %v", res.TLSPolicy, rep.results())
				}
				return
			}
			if res.TLSPolicy != PolicyDANE {
				t.Fatalf("TLSPolicy = %q", res.TLSPolicy)
			}
			r := rep.results()
			if strings.HasPrefix(tc.verify, "!") {
				wantAll(t, res, 451, res.Rcpts[0].Err.Enhanced)
				if res.Rcpts[0].Err.Enhanced[1] != 7 || len(m.Messages()) != 0 {
					t.Fatalf("outcome %v, %d messages", res.Rcpts[0].Err, len(m.Messages()))
				}
				if len(r) != 1 || r[0] != "tlsa:mx1.dest.example:"+strings.TrimPrefix(tc.verify, "!") {
					t.Fatalf("reports = %v", r)
				}
				return
			}
			wantOK(t, res)
			if len(r) != 1 || r[0] != "tlsa:mx1.dest.example:" {
				t.Fatalf("reports = %v", r)
			}
		})
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// BenchmarkTLSPlan is the cost of the TLS policy decision of one delivery to a destination with one MX host:
// without any policy, and with a cached MTA-STS policy in enforce mode (docs/benchmarks.md).
func BenchmarkTLSPlan(b *testing.B) {
	pol, err := mtasts.Parse("version: STSv1\nmode: enforce\nmx: *.dest.example\nmax_age: 86400\n")
	if err != nil {
		b.Fatal(err)
	}
	j := job("dest.example", "x@dest.example")
	for _, bc := range []struct {
		name string
		sts  STSPolicies
	}{{"none", nil}, {"mta-sts-cached", fakeSTS{"dest.example": pol}}} {
		b.Run(bc.name, func(b *testing.B) {
			d := New(Options{Resolver: newFakeResolver(), MTASTS: bc.sts, Reporter: &reports{}})
			ctx := context.Background()
			for b.Loop() {
				p := d.plan(ctx, j)
				if _, fail := d.forHost(ctx, j, p, "mx1.dest.example"); fail != nil {
					b.Fatal(fail.err)
				}
			}
		})
	}
}
