package mtasts

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"easymail/internal/resolver"
	"easymail/internal/store"
	"easymail/internal/testkit"
)

func TestParse(t *testing.T) {
	p, err := Parse("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\nextra: ignored\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != ModeEnforce || p.MaxAge != 24*time.Hour || len(p.MX) != 2 {
		t.Fatalf("policy = %+v", p)
	}
	for host, want := range map[string]bool{
		"mail.example.com": true, "MAIL.example.com.": true, "a.example.net": true,
		"a.b.example.net": false, "example.net": false, "other.example.com": false,
	} {
		if got := p.Matches(host); got != want {
			t.Errorf("Matches(%q) = %v, want %v", host, got, want)
		}
	}
	for _, bad := range []string{
		"mode: enforce\nmx: a.example\nmax_age: 1\n",                        // no version
		"version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",        // wrong version
		"version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",         // bad mode
		"version: STSv1\nmode: enforce\nmax_age: 1\n",                       // no mx
		"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",       // bad max_age
		"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 99999999\n", // too long
		"version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n",       // bad pattern
		"version: STSv1\nmode enforce\n",                                    // no colon
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	if p, err := Parse("version: STSv1\nmode: none\nmax_age: 0\n"); err != nil || p.Mode != ModeNone {
		t.Errorf("mode none: %+v %v", p, err)
	}
}

func TestParseTXT(t *testing.T) {
	for txt, want := range map[string]string{
		"v=STSv1; id=20160831085700Z;": "20160831085700Z",
		"v=STSv1;id=abc":               "abc",
		"v=STSv1; id=abc; x=y":         "abc",
	} {
		if got, err := ParseTXT(txt); err != nil || got != want {
			t.Errorf("ParseTXT(%q) = %q, %v; want %q", txt, got, err, want)
		}
	}
	for _, bad := range []string{"id=abc; v=STSv1", "v=STSv1;", "v=STSv1; id=ab-c", "v=STSv1; id=" + strings.Repeat("a", 33)} {
		if _, err := ParseTXT(bad); err == nil {
			t.Errorf("ParseTXT(%q) accepted", bad)
		}
	}
}

// policyServer is a loopback HTTPS server standing for mta-sts.DOMAIN, with a certificate from a test CA.
type policyServer struct {
	addr    string
	fetches atomic.Int64
	mu      sync.Mutex
	body    string
	ctype   string
	status  int
}

func (s *policyServer) set(status int, ctype, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.ctype, s.body = status, ctype, body
}

func newPolicyServer(t testing.TB, cert *tls.Certificate) *policyServer {
	t.Helper()
	s := &policyServer{status: 200, ctype: "text/plain; charset=utf-8"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		s.mu.Lock()
		status, ctype, body := s.status, s.ctype, s.body
		s.mu.Unlock()
		if status == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", status)
			return
		}
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		w.Write([]byte(body))
	}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{*cert}}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return s
}

// fixture is a cache with its DNS, its policy server (for mta-sts.example.test) and a settable clock.
type fixture struct {
	dns   *testkit.DNS
	srv   *policyServer
	cache *Cache
	db    *store.DB
	now   atomic.Int64
	opts  Options
}

const enforceBody = "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 3600\n"

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ca := testkit.NewCA(t)
	f := &fixture{dns: testkit.NewDNS(t)}
	f.srv = newPolicyServer(t, ca.Good("mta-sts.example.test"))
	f.srv.set(200, "text/plain", enforceBody)
	f.dns.AddTXT("_mta-sts.example.test", "v=STSv1; id=one;")
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f.db = db
	res, err := resolver.New([]string{f.dns.Addr()}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f.now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	f.opts = Options{
		DB: db, Resolver: res, RootCAs: ca.Pool(), Refresh: 10 * time.Minute, FetchTimeout: 5 * time.Second,
		Now: func() time.Time { return time.UnixMilli(f.now.Load()) },
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != "mta-sts.example.test:443" {
				return nil, errors.New("test: no route to " + addr)
			}
			return (&net.Dialer{}).DialContext(ctx, network, f.srv.addr)
		},
	}
	f.cache = New(f.opts)
	return f
}

func (f *fixture) advance(d time.Duration) { f.now.Add(d.Milliseconds()) }

