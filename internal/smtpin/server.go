// Package smtpin is Easymail's customer-facing SMTP server (RFC 5321 with STARTTLS, SIZE, 8BITMIME,
// PIPELINING, ENHANCEDSTATUSCODES, SMTPUTF8 and CHUNKING), built on emersion/go-smtp.
//
// A connection is accepted only from a registered customer's IPs (checked before the greeting), the envelope
// sender and the header From must be the customer's, and a message is answered 250 only after its content
// is fsynced to the spool and its queue row committed. This package is the one place where errors become SMTP
// replies: everything returned to go-smtp is an unwrapped *smtp.SMTPError, and an error without an SMTP
// meaning becomes a temporary 451, never a permanent refusal.
package smtpin

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/access"
	"easymail/internal/msgid"
	"easymail/internal/queue"
	"easymail/internal/spool"
)

// Queue is where accepted messages go, and where refusals are logged. *queue.Queue implements it.
type Queue interface {
	Enqueue(ctx context.Context, env queue.Envelope) error
	LogRejected(ctx context.Context, env queue.Envelope, reason string) error
}

// Options configure a Server.
type Options struct {
	Hostname       string
	Access         *access.Access
	Spool          *spool.Spool
	Queue          Queue
	TLS            *tls.Config
	MaxMessageSize int64
	MaxRecipients  int
	MaxReceived    int
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
	// DKIM signs accepted messages and records their authentication results; nil signs nothing.
	DKIM Authenticator
	// Protection is the burst and abuse protection (limits.go); the zero value protects nothing.
	Protection Protection
	// Suppressions, if not nil, refuses recipients on the customer's suppression list at RCPT (550 5.1.1).
	Suppressions Suppressions
	// Scan, if not nil, scans every message during DATA, before the reply (scan.go); Quarantine keeps the
	// messages it quarantines.
	Scan       Scanner
	Quarantine Quarantine
	// Unsubscribe, if not nil, gives the one-click unsubscription fields added to the single-recipient
	// messages of customers that delegate it (unsubscribe.go).
	Unsubscribe Unsubscriber
	// MaxHeaderSize bounds the header section in bytes and MaxHeaderFields its number of fields; over
	// either the message is refused with "552 5.3.4". 0 means the default (102400 bytes, 1000 fields).
	MaxHeaderSize   int
	MaxHeaderFields int
}

// Suppressions tells whether a recipient is on a customer's suppression list, with the text of the refusal.
// *bounce.List implements it.
type Suppressions interface {
	Suppressed(ctx context.Context, customerID, rcpt string) (reason string, ok bool)
}

// Server serves SMTP on any number of listeners.
type Server struct {
	o   Options
	log *slog.Logger
	m   *metrics
	srv *smtp.Server
	// guard is the connection-level protection (listener.go).
	guard *guard

	mu        sync.Mutex
	listeners []net.Listener
	// rejects rate-limits the log lines of refused connections.
	rejects rejectLog
}

// New returns a server; call Serve for each listener.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.MaxHeaderSize <= 0 {
		o.MaxHeaderSize = defaultMaxHeaderSize
	}
	if o.MaxHeaderFields <= 0 {
		o.MaxHeaderFields = defaultMaxHeaderFields
	}
	s := &Server{o: o, log: o.Logger, m: newMetrics(o.Registerer)}
	s.protect()
	srv := smtp.NewServer(backend{s})
	srv.Domain = o.Hostname
	srv.TLSConfig = o.TLS
	srv.MaxMessageBytes = o.MaxMessageSize
	// Recipients over the limit get our own 452 4.5.3 from Rcpt, not go-smtp's.
	srv.MaxRecipients = 0
	srv.ReadTimeout = o.ReadTimeout
	srv.WriteTimeout = o.WriteTimeout
	srv.EnableSMTPUTF8 = true
	srv.EnableDSN = true
	srv.ErrorLog = slogAdapter{o.Logger}
	s.srv = srv
	return s
}

// Serve accepts connections on l until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	err := s.srv.Serve(&gatedListener{Listener: l, srv: s})
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for the sessions in progress to end, until ctx ends; then
// it closes them. A message whose DATA was acknowledged is already queued; one in transfer gets no reply and
// is retried by the client.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	cc, ok := unwrapClient(c.Conn())
	if !ok {
		return nil, toSMTP(errors.New("connection without a customer"))
	}
	_, isTLS := c.TLSConnectionState()
	sess := &session{
		s:        b.s,
		conn:     c,
		customer: cc.customer,
		ip:       cc.ip,
		connID:   cc.id,
		tls:      isTLS,
	}
	sess.log = b.s.log.With("conn_id", cc.id, "customer", cc.customer.ID, "ip", cc.ip.String())
	b.s.m.sessions.Inc()
	return sess, nil
}

func newConnID() string { return msgid.Random(5) }

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) { a.l.Debug("smtp: " + sprintf(format, v...)) }
func (a slogAdapter) Println(v ...any)               { a.l.Debug("smtp: " + sprint(v...)) }
