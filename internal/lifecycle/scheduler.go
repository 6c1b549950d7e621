// Package lifecycle runs the customers' termination schedule (docs/lifecycle.md): before a scheduled
// deactivation it mails notices to the customer's contacts (by default 30 and 7 days before), at the date it
// deactivates the customer (its mail is then refused with 550 5.7.1) and tells the contacts, and after a
// grace period it removes the customer's relay hosts, domains and source IPs and revokes its tokens.
//
// The schedule lives in the database, so the scheduler survives restarts, and several nodes may run it at
// once: each notice is recorded in lifecycle_notices in the same transaction that queues it (its primary key
// makes a second attempt fail and queue nothing), so a notice is never sent twice.
package lifecycle

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/customer"
	"easymail/internal/store"
)

// Mailer queues a notice through Easymail itself; *queue.Queue implements it. The message is queued if and
// only if also succeeds, in the same transaction.
type Mailer interface {
	SubmitWith(ctx context.Context, from, to, subject, body string, also func(tx *sql.Tx, id string) error) (string, error)
}

// Options configure a Scheduler.
type Options struct {
	// DB is the database (the notices sent); required.
	DB *store.DB
	// Customers owns the customers' rows: the scheduler lists the ending ones and moves them through it;
	// required.
	Customers *customer.Service
	// Mailer queues the notices; required.
	Mailer Mailer
	// From is the notices' sender, e.g. postmaster@relay.example.net; required.
	From string
	// Notices are the delays before a deactivation at which the contacts are warned. Default: 720h, 168h.
	Notices []time.Duration
	// Grace is the time from deactivation to removal. Default: 0 (removal at the next run).
	Grace time.Duration
	// Interval is the time between two runs. Default: 1m.
	Interval time.Duration
	// Service names the relay in the notices, e.g. relay.example.net.
	Service string
	// SPFInclude is the SPF mechanism the customer may remove after the end, e.g. include:_spf.example.net.
	SPFInclude string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnChange is called after the scheduler deactivated or removed a customer, so that the SMTP access
	// table reloads. Optional.
	OnChange func()
	// Logger receives what the scheduler does; nil discards it.
	Logger *slog.Logger
	// Registerer receives the metrics; optional.
	Registerer prometheus.Registerer
}

// Scheduler runs the termination schedule. Tick is safe to call concurrently with Run (the database keeps
// them apart).
type Scheduler struct {
	o           Options
	log         *slog.Logger
	runs        prometheus.Counter
	notices     *prometheus.CounterVec
	transitions *prometheus.CounterVec
}

// Notice kinds, as recorded and as the metrics' kind label: "before" (a warning) or "deactivated".
const (
	kindDeactivated = "deactivated"
)

// New returns a scheduler; call Run.
func New(o Options) *Scheduler {
	if o.Notices == nil {
		o.Notices = []time.Duration{720 * time.Hour, 168 * time.Hour}
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OnChange == nil {
		o.OnChange = func() {}
	}
	s := &Scheduler{o: o, log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.runs = prometheus.NewCounter(prometheus.CounterOpts{Name: "easymail_lifecycle_runs_total",
		Help: "Completed runs of the customer lifecycle scheduler."})
	// kind: before, deactivated.
	s.notices = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_lifecycle_notices_total",
		Help: "Termination notices queued, by kind (before, deactivated)."}, []string{"kind"})
	// status: deactivated, removed.
	s.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_lifecycle_transitions_total",
		Help: "Customers moved by the scheduler, by new status (deactivated, removed)."}, []string{"status"})
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.runs, s.notices, s.transitions)
	}
	return s
}

// Run runs Tick at once and then every Interval until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("lifecycle: run failed; the next run continues", "err", err)
		}
		t.Reset(s.o.Interval)
	}
}

// Tick does what is due now: notices, deactivations and removals. An error stops the run; what was done
// before it stays done.
func (s *Scheduler) Tick(ctx context.Context) error {
	now := s.o.Now()
	list, err := s.o.Customers.Ending(ctx)
	if err != nil {
		return err
	}
	changed := false
	for _, c := range list {
		var err error
		var moved bool
		switch c.Status {
		case customer.StatusTerminating:
			if now.Before(c.DeactivateAt) {
				err = s.warn(ctx, c, now)
			} else {
				moved, err = s.deactivate(ctx, c, now)
			}
		case customer.StatusDeactivated:
			if !now.Before(c.DeactivateAt.Add(s.o.Grace)) {
				moved, err = s.remove(ctx, c, now)
			}
		}
		changed = changed || moved
		if err != nil {
			if changed {
				s.o.OnChange()
			}
			return fmt.Errorf("customer %s: %w", c.ID, err)
		}
	}
	if changed {
		s.o.OnChange()
	}
	s.runs.Inc()
	return nil
}

