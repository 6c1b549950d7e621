package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"easymail/internal/resolver"
	"easymail/internal/smtperr"
	"easymail/internal/testkit"
)

// fakeResolver is an in-memory resolver.Resolver.
type fakeResolver struct {
	mu    sync.Mutex
	mx    map[string][]resolver.MX
	mxErr map[string]error
	ip    map[string][]net.IP
	ipErr map[string]error
	// ipLookups lists the hosts LookupIP was asked for.
	ipLookups []string
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{
		mx: map[string][]resolver.MX{}, mxErr: map[string]error{},
		ip: map[string][]net.IP{}, ipErr: map[string]error{},
	}
}

func (r *fakeResolver) setMX(domain string, mxs ...resolver.MX) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mx[domain] = mxs
}

func (r *fakeResolver) setIP(host string, ips ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range ips {
		r.ip[host] = append(r.ip[host], net.ParseIP(s))
	}
}

func (r *fakeResolver) LookupMX(ctx context.Context, domain string) ([]resolver.MX, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.mxErr[domain]; err != nil {
		return nil, err
	}
	mxs, ok := r.mx[domain]
	if !ok {
		return nil, fmt.Errorf("MX %s: %w", domain, resolver.ErrNotFound)
	}
	return append([]resolver.MX(nil), mxs...), nil
}

func (r *fakeResolver) LookupIP(ctx context.Context, host string) ([]net.IP, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ipLookups = append(r.ipLookups, host)
	if err := r.ipErr[host]; err != nil {
		return nil, err
	}
	ips, ok := r.ip[host]
	if !ok {
		return nil, fmt.Errorf("A %s: %w", host, resolver.ErrNotFound)
	}
	return append([]net.IP(nil), ips...), nil
}

func (r *fakeResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return nil, fmt.Errorf("TXT %s: %w", name, resolver.ErrNotFound)
}

func (r *fakeResolver) LookupPTR(ctx context.Context, ip net.IP) ([]string, error) {
	return nil, fmt.Errorf("PTR %s: %w", ip, resolver.ErrNotFound)
}

// errServFail stands for a DNS answer that did not come.
var errServFail = errors.New("SERVFAIL")

// env is one test's world: a port shared by the fake MX hosts on 127.0.0.x (held on every address, so that
// an address without a fake MX refuses connections), and the DNS.
type env struct {
	t   *testing.T
	mxp *testkit.MXPort
	dns *fakeResolver
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{t: t, mxp: testkit.ReserveMXPort(t), dns: newFakeResolver()}
}

// mx starts a fake MX named host on ip and publishes its address.
func (e *env) mx(host, ip string) *testkit.MX {
	e.t.Helper()
	m := e.mxp.NewMX(e.t, ip)
	e.dns.setIP(host, ip)
	return m
}

// deliverer returns a Deliverer for e, with options changed by mod.
func (e *env) deliverer(mod func(*Options)) *Deliverer {
	o := Options{
		Resolver:       e.dns,
		Port:           e.mxp.Port(),
		ConnectTimeout: 2 * time.Second,
		CommandTimeout: 5 * time.Second,
		IdleTimeout:    5 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		o.Logger = slog.New(slog.NewTextHandler(tWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mod != nil {
		mod(&o)
	}
	d := New(o)
	e.t.Cleanup(func() { d.Close() })
	return d
}

// tWriter sends log lines to the test log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var (
	source1 = Source{IP: netip.MustParseAddr("127.0.0.2"), HELO: "out1.relay.test"}
	source2 = Source{IP: netip.MustParseAddr("127.0.0.3"), HELO: "out2.relay.test"}
)

const testBody = "From: a@sender.example\r\nTo: x@dest.example\r\nSubject: test\r\n\r\nHello.\r\n.dot line\r\n"

// job returns a job for the recipients at domain with testBody, from source1.
func job(domain string, rcpts ...string) Job {
	return Job{
		QueueID:    "Q1",
		Sender:     "a@sender.example",
		Domain:     domain,
		Recipients: rcpts,
		Size:       int64(len(testBody)),
		Open:       func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(testBody)), nil },
		Source:     source1,
	}
}

// wantOK fails t unless every recipient was accepted.
func wantOK(t *testing.T, res Result) {
	t.Helper()
	for _, r := range res.Rcpts {
		if r.Err != nil {
			t.Fatalf("recipient %s: %v", r.Rcpt, r.Err)
		}
	}
}

// wantErr fails t unless the recipient's outcome has code and enhanced code.
func wantErr(t *testing.T, r RcptResult, code int, enhanced [3]int) {
	t.Helper()
	if r.Err == nil {
		t.Fatalf("recipient %s accepted, want %d %v", r.Rcpt, code, enhanced)
	}
	if r.Err.Code != code || r.Err.Enhanced != enhanced {
		t.Fatalf("recipient %s: %v, want %d %v", r.Rcpt, r.Err, code, enhanced)
	}
}

// wantAll fails t unless every recipient's outcome has code and enhanced code, and returns the first.
func wantAll(t *testing.T, res Result, code int, enhanced [3]int) *smtperr.Error {
	t.Helper()
	if len(res.Rcpts) == 0 {
		t.Fatal("no recipient results")
	}
	for _, r := range res.Rcpts {
		wantErr(t, r, code, enhanced)
	}
	return res.Rcpts[0].Err
}
