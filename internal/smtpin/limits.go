package smtpin

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/queue"
	"easymail/internal/ratelimit"
	"easymail/internal/smtperr"
)

// Protection is the burst and abuse protection of the SMTP server (docs/protection.md). The zero value
// protects nothing: no caps, no timeouts beyond ReadTimeout and WriteTimeout, no limits.
type Protection struct {
	// MaxConnections caps the sessions open at once; MaxConnectionsPerIP those from one client IP. Over
	// either, a new client is answered "421 4.7.0" at connect. 0 is no cap.
	MaxConnections      int
	MaxConnectionsPerIP int
	// ConnectionRatePerIP limits the new sessions of one client IP; over it, "421 4.7.0".
	ConnectionRatePerIP ratelimit.Rule
	// PregreetDelay is how long a client is watched before the greeting; one that talks first is refused
	// with "554 5.5.1". With 0 the bytes already received at accept time are still caught.
	PregreetDelay time.Duration
	// SessionTimeout bounds a whole session and DataTimeout one message's transfer; 0 is no bound.
	SessionTimeout time.Duration
	DataTimeout    time.Duration
	// MaxErrors is the number of 4xx/5xx replies tolerated without an accepted message in between; the next
	// error is answered "421 4.7.0" and the session closed. 0 is no limit.
	MaxErrors int
	// Limiter takes the customers' message and recipient tokens. Nil: no per-customer rate limit.
	Limiter ratelimit.Limiter
	// Policies gives each customer's rate limits and hold state. Nil: no limit and no hold.
	Policies PolicySource
}

// PolicySource gives a customer's rate limits and hold state. *abuse.Policies implements it.
type PolicySource interface {
	Policy(customerID string) ratelimit.CustomerPolicy
}

// Replies of the protection.
var (
	errTooManySessions   = smtperr.New(421, smtperr.TempSecurity, "Too many connections, try again later")
	errTooManySessionsIP = smtperr.New(421, smtperr.TempSecurity, "Too many connections from your address, try again later")
	errConnectionRate    = smtperr.New(421, smtperr.TempSecurity, "Too many new connections from your address, try again later")
	errEarlyTalker       = smtperr.New(554, smtperr.PermBadCommand, "Protocol error: client sent data before the greeting")
	errTooManyErrors     = smtperr.New(421, smtperr.TempSecurity, "Too many errors in this session, closing")
	errDataTimeout       = smtperr.New(421, smtperr.TempBadConnection, "Timeout during message transfer, closing")
	// errRateLimited is completed with the kind and the wait: "451 4.7.0 Rate limit ...". 451 is temporary
	// (RFC 5321 §4.2.1), so the customer's MTA keeps the message and retries.
	errRateLimited = smtperr.New(451, smtperr.TempSecurity, "Rate limit exceeded")
)

// protectMetrics are the protection's counters.
type protectMetrics struct {
	rateLimited *prometheus.CounterVec // kind: messages, recipients
	closed      *prometheus.CounterVec // reason: too_many_errors, data_timeout
	held        prometheus.Counter
}

func newProtectMetrics(r prometheus.Registerer) *protectMetrics {
	m := &protectMetrics{
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_smtp_rate_limited_total",
			Help: "MAIL (messages) and RCPT (recipients) commands answered 451 4.7.0 by a customer's rate limit."}, []string{"kind"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_smtp_sessions_closed_total",
			Help: "SMTP sessions closed by the server, by reason (too_many_errors, data_timeout)."}, []string{"reason"}),
		held: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "easymail_smtp_held_messages_total", Help: "Messages accepted and queued held because their customer is held."}),
	}
	r.MustRegister(m.rateLimited, m.closed, m.held)
	return m
}

// protect sets up the connection guard and the holding of held customers' messages. New calls it.
func (s *Server) protect() {
	p := s.o.Protection
	s.guard = &guard{srv: s, p: p, slots: ratelimit.NewSlots(), rate: ratelimit.NewLocal(nil), pm: newProtectMetrics(s.o.Registerer)}
	if p.Policies != nil {
		s.o.Queue = holdingQueue{Queue: s.o.Queue, policies: p.Policies, held: s.guard.pm.held}
	}
}

// holdingQueue queues the messages of a held customer held.
type holdingQueue struct {
	Queue
	policies PolicySource
	held     prometheus.Counter
}

func (q holdingQueue) Enqueue(ctx context.Context, env queue.Envelope) error {
	if q.policies.Policy(env.CustomerID).Held {
		env.Held = true
	}
	err := q.Queue.Enqueue(ctx, env)
	if err == nil && env.Held {
		q.held.Inc()
	}
	return err
}

// limitCustomer takes n tokens of the customer's message or recipient buckets and returns the 451 refusal
// when there are not enough. A limiter that cannot decide lets the command through: limits shape bursts,
// and an outage of a shared limiter must not stop every customer's mail.
func (s *session) limitCustomer(kind string, rules []ratelimit.Rule) *smtperr.Error {
	g := s.s.guard
	if g.p.Limiter == nil || len(rules) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	d, err := g.p.Limiter.Allow(ctx, kind+":"+s.customer.ID, 1, rules...)
	if err != nil {
		s.log.Warn("smtp: rate limiter unavailable; command let through", "kind", kind, "err", err)
		return nil
	}
	if d.Allowed {
		return nil
	}
	g.pm.rateLimited.WithLabelValues(kind).Inc()
	e := *errRateLimited
	e.Message = fmt.Sprintf("Rate limit exceeded for your %s, try again in %ds", kind, int(math.Ceil(d.RetryAfter.Seconds())))
	e.Err = fmt.Errorf("%s over %s", kind, d.Rule)
	return &e
}

// policy returns the customer's policy, or none without a source.
func (s *session) policy() ratelimit.CustomerPolicy {
	if s.s.o.Protection.Policies == nil {
		return ratelimit.CustomerPolicy{}
	}
	return s.s.o.Protection.Policies.Policy(s.customer.ID)
}

// fail counts an error reply of the session and converts it for go-smtp. Past MaxErrors errors without an
// accepted message, the reply becomes "421 4.7.0" and the connection is closed after it (as Postfix's
// smtpd_hard_error_limit does).
func (s *session) fail(stage, to string, err error) error {
	s.errors++
	e := smtperr.From(err)
	s.reject(stage, to, e)
	if max := s.s.o.Protection.MaxErrors; max > 0 && s.errors > max {
		s.s.guard.pm.closed.WithLabelValues("too_many_errors").Inc()
		s.log.Info("smtp: too many errors; closing the session", "errors", s.errors, "last", e.Reply())
		s.closeAfterReply()
		return toSMTP(errTooManyErrors)
	}
	return toSMTP(e)
}

// closeAfterReply makes the next reply the last one of the connection.
func (s *session) closeAfterReply() {
	if cc, ok := unwrapClient(s.conn.Conn()); ok {
		cc.closeAfterReply.Store(true)
	}
}
