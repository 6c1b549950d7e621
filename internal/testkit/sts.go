package testkit

// This file is a fake MTA-STS policy server; the package comment is in mx.go.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// STS is a loopback HTTPS server standing for the policy hosts mta-sts.DOMAIN of any number of domains
// (RFC 8461 §3.3), each with a certificate from a test CA. A client under test reaches it through Dial,
// which routes every "mta-sts.DOMAIN:443" to it. STS is safe for concurrent use.
type STS struct {
	t    testing.TB
	ca   *CA
	addr string

	mu       sync.Mutex
	policies map[string]string           // domain → policy text
	certs    map[string]*tls.Certificate // mta-sts.DOMAIN → its certificate
	fetches  map[string]int
}

// NewSTS starts a policy server whose certificates ca issues; it is closed when the test ends.
func NewSTS(t testing.TB, ca *CA) *STS {
	t.Helper()
	s := &STS{t: t, ca: ca, policies: map[string]string{}, certs: map[string]*tls.Certificate{}, fetches: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: MTA-STS server: %v", err)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), TLSConfig: &tls.Config{
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if c := s.certs[strings.ToLower(hello.ServerName)]; c != nil {
				return c, nil
			}
			return nil, fmt.Errorf("no certificate for %q", hello.ServerName)
		},
	}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return s
}

// Set serves policy (the text of /.well-known/mta-sts.txt) for domain, with a good certificate for
// mta-sts.DOMAIN unless SetCert gave one.
func (s *STS) Set(domain, policy string) {
	s.t.Helper()
	host := "mta-sts." + strings.ToLower(domain)
	s.mu.Lock()
	_, has := s.certs[host]
	s.mu.Unlock()
	var cert *tls.Certificate
	if !has {
		cert = s.ca.Good(host)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policies[strings.ToLower(domain)] = policy
	if cert != nil {
		s.certs[host] = cert
	}
}

// SetCert makes the server present cert (expired, for another name, from another CA) for domain's policy host.
func (s *STS) SetCert(domain string, cert *tls.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certs["mta-sts."+strings.ToLower(domain)] = cert
}

// Fetches returns how many times domain's policy was fetched.
func (s *STS) Fetches(domain string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches[strings.ToLower(domain)]
}

// Dial connects to the server for addr "mta-sts.DOMAIN:443", and refuses any other address: a dialer for
// mtasts.Options.Dial (node.Hooks.MTASTSDial).
func (s *STS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "443" || !strings.HasPrefix(strings.ToLower(host), "mta-sts.") {
		return nil, errors.New("testkit: MTA-STS server: no route to " + addr)
	}
	return (&net.Dialer{}).DialContext(ctx, network, s.addr)
}

func (s *STS) serve(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	domain, _ := strings.CutPrefix(strings.ToLower(host), "mta-sts.")
	s.mu.Lock()
	policy, ok := s.policies[domain]
	if ok {
		s.fetches[domain]++
	}
	s.mu.Unlock()
	if !ok || r.URL.Path != "/.well-known/mta-sts.txt" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(policy))
}
