// Package testkit holds fakes of the outside world for tests: a remote mail exchanger that records what it
// receives and answers as it is told to (this file) and a DNS server.
package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Received is one message as the fake MX accepted it.
type Received struct {
	// From is the envelope sender, To the accepted envelope recipients.
	From string
	To   []string
	// Data is the message content as received (dot-unstuffed, CRLF line endings).
	Data []byte
	// RemoteIP is the client's address (the outbound source IP).
	RemoteIP string
	// HELO is the name the client gave in EHLO/HELO.
	HELO string
	// TLS reports whether the message came over a STARTTLS-protected connection.
	TLS bool
	// SMTPUTF8 and Body are the MAIL FROM parameters the client sent.
	SMTPUTF8 bool
	Body     string
	// Size is the SIZE parameter of MAIL FROM, 0 when none was sent.
	Size int64
	// At is the arrival time.
	At time.Time
}

// MX is a fake remote mail exchanger built on the go-smtp server. It advertises PIPELINING, 8BITMIME,
// ENHANCEDSTATUSCODES, SIZE and SMTPUTF8, and STARTTLS once EnableTLS is called. Replies can be scripted per
// recipient, at MAIL FROM and at the end of DATA. MX is safe for concurrent use.
type MX struct {
	ln   net.Listener
	done chan struct{}
	wg   sync.WaitGroup

	mu          sync.Mutex
	msgs        []Received
	arrived     chan struct{} // closed and replaced at each arrival
	rcptReplies map[string]*smtp.SMTPError
	dataReply   *smtp.SMTPError
	failNext    int
	failReply   *smtp.SMTPError
	delay       time.Duration
	hangUp      bool
	mode        variant
	cert        *tls.Certificate
	servers     map[variant]*variantServer
	conns       int
	live        map[*trackedConn]struct{}
	active      int
	maxActive   int
	closed      bool
}

// variant is the configuration a connection is served with, fixed when it is accepted.
type variant struct {
	tls       bool             // offer STARTTLS with a working certificate
	cert      *tls.Certificate // the certificate, nil for the MX's self-signed one
	brokenTLS bool             // offer STARTTLS but fail every handshake
	noUTF8    bool             // do not advertise SMTPUTF8
}

// variantServer is a go-smtp server fed with the connections accepted for one variant. The server's settings
// never change once it serves, so switching a behaviour on starts a new server instead of racing with the
// running one.
type variantServer struct {
	srv *smtp.Server
	ln  *chanListener
}

// NewMX starts a fake MX listening on addr ("127.0.0.11:2526", or port 0 for any free port). It is closed,
// with all its connections, when the test ends.
func NewMX(t testing.TB, addr string) *MX {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("testkit: fake MX cannot listen on %s: %v", addr, err)
	}
	return NewMXOn(t, ln)
}

// NewMXOn starts a fake MX that accepts on ln (see MXPort) and closes ln, with all the MX's connections,
// when the test ends.
func NewMXOn(t testing.TB, ln net.Listener) *MX {
	t.Helper()
	m := &MX{
		ln:          ln,
		done:        make(chan struct{}),
		arrived:     make(chan struct{}),
		rcptReplies: make(map[string]*smtp.SMTPError),
		servers:     make(map[variant]*variantServer),
		live:        make(map[*trackedConn]struct{}),
	}
	m.wg.Add(1)
	go m.acceptLoop()
	t.Cleanup(m.close)
	return m
}

// Addr returns the address the fake MX listens on, as host:port.
func (m *MX) Addr() string { return m.ln.Addr().String() }

// Messages returns copies of the messages received so far, in arrival order.
func (m *MX) Messages() []Received {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.copyMessagesLocked()
}

// WaitMessages waits until at least n messages have arrived and returns them; it fails t when timeout passes
// first.
func (m *MX) WaitMessages(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		m.mu.Lock()
		if len(m.msgs) >= n {
			msgs := m.copyMessagesLocked()
			m.mu.Unlock()
			return msgs
		}
		got, arrived := len(m.msgs), m.arrived
		m.mu.Unlock()
		select {
		case <-arrived:
		case <-timer.C:
			t.Fatalf("testkit: fake MX %s received %d messages within %v, want %d", m.Addr(), got, timeout, n)
			return nil
		}
	}
}

// Reply scripts the reply to RCPT TO for rcpt (compared without regard to case), e.g. 550 [5 1 1] "No such
// user". A code of 0 removes the script and the recipient is accepted again.
func (m *MX) Reply(rcpt string, code int, enhanced [3]int, text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := strings.ToLower(rcpt)
	if code == 0 {
		delete(m.rcptReplies, key)
		return
	}
	m.rcptReplies[key] = smtpError(code, enhanced, text)
}

