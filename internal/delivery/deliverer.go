package delivery

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"easymail/internal/resolver"
	"easymail/internal/shaping"
)

// Defaults for the zero values of Options, the same as the configuration's (config.Delivery).
const (
	DefaultPort              = 25
	DefaultConnectTimeout    = 30 * time.Second
	DefaultCommandTimeout    = 5 * time.Minute
	DefaultMaxPerDestination = 10
)

// Options configures a Deliverer.
type Options struct {
	// Resolver looks up MX and address records. Required.
	Resolver resolver.Resolver
	// Port is the TCP port of remote MX hosts (config delivery.port). 0 means DefaultPort.
	Port int
	// ConnectTimeout bounds a TCP connect; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// CommandTimeout bounds the wait for each reply, and for each write of the message content; the reply to
	// the end of the content gets twice as long. 0 means DefaultCommandTimeout.
	CommandTimeout time.Duration
	// IdleTimeout is how long a connection is kept open after a transaction, for the next message to the
	// same host. 0 or less: connections are closed after each delivery.
	IdleTimeout time.Duration
	// MaxPerDestination is the most concurrent deliveries (hence connections) to one destination domain.
	// 0 or less means DefaultMaxPerDestination.
	MaxPerDestination int
	// Logger receives a debug record per attempt. nil discards.
	Logger *slog.Logger
	// Shaper, if not nil, applies the providers' limits and throttling backoff (package shaping).
	Shaper *shaping.Shaper
	// Dial opens a TCP connection from local to remote within ctx; network is "tcp4" or "tcp6". nil means a
	// net.Dialer bound to the local address.
	Dial func(ctx context.Context, network string, local, remote netip.AddrPort) (net.Conn, error)

	// TLSPolicy is the default TLS policy (delivery.tls_policy); the zero value is TLSMay.
	TLSPolicy TLSPolicy
	// TLSPolicies are the destinations' own policies (delivery.tls_policies), by domain.
	TLSPolicies map[string]TLSPolicy
	// RootCAs verify MX certificates under verify and MTA-STS; nil means the system's roots.
	RootCAs *x509.CertPool
	// MTASTS gives the destinations' MTA-STS policies; nil turns MTA-STS off.
	MTASTS STSPolicies
	// TLSA looks up the MX hosts' TLSA records; it must answer only with what a validating resolver
	// validated (dns.trust_ad). nil turns DANE off.
	TLSA resolver.TLSAResolver
	// Reporter counts sessions under MTA-STS and DANE for TLS-RPT; nil for none.
	Reporter TLSReporter
}

// Deliverer carries messages to the mail exchangers of their destination domain. It is safe for concurrent
// use.
type Deliverer struct {
	resolver          resolver.Resolver
	port              int
	connectTimeout    time.Duration
	commandTimeout    time.Duration
	log               *slog.Logger
	dial              func(ctx context.Context, network string, local, remote netip.AddrPort) (net.Conn, error)
	limits            *limiter
	pool              *pool
	maxPerDestination int

	tlsDefault  TLSPolicy
	tlsPolicies map[string]TLSPolicy
	roots       *x509.CertPool
	sts         STSPolicies
	tlsa        resolver.TLSAResolver
	reporter    TLSReporter
	shaper      *shaping.Shaper
}

// New returns a Deliverer configured by o, with defaults for its zero values. It panics when o.Resolver is
// nil or o.Port is out of range, which are programming errors.
func New(o Options) *Deliverer {
	if o.Resolver == nil {
		panic("delivery: Options.Resolver is nil")
	}
	if o.Port < 0 || o.Port > 65535 {
		panic(fmt.Sprintf("delivery: Options.Port %d is out of range", o.Port))
	}
	d := &Deliverer{
		resolver:          o.Resolver,
		port:              o.Port,
		connectTimeout:    o.ConnectTimeout,
		commandTimeout:    o.CommandTimeout,
		log:               o.Logger,
		dial:              o.Dial,
		maxPerDestination: o.MaxPerDestination,
		tlsDefault:        o.TLSPolicy,
		tlsPolicies:       o.TLSPolicies,
		roots:             o.RootCAs,
		sts:               o.MTASTS,
		tlsa:              o.TLSA,
		reporter:          o.Reporter,
		shaper:            o.Shaper,
	}
	if d.port == 0 {
		d.port = DefaultPort
	}
	if d.connectTimeout <= 0 {
		d.connectTimeout = DefaultConnectTimeout
	}
	if d.commandTimeout <= 0 {
		d.commandTimeout = DefaultCommandTimeout
	}
	if d.maxPerDestination <= 0 {
		d.maxPerDestination = DefaultMaxPerDestination
	}
	if d.log == nil {
		d.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.dial == nil {
		d.dial = dialFrom
	}
	d.limits = newLimiter(d.maxPerDestination)
	d.pool = newPool(o.IdleTimeout, min(d.commandTimeout, 10*time.Second))
	return d
}

// Close says QUIT to and closes the idle connections. Deliveries in progress finish; their connections are
// closed instead of being kept.
func (d *Deliverer) Close() error {
	d.pool.close()
	return nil
}

// dialFrom connects to remote from local, the outbound IP the queue chose.
func dialFrom(ctx context.Context, network string, local, remote netip.AddrPort) (net.Conn, error) {
	dialer := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local)}
	return dialer.DialContext(ctx, network, remote.String())
}
