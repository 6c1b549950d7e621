package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestIssue(t *testing.T) {
	caPEM, cert, err := issue([]string{"mx.tls.test", "mta-sts.sts.test"})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no certificate in the CA PEM")
	}
	inter := x509.NewCertPool()
	for _, name := range []string{"mx.tls.test", "mta-sts.sts.test"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "other.test"}); err == nil {
		t.Error("the certificate verifies for other.test")
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: x509.NewCertPool(), DNSName: "mx.tls.test"}); err == nil {
		t.Error("the certificate verifies without the CA")
	}
}

func TestPolicyHandler(t *testing.T) {
	h := policyHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), "mx.tls.test", stsFlag{"sts.test": "enforce"})
	get := func(host, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "https://"+host+path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := get("mta-sts.sts.test", "/.well-known/mta-sts.txt")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/plain" ||
		w.Body.String() != "version: STSv1\r\nmode: enforce\r\nmx: mx.tls.test\r\nmax_age: 86400\r\n" {
		t.Errorf("policy: %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
	if w := get("mta-sts.other.test", "/.well-known/mta-sts.txt"); w.Code != 404 {
		t.Errorf("another domain: %d", w.Code)
	}
	if w := get("mta-sts.sts.test", "/"); w.Code != 404 {
		t.Errorf("another path: %d", w.Code)
	}
	var f stsFlag = stsFlag{}
	if err := f.Set("a.test=enforce,b.test=testing"); err != nil || f["a.test"] != "enforce" || f["b.test"] != "testing" {
		t.Errorf("Set: %v %v", f, err)
	}
	if err := f.Set("a.test=strict"); err == nil {
		t.Error("mode strict accepted")
	}
}

// TestSMTP: mail over STARTTLS is counted; mail in plain text is refused with 530.
func TestSMTP(t *testing.T) {
	caPEM, cert, err := issue([]string{"mx.tls.test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{}
	srv := newServer(b, "mx.tls.test", &tls.Config{Certificates: []tls.Certificate{*cert}})
	go srv.Serve(&countingListener{Listener: ln, n: &b.conns})
	t.Cleanup(func() { srv.Close() })
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)

	send := func(useTLS bool) error {
		var c *smtp.Client
		var err error
		if useTLS {
			c, err = smtp.DialStartTLS(ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "mx.tls.test"})
		} else {
			c, err = smtp.Dial(ln.Addr().String())
		}
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.Mail("a@b.test", nil); err != nil {
			return err
		}
		if err := c.Rcpt("c@d.test", nil); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		io.WriteString(w, "Subject: x\r\n\r\nhello\r\n")
		return w.Close()
	}
	if err := send(true); err != nil {
		t.Fatalf("over STARTTLS: %v", err)
	}
	err = send(false)
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 530 || !strings.Contains(se.Message, "STARTTLS") {
		t.Errorf("in plain text: %v", err)
	}
	if b.messages.Load() != 1 || b.conns.Load() != 2 || b.tlsConns.Load() != 1 {
		t.Errorf("messages %d, connections %d, TLS connections %d; want 1, 2, 1", b.messages.Load(), b.conns.Load(), b.tlsConns.Load())
	}
}