// ReplyData scripts the reply at the end of DATA for every following message. A 2xx code accepts the message
// (it is recorded) with that reply's text, e.g. 250 [2 0 0] "Ok: queued as FAKE123"; "\n" in text makes a
// multi-line reply. A code of 0 restores the normal 250 reply.
func (m *MX) ReplyData(code int, enhanced [3]int, text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if code == 0 {
		m.dataReply = nil
		return
	}
	m.dataReply = smtpError(code, enhanced, text)
}

// FailNext makes the next n transactions fail at MAIL FROM with the given reply.
func (m *MX) FailNext(n int, code int, enhanced [3]int, text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failNext = n
	m.failReply = smtpError(code, enhanced, text)
}

// SetDelay makes the fake MX wait d before each reply to EHLO, MAIL FROM, RCPT TO and the end of DATA, like a
// slow server. 0 removes the delay.
func (m *MX) SetDelay(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.delay = d
}

// HangUpAfterGreeting makes the fake MX close each connection when the client sends EHLO (or HELO), without
// replying.
func (m *MX) HangUpAfterGreeting(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hangUp = on
}

// EnableTLS makes the fake MX offer STARTTLS, with a self-signed certificate, on connections accepted from now
// on.
func (m *MX) EnableTLS() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mode.tls, m.mode.brokenTLS, m.mode.cert = true, false, nil
}

// EnableTLSWith makes the fake MX offer STARTTLS with cert (see CA.Issue: a good, expired or wrong-name
// certificate) on connections accepted from now on.
func (m *MX) EnableTLSWith(cert *tls.Certificate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mode.tls, m.mode.brokenTLS, m.mode.cert = true, false, cert
}

// DisableTLS stops the fake MX from offering STARTTLS on connections accepted from now on.
func (m *MX) DisableTLS() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mode.tls, m.mode.brokenTLS, m.mode.cert = false, false, nil
}

// BreakTLS makes the fake MX offer STARTTLS on connections accepted from now on but fail every TLS handshake
// (it has no certificate), to test the fallback to plain text.
func (m *MX) BreakTLS() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mode.tls, m.mode.brokenTLS, m.mode.cert = false, true, nil
}

// DisableSMTPUTF8 stops the fake MX from advertising SMTPUTF8 (and makes it refuse the MAIL FROM parameter) on
// connections accepted from now on.
func (m *MX) DisableSMTPUTF8() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mode.noUTF8 = true
}

// Connections returns the number of TCP connections accepted so far.
func (m *MX) Connections() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conns
}

// DropConnections closes every open connection from the server side, without a reply, as a server does
// with connections idle for too long.
func (m *MX) DropConnections() {
	m.mu.Lock()
	live := make([]*trackedConn, 0, len(m.live))
	for c := range m.live {
		live = append(live, c)
	}
	m.mu.Unlock()
	for _, c := range live {
		c.Close()
	}
}

// MaxConcurrent returns the largest number of mail transactions (MAIL FROM to the end of DATA or RSET) that
// were in progress at the same time.
func (m *MX) MaxConcurrent() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.maxActive
}

func (m *MX) copyMessagesLocked() []Received {
	out := make([]Received, len(m.msgs))
	for i, r := range m.msgs {
		r.To = append([]string(nil), r.To...)
		r.Data = append([]byte(nil), r.Data...)
		out[i] = r
	}
	return out
}

func smtpError(code int, enhanced [3]int, text string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode(enhanced), Message: text}
}

func (m *MX) acceptLoop() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			c.Close()
			return
		}
		m.conns++
		vs, err := m.serverLocked(m.mode)
		if err != nil {
			m.mu.Unlock()
			c.Close()
			continue
		}
		tc := &trackedConn{Conn: c, m: m}
		m.live[tc] = struct{}{}
		m.mu.Unlock()
		vs.ln.push(tc)
	}
}