// warn sends the warning due now, if any: the one of the shortest delay already reached (a termination
// scheduled 10 days ahead gets its 7-day warning later, and one warning now instead of the 30-day one).
func (s *Scheduler) warn(ctx context.Context, c customer.Ending, now time.Time) error {
	var cur time.Duration
	found := false
	for _, d := range s.o.Notices {
		if !now.Before(c.DeactivateAt.Add(-d)) && (!found || d < cur) {
			cur, found = d, true
		}
	}
	if !found {
		return nil
	}
	kind := fmt.Sprintf("before-%dh", int64(cur/time.Hour))
	subject := fmt.Sprintf("Your Easymail relay service ends on %s", dayOf(c.DeactivateAt))
	body := fmt.Sprintf("Hello,\n\nthe relay service of %s for %s ends on %s (in %s).\n\n"+
		"From that time, mail from your servers will be refused (550 5.7.1). Please send your outgoing mail "+
		"another way by then, and remove %s from your SPF records once you no longer use it.\n\n"+
		"If this is a mistake, contact us before that date: the termination can be cancelled until then.\n",
		s.o.Service, c.Name, stamp(c.DeactivateAt), left(c.DeactivateAt.Sub(now)), s.o.SPFInclude)
	return s.send(ctx, c, kind, subject, body)
}

// deactivate tells the contacts and sets the status to deactivated, from which the SMTP side refuses the
// customer's mail.
func (s *Scheduler) deactivate(ctx context.Context, c customer.Ending, now time.Time) (bool, error) {
	subject := "Your Easymail relay service has ended"
	body := fmt.Sprintf("Hello,\n\nthe relay service of %s for %s ended on %s. Mail from your servers is now refused "+
		"(550 5.7.1). Your relay hosts, domains and addresses will be removed on %s.\n", s.o.Service, c.Name,
		stamp(c.DeactivateAt), stamp(c.DeactivateAt.Add(s.o.Grace)))
	if err := s.send(ctx, c, kindDeactivated, subject, body); err != nil {
		return false, err
	}
	moved, err := s.o.Customers.Deactivate(ctx, c.ID, c.DeactivateAt, now)
	if moved {
		s.transitions.WithLabelValues(string(customer.StatusDeactivated)).Inc()
		s.log.Info("lifecycle: customer deactivated", "customer", c.ID, "deactivate_at", c.DeactivateAt)
	}
	return moved, err
}

// remove deletes the customer's relay hosts, domains (with their DKIM keys) and source IPs, revokes its
// tokens and sets the status to removed. The customer row and its message log stay.
func (s *Scheduler) remove(ctx context.Context, c customer.Ending, now time.Time) (bool, error) {
	removed, err := s.o.Customers.Remove(ctx, c.ID, c.DeactivateAt, now)
	moved := removed != nil
	if moved {
		s.transitions.WithLabelValues(string(customer.StatusRemoved)).Inc()
		s.log.Info("lifecycle: customer removed after the grace period", "customer", c.ID)
	}
	return moved, err
}

// send queues one notice of kind to each contact that has not had it for this deactivation date.
func (s *Scheduler) send(ctx context.Context, c customer.Ending, kind, subject, body string) error {
	for _, to := range c.Contacts {
		sent, err := customer.NoticeSent(ctx, s.o.DB, c.ID, c.DeactivateAt, kind, to)
		if err != nil {
			return err
		}
		if sent {
			continue
		}
		id, err := s.o.Mailer.SubmitWith(ctx, s.o.From, to, subject, body, func(tx *sql.Tx, id string) error {
			return customer.RecordNotice(ctx, tx, c.ID, c.DeactivateAt, kind, to, id, s.o.Now())
		})
		if store.IsUniqueViolation(err) {
			continue // another node sent it meanwhile
		}
		if err != nil {
			return fmt.Errorf("queueing the %s notice to %s: %w", kind, to, err)
		}
		label := "before"
		if kind == kindDeactivated {
			label = kindDeactivated
		}
		s.notices.WithLabelValues(label).Inc()
		s.log.Info("lifecycle: notice queued", "customer", c.ID, "kind", kind, "to", to, "queue_id", id)
	}
	return nil
}

func dayOf(t time.Time) string { return t.UTC().Format("2 January 2006") }
func stamp(t time.Time) string { return t.UTC().Format("2 January 2006, 15:04 UTC") }

// left says a duration in days (rounded: a run a minute late still says "30 days"), or in hours under two
// days.
func left(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int64((d+12*time.Hour)/(24*time.Hour)))
	}
	h := int64((d + time.Hour - 1) / time.Hour)
	if h <= 1 {
		return "less than an hour"
	}
	return fmt.Sprintf("%d hours", h)
}