func TestCacheFetchAndRefresh(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p, err := f.cache.Policy(ctx, "example.test")
	if err != nil || p == nil || p.Mode != ModeEnforce || p.ID != "one" || !p.Matches("mx.example.test") {
		t.Fatalf("Policy = %+v, %v", p, err)
	}
	if n := f.srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	// Within the refresh time: no lookup at all.
	q := f.dns.Queries()
	f.advance(time.Minute)
	if p, _ := f.cache.Policy(ctx, "example.test"); p == nil || f.dns.Queries() != q || f.srv.fetches.Load() != 1 {
		t.Fatalf("cached use looked up: policy %v, queries %d->%d, fetches %d", p, q, f.dns.Queries(), f.srv.fetches.Load())
	}
	// After the refresh time, the same id: the TXT record is checked, the policy not fetched again.
	f.advance(10 * time.Minute)
	if p, _ := f.cache.Policy(ctx, "example.test"); p == nil || f.dns.Queries() == q || f.srv.fetches.Load() != 1 {
		t.Fatalf("refresh with same id: policy %v, queries %d, fetches %d", p, f.dns.Queries(), f.srv.fetches.Load())
	}
	// A new id: the policy is fetched again.
	f.dns.Set("_mta-sts.example.test", 16, `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=two;"`)
	f.srv.set(200, "text/plain", "version: STSv1\nmode: testing\nmx: *.example.test\nmax_age: 3600\n")
	f.advance(11 * time.Minute)
	if p, _ := f.cache.Policy(ctx, "example.test"); p == nil || p.Mode != ModeTesting || p.ID != "two" {
		t.Fatalf("after id change: %+v", p)
	}
	// The policy is in the database: a new cache (a restart) uses it even when the server is gone.
	f.srv.set(500, "text/plain", "")
	c2 := New(f.opts)
	if p, err := c2.Policy(ctx, "example.test"); p == nil || p.Mode != ModeTesting || err != nil {
		t.Fatalf("after restart: %+v, %v", p, err)
	}
	// Without the TXT record, the cached policy holds until max_age has passed, then there is none.
	f.dns.Remove("_mta-sts.example.test", 16)
	f.advance(30 * time.Minute)
	if p, _ := f.cache.Policy(ctx, "example.test"); p == nil {
		t.Fatal("policy dropped before max_age without a record")
	}
	f.advance(31 * time.Minute)
	if p, err := f.cache.Policy(ctx, "example.test"); p != nil || err != nil {
		t.Fatalf("expired policy still used: %+v, %v", p, err)
	}
}

func TestCacheFetchFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		ctype  string
		body   string
		result string
	}{
		{"not found", 404, "text/plain", "", "sts-policy-fetch-error"},
		{"redirect", http.StatusFound, "text/plain", "", "sts-policy-fetch-error"},
		{"html", 200, "text/html", enforceBody, "sts-policy-invalid"},
		{"too large", 200, "text/plain", enforceBody + strings.Repeat("x: y\n", 14000), "sts-policy-invalid"},
		{"malformed", 200, "text/plain", "version: STSv1\n", "sts-policy-invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.set(tc.status, tc.ctype, tc.body)
			p, err := f.cache.Policy(context.Background(), "example.test")
			var fe *FetchError
			if p != nil || !errors.As(err, &fe) || fe.Result != tc.result {
				t.Fatalf("Policy = %+v, %v; want no policy and %s", p, err, tc.result)
			}
		})
	}
}

// TestCacheWebPKI refuses a policy server whose certificate does not verify.
func TestCacheWebPKI(t *testing.T) {
	f := newFixture(t)
	other := testkit.NewCA(t)
	f.opts.RootCAs = other.Pool()
	c := New(f.opts)
	p, err := c.Policy(context.Background(), "example.test")
	var fe *FetchError
	if p != nil || !errors.As(err, &fe) || fe.Result != "sts-webpki-invalid" {
		t.Fatalf("Policy = %+v, %v; want sts-webpki-invalid", p, err)
	}
}

// TestCacheNoRecord is a domain without MTA-STS: no policy, no error, no fetch.
func TestCacheNoRecord(t *testing.T) {
	f := newFixture(t)
	p, err := f.cache.Policy(context.Background(), "plain.test")
	if p != nil || err != nil || f.srv.fetches.Load() != 0 {
		t.Fatalf("Policy = %+v, %v, fetches %d", p, err, f.srv.fetches.Load())
	}
}

// BenchmarkPolicyCached is the cost of asking for a domain's policy once it is cached (docs/benchmarks.md).
func BenchmarkPolicyCached(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	if p, err := f.cache.Policy(ctx, "example.test"); p == nil || err != nil {
		b.Fatalf("Policy: %v, %v", p, err)
	}
	b.ResetTimer()
	for b.Loop() {
		if p, _ := f.cache.Policy(ctx, "example.test"); p == nil {
			b.Fatal("no policy")
		}
	}
}