// serverLocked returns the server for v, starting it on first use.
func (m *MX) serverLocked(v variant) (*variantServer, error) {
	if vs, ok := m.servers[v]; ok {
		return vs, nil
	}
	srv := smtp.NewServer(smtp.BackendFunc(m.newSession))
	srv.Domain = "mx.fake.test"
	srv.MaxMessageBytes = 64 << 20
	srv.MaxRecipients = 1000
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = 10 * time.Second
	srv.EnableSMTPUTF8 = !v.noUTF8
	srv.ErrorLog = log.New(io.Discard, "", 0)
	switch {
	case v.tls && v.cert != nil:
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*v.cert}, MinVersion: tls.VersionTLS12}
	case v.tls:
		if m.cert == nil {
			cert, err := selfSignedCert()
			if err != nil {
				return nil, err
			}
			m.cert = cert
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*m.cert}, MinVersion: tls.VersionTLS12}
	case v.brokenTLS:
		// A configuration without a certificate: STARTTLS is advertised and every handshake fails.
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	vs := &variantServer{srv: srv, ln: newChanListener(m.ln.Addr())}
	m.servers[v] = vs
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		_ = srv.Serve(vs.ln)
	}()
	return vs, nil
}

func (m *MX) close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	close(m.done)
	servers := make([]*variantServer, 0, len(m.servers))
	for _, vs := range m.servers {
		servers = append(servers, vs)
	}
	m.mu.Unlock()
	m.ln.Close()
	for _, vs := range servers {
		vs.srv.Close()
	}
	m.wg.Wait()
}

func (m *MX) sleep() {
	m.mu.Lock()
	d := m.delay
	m.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
}

func (m *MX) newSession(c *smtp.Conn) (smtp.Session, error) {
	m.sleep()
	m.mu.Lock()
	hangUp := m.hangUp
	m.mu.Unlock()
	if hangUp {
		c.Conn().Close()
		return nil, errors.New("hanging up")
	}
	s := &mxSession{m: m, helo: c.Hostname()}
	if host, _, err := net.SplitHostPort(c.Conn().RemoteAddr().String()); err == nil {
		s.remoteIP = host
	}
	_, s.tls = c.TLSConnectionState()
	return s, nil
}

// mxSession is one SMTP session (from EHLO to QUIT, or to STARTTLS) at the fake MX.
type mxSession struct {
	m        *MX
	helo     string
	remoteIP string
	tls      bool

	from string
	opts smtp.MailOptions
	to   []string
	inTx bool
}

func (s *mxSession) Mail(from string, opts *smtp.MailOptions) error {
	s.m.sleep()
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.failNext > 0 {
		s.m.failNext--
		return s.m.failReply
	}
	s.from, s.to = from, nil
	if opts != nil {
		s.opts = *opts
	}
	if !s.inTx {
		s.inTx = true
		s.m.active++
		s.m.maxActive = max(s.m.maxActive, s.m.active)
	}
	return nil
}

func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.sleep()
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if r, ok := s.m.rcptReplies[strings.ToLower(to)]; ok {
		return r
	}
	s.to = append(s.to, to)
	return nil
}

func (s *mxSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.sleep()
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	defer s.endTxLocked()
	if s.m.dataReply != nil && s.m.dataReply.Code/100 != 2 {
		return s.m.dataReply
	}
	s.m.msgs = append(s.m.msgs, Received{
		From:     s.from,
		To:       append([]string(nil), s.to...),
		Data:     data,
		RemoteIP: s.remoteIP,
		HELO:     s.helo,
		TLS:      s.tls,
		SMTPUTF8: s.opts.UTF8,
		Body:     string(s.opts.Body),
		Size:     s.opts.Size,
		At:       time.Now(),
	})
	close(s.m.arrived)
	s.m.arrived = make(chan struct{})
	if s.m.dataReply != nil {
		return s.m.dataReply // a scripted 2xx: go-smtp sends it as the reply
	}
	return nil
}

func (s *mxSession) Reset() {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	s.endTxLocked()
}

func (s *mxSession) Logout() error {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	s.endTxLocked()
	return nil
}

func (s *mxSession) endTxLocked() {
	if s.inTx {
		s.inTx = false
		s.m.active--
	}
	s.from, s.to, s.opts = "", nil, smtp.MailOptions{}
}

// trackedConn is an accepted connection, known to the MX until it is closed.
type trackedConn struct {
	net.Conn
	m    *MX
	once sync.Once
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.m.mu.Lock()
		delete(c.m.live, c)
		c.m.mu.Unlock()
	})
	return c.Conn.Close()
}

// chanListener hands the connections accepted by the MX's listener to one go-smtp server.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next connection, or net.ErrClosed once the listener is closed.
func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept.
func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr returns the MX's listening address.
func (l *chanListener) Addr() net.Addr { return l.addr }

// selfSignedCert makes a throwaway ECDSA certificate for the fake MX's STARTTLS.
func selfSignedCert() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mx.fake.test"},
		DNSNames:              []string{"mx.fake.test", "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
