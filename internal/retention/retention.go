// Package retention enforces Easymail's personal-data rules on the message log: a job deletes the log rows
// of messages older than the retention period (6 months by default), in small batches that never hold up
// traffic, and purges expired suppression entries; and data subjects' records are exported and erased on
// request (datasubject.go).
//
// Message bodies are not kept after delivery to begin with: the queue removes a message's spool file as soon
// as no recipient is left to deliver. What this package deletes is the metadata: the messages, recipients and
// attempts rows, which the queue package owns and writes (queue.DeleteFinished, queue.Redact) as this package
// decides.
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/queue"
	"easymail/internal/store"
)

// Purger deletes expired entries of a list and returns how many. *bounce.List implements it.
type Purger interface {
	Purge(ctx context.Context) (int64, error)
}

// Options configure a Job.
type Options struct {
	// DB is the database; required.
	DB *store.DB
	// Log is the age after which a finished message's rows are deleted; 0 keeps them.
	Log time.Duration
	// Interval is the time between two runs. Default: 24h.
	Interval time.Duration
	// Batch is the most messages deleted in one transaction. Default: 1000.
	Batch int
	// Pause is the wait between two batches.
	Pause time.Duration
	// FirstRun is the wait before the first run after Run starts. Default: 1m.
	FirstRun time.Duration
	// Suppressions, if not nil, has its expired entries purged at each run.
	Suppressions Purger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Logger receives a line per run; nil discards.
	Logger *slog.Logger
	// Registerer receives the job's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Job is the retention job.
type Job struct {
	o       Options
	extra   []namedPurger
	log     *slog.Logger
	deleted *prometheus.CounterVec
	lastRun prometheus.Gauge
}

type namedPurger struct {
	name string
	p    Purger
}

// Also adds a list whose expired entries each run purges (the quarantine), counted in the metrics under
// name. Call it before Run.
func (j *Job) Also(name string, p Purger) { j.extra = append(j.extra, namedPurger{name, p}) }

// Result is what one run deleted.
type Result struct {
	Messages, Recipients, Attempts, Suppressions int64
	Batches                                      int
}

// New returns a retention job; Run runs it periodically, Once runs it now.
func New(o Options) *Job {
	if o.Interval <= 0 {
		o.Interval = 24 * time.Hour
	}
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.FirstRun <= 0 {
		o.FirstRun = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	j := &Job{o: o, log: o.Logger}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	j.deleted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_retention_deleted_total",
		Help: "Rows deleted by the retention job, by table (messages, recipients, attempts, suppressions, quarantine)."}, []string{"table"})
	j.lastRun = prometheus.NewGauge(prometheus.GaugeOpts{Name: "easymail_retention_last_run_timestamp_seconds",
		Help: "When the retention job last completed a run (Unix time)."})
	if o.Registerer != nil {
		o.Registerer.MustRegister(j.deleted, j.lastRun)
	}
	return j
}

// Run runs the job after FirstRun, then every Interval, until ctx ends.
func (j *Job) Run(ctx context.Context) {
	t := time.NewTimer(j.o.FirstRun)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := j.Once(ctx); err != nil && ctx.Err() == nil {
			j.log.Error("retention: run failed; the next run continues", "err", err)
		}
		t.Reset(j.o.Interval)
	}
}

// Once deletes now the rows of the finished messages received before now minus the retention period, a
// batch at a time, and purges the expired suppression entries. Messages still queued or held are kept
// whatever their age: their content is still in the spool and their rows are the queue.
func (j *Job) Once(ctx context.Context) (Result, error) {
	var res Result
	start := j.o.Now()
	if j.o.Suppressions != nil {
		n, err := j.o.Suppressions.Purge(ctx)
		if err != nil {
			return res, err
		}
		res.Suppressions = n
		j.deleted.WithLabelValues("suppressions").Add(float64(n))
	}
	for _, p := range j.extra {
		n, err := p.p.Purge(ctx)
		if err != nil {
			return res, err
		}
		j.deleted.WithLabelValues(p.name).Add(float64(n))
		if n > 0 {
			j.log.Info("retention: purged", "what", p.name, "deleted", n)
		}
	}
	if j.o.Log > 0 {
		cutoff := start.Add(-j.o.Log)
		for {
			n, err := j.batch(ctx, cutoff, &res)
			if err != nil {
				return res, err
			}
			if n < j.o.Batch {
				break
			}
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(j.o.Pause):
			}
		}
	}
	j.lastRun.Set(float64(j.o.Now().Unix()))
	j.log.Info("retention: run done", "older_than", j.o.Log, "messages", res.Messages, "recipients", res.Recipients,
		"attempts", res.Attempts, "suppressions", res.Suppressions, "batches", res.Batches,
		"took", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// batch deletes up to Batch finished messages received before cutoff, with their recipients and attempts,
// in one small transaction, and returns how many messages it selected.
func (j *Job) batch(ctx context.Context, cutoff time.Time, res *Result) (int, error) {
	p, err := queue.DeleteFinished(ctx, j.o.DB, cutoff, j.o.Batch)
	if err != nil || p.Selected == 0 {
		return 0, err
	}
	res.Messages += p.Messages
	res.Recipients += p.Recipients
	res.Attempts += p.Attempts
	res.Batches++
	j.deleted.WithLabelValues("messages").Add(float64(p.Messages))
	j.deleted.WithLabelValues("recipients").Add(float64(p.Recipients))
	j.deleted.WithLabelValues("attempts").Add(float64(p.Attempts))
	return p.Selected, nil
}
