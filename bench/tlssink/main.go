// Command tlssink is the TLS mode's remote MX for make bench: an SMTP sink that offers STARTTLS with a
// certificate for its host name, and the HTTPS server of the destinations' MTA-STS policies
// (https://mta-sts.DOMAIN/.well-known/mta-sts.txt), both on loopback. At start it makes a throwaway
// certificate authority (ECDSA P-256), writes its certificate to -ca-out for the relay's delivery.tls_ca_file,
// and issues one certificate for the MX host name and every policy host.
//
// Usage:
//
//	tlssink -smtp 127.0.0.3:2525 -https 127.0.0.3:443 -host mx.tls.test -ca-out ca.pem -count-out sink.out \
//	        -sts sts.test=enforce
//
// Like smtp-sink -c, it counts the messages received and appends "sess=N quit=N mesg=N\r" to -count-out
// (every 5 ms while the count moves), which bench/load reads to know when every message has arrived. Each
// policy fetch is logged ("mta-sts policy fetched"), so the benchmark can check that the relay fetched a
// policy once and then used its cache. A client that sends MAIL without STARTTLS first gets 530 5.7.0, so
// that no message counts unless it came over TLS. -sts DOMAIN=MODE (repeatable, comma-separated) serves a policy of
// mode enforce, testing or none whose only mx pattern is -host, with a max_age of a day.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
)

// stsFlag is the repeatable -sts flag: domain=mode pairs.
type stsFlag map[string]string

func (s stsFlag) String() string {
	var b []string
	for d, m := range s {
		b = append(b, d+"="+m)
	}
	return strings.Join(b, ",")
}

func (s stsFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		d, m, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || d == "" {
			return fmt.Errorf("%q is not domain=mode", p)
		}
		switch m {
		case "enforce", "testing", "none":
		default:
			return fmt.Errorf("%q: mode must be enforce, testing or none", p)
		}
		s[strings.ToLower(d)] = m
	}
	return nil
}

func main() {
	smtpAddr := flag.String("smtp", "127.0.0.3:2525", "SMTP listener (loopback)")
	httpsAddr := flag.String("https", "", "HTTPS listener of the MTA-STS policy hosts, e.g. 127.0.0.3:443; empty: none")
	host := flag.String("host", "mx.tls.test", "the MX host name: the SMTP greeting and the certificate's name")
	caOut := flag.String("ca-out", "", "file to write the CA certificate to (PEM); required")
	countOut := flag.String("count-out", "", "file to append the smtp-sink -c style counter to; required")
	sts := stsFlag{}
	flag.Var(sts, "sts", "MTA-STS policies to serve: domain=enforce|testing|none[,...]")
	flag.Parse()
	lg := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(lg, *smtpAddr, *httpsAddr, *host, *caOut, *countOut, sts); err != nil {
		lg.Error("tlssink", "err", err)
		os.Exit(1)
	}
}

func run(lg *slog.Logger, smtpAddr, httpsAddr, host, caOut, countOut string, sts stsFlag) error {
	switch {
	case caOut == "" || countOut == "":
		return errors.New("-ca-out and -count-out are required")
	case len(sts) > 0 && httpsAddr == "":
		return errors.New("-sts needs -https")
	}
	names := []string{host}
	for d := range sts {
		names = append(names, "mta-sts."+d)
	}
	caPEM, cert, err := issue(names)
	if err != nil {
		return err
	}
	if err := os.WriteFile(caOut, caPEM, 0o644); err != nil {
		return err
	}
	tcfg := &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}

	ln, err := net.Listen("tcp", smtpAddr)
	if err != nil {
		return err
	}
	b := &backend{}
	ln = &countingListener{Listener: ln, n: &b.conns}
	srv := newServer(b, host, tcfg)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()

	var hs *http.Server
	if httpsAddr != "" {
		hl, err := net.Listen("tcp", httpsAddr)
		if err != nil {
			return err
		}
		hs = &http.Server{Handler: policyHandler(lg, host, sts), TLSConfig: tcfg,
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
		go func() { errc <- hs.ServeTLS(hl, "", "") }()
	}

	f, err := os.OpenFile(countOut, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	lg.Info("tlssink ready", "smtp", smtpAddr, "https", httpsAddr, "names", names)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var written int64 = -1
	for {
		select {
		case s := <-sig:
			lg.Info("tlssink stopping", "signal", s.String(), "messages", b.messages.Load(),
				"connections", b.conns.Load(), "tls_connections", b.tlsConns.Load())
			_ = srv.Close()
			if hs != nil {
				_ = hs.Close()
			}
			return nil
		case err := <-errc:
			return err
		case <-tick.C:
			if n := b.messages.Load(); n != written {
				s := b.conns.Load()
				if _, err := fmt.Fprintf(f, "sess=%d quit=%d mesg=%d\r", s, s, n); err != nil {
					return err
				}
				written = n
			}
		}
	}
}

// newServer returns the SMTP server of b, greeting as host, offering STARTTLS with tcfg.
func newServer(b *backend, host string, tcfg *tls.Config) *smtp.Server {
	srv := smtp.NewServer(b)
	srv.Domain = host
	srv.TLSConfig = tcfg
	srv.MaxMessageBytes = 64 << 20
	srv.MaxRecipients = 1000
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	return srv
}

// policyHandler serves /.well-known/mta-sts.txt of mta-sts.DOMAIN for the domains of sts.
func policyHandler(lg *slog.Logger, mx string, sts stsFlag) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			h = r.Host
		}
		domain, ok := strings.CutPrefix(strings.ToLower(h), "mta-sts.")
		mode := sts[domain]
		if !ok || mode == "" || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		lg.Info("mta-sts policy fetched", "domain", domain, "mode", mode, "client", r.RemoteAddr)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "version: STSv1\r\nmode: %s\r\nmx: %s\r\nmax_age: 86400\r\n", mode, mx)
	})
}

// issue makes a CA and a certificate for names signed by it, valid from an hour ago for a day; it returns
// the CA certificate in PEM form and the server certificate with its chain (leaf, CA).
func issue(names []string) ([]byte, *tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Easymail bench CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, &tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key, Leaf: leaf}, nil
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// backend counts connections, those that sent mail after STARTTLS, and messages.
type backend struct {
	conns, tlsConns, messages atomic.Int64
}

// NewSession is called for each connection, and again after its STARTTLS.
func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{b: b, c: c}, nil
}

// session accepts every sender and recipient and discards the message.
type session struct {
	b       *backend
	c       *smtp.Conn
	counted bool // its connection is counted in tlsConns
}

func (s *session) Mail(string, *smtp.MailOptions) error {
	if _, ok := s.c.TLSConnectionState(); !ok {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	if !s.counted {
		s.counted = true
		s.b.tlsConns.Add(1)
	}
	return nil
}

func (s *session) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (s *session) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.b.messages.Add(1)
	return nil
}

func (s *session) Reset() {}

func (s *session) Logout() error { return nil }
