// Package abuse keeps each customer's protection state — its rate limits and whether its mail is held —
// as an immutable snapshot of the database for the SMTP hot path, and detects compromised customers: one
// whose volume jumps far above its own baseline, or whose share of refused messages is high, has its
// outbound mail held (accepted and kept, not delivered) and an operator event raised, so that the shared
// outbound IPs are not burnt. An operator releases or purges the held mail (API, CLI).
package abuse

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/config"
	"easymail/internal/ratelimit"
	"easymail/internal/store"
)

// Holder holds a queued message. *queue.Queue implements it; its errors for a message that is gone or has
// nothing left to deliver are ignored.
type Holder interface {
	Hold(ctx context.Context, id string) error
}

// ComplaintRates counts the customers' complaints (feedback reports) and delivered recipients since a
// time. *feedback.Intake implements it.
type ComplaintRates interface {
	CustomerComplaints(ctx context.Context, from time.Time) ([]ComplaintCount, error)
}

// ComplaintCount is one customer's complaints and delivered recipients over a window.
type ComplaintCount struct {
	CustomerID            string
	Complaints, Delivered int
}

// Options configure Policies.
type Options struct {
	// DB is the database; required.
	DB *store.DB
	// Defaults are the limits of customers without their own (config limits:).
	Defaults ratelimit.CustomerLimits
	// Compromise configures detection (config compromise:).
	Compromise config.Compromise
	// NodeID selects this node's queue rows when already queued mail of a newly held customer is held.
	NodeID string
	// Queue holds the queued messages of a customer found compromised; nil holds only its new mail.
	Queue Holder
	// Complaints, if not nil, feeds the customers' complaint rates to detection: a customer with at least
	// ComplaintMin complaints over ComplaintWindow and a rate (complaints / delivered) of ComplaintRate or
	// more is held. A ComplaintRate of 0 turns that off.
	Complaints      ComplaintRates
	ComplaintWindow time.Duration
	ComplaintRate   float64
	ComplaintMin    int
	// Now is the clock; nil means time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Policies is the per-customer protection state. It is safe for concurrent use; Policy takes no lock.
type Policies struct {
	o   Options
	log *slog.Logger

	cur atomic.Pointer[map[string]ratelimit.CustomerPolicy]
	mu  sync.Mutex // serialises reloads and holds

	held       *prometheus.GaugeVec
	detections *prometheus.CounterVec
}

// New returns empty policies; call Reload to fill them.
func New(o Options) *Policies {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	p := &Policies{o: o, log: o.Logger,
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "easymail_customer_held",
			Help: "1 for each customer whose outbound mail is held (suspected compromise or operator hold)."}, []string{"customer"}),
		detections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_compromise_detections_total",
			Help: "Customers held by compromise detection, by trigger (volume, refused, complaints)."}, []string{"trigger"}),
	}
	o.Registerer.MustRegister(p.held, p.detections)
	empty := map[string]ratelimit.CustomerPolicy{}
	p.cur.Store(&empty)
	return p
}

// Policy returns the customer's policy as of the last reload; a customer not (yet) known gets the defaults.
func (p *Policies) Policy(customerID string) ratelimit.CustomerPolicy {
	if c, ok := (*p.cur.Load())[customerID]; ok {
		return c
	}
	return ratelimit.CustomerPolicy{Limits: p.o.Defaults}
}

// Reload reads every customer's limits and hold state and swaps the snapshot in.
func (p *Policies) Reload(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reload(ctx)
}

func (p *Policies) reload(ctx context.Context) error {
	rows, err := p.o.DB.R.QueryContext(ctx, `SELECT id, rl_messages_per_minute, rl_messages_per_hour, rl_recipients_per_minute,
		rl_recipients_per_hour, rl_burst, held FROM customers`)
	if err != nil {
		return err
	}
	defer rows.Close()
	next := map[string]ratelimit.CustomerPolicy{}
	for rows.Next() {
		var id string
		var mpm, mph, rpm, rph, burst sql.NullInt64
		var held bool
		if err := rows.Scan(&id, &mpm, &mph, &rpm, &rph, &burst, &held); err != nil {
			return err
		}
		d := p.o.Defaults
		next[id] = ratelimit.CustomerPolicy{Held: held, Limits: ratelimit.CustomerLimits{
			MessagesPerMinute:   orDefault(mpm, d.MessagesPerMinute),
			MessagesPerHour:     orDefault(mph, d.MessagesPerHour),
			RecipientsPerMinute: orDefault(rpm, d.RecipientsPerMinute),
			RecipientsPerHour:   orDefault(rph, d.RecipientsPerHour),
			Burst:               orDefault(burst, d.Burst),
		}}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	p.cur.Store(&next)
	p.held.Reset()
	for id, c := range next {
		if c.Held {
			p.held.WithLabelValues(id).Set(1)
		}
	}
	return nil
}

func orDefault(v sql.NullInt64, d int) int {
	if v.Valid {
		return int(v.Int64)
	}
	return d
}

// Run reloads the policies every minute (so that a change made by another node applies here) and, when
// detection is enabled, checks every customer at the configured interval, until ctx ends.
func (p *Policies) Run(ctx context.Context) {
	reload := time.NewTicker(time.Minute)
	defer reload.Stop()
	var check <-chan time.Time
	if p.o.Compromise.Enabled {
		t := time.NewTicker(p.o.Compromise.Interval)
		defer t.Stop()
		check = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload.C:
			if err := p.Reload(ctx); err != nil && ctx.Err() == nil {
				p.log.Error("abuse: policy reload failed", "err", err)
			}
		case <-check:
			if err := p.Check(ctx); err != nil && ctx.Err() == nil {
				p.log.Error("abuse: compromise check failed", "err", err)
			}
		}
	}
}
