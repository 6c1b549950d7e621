package events

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/store"
)

// DispatcherOptions configure a Dispatcher. Zero values get the defaults given.
type DispatcherOptions struct {
	DB  *store.DB
	Bus *Bus
	// Timeout bounds one POST, from connecting to the end of the answer. Default: 10s.
	Timeout time.Duration
	// MaxResponse is the most bytes of an answer read (the rest is not waited for). Default: 64 KiB.
	MaxResponse int64
	// RetryBase is the wait after the first failed attempt; each further failure doubles it, up to
	// RetryMax. Defaults: 30s and 1h.
	RetryBase, RetryMax time.Duration
	// MaxAttempts is the number of attempts after which a delivery is dead-lettered. Default: 12.
	MaxAttempts int
	// Workers is the most POSTs in progress at once. Default: 4.
	Workers int
	// PollInterval is how often the outbox is scanned besides the bus's kicks. Default: 1s.
	PollInterval time.Duration
	// RefusePrivate refuses to connect to loopback, private and link-local addresses (config
	// lifecycle.refuse_private_ips), so that a webhook URL cannot reach the operator's internal services.
	RefusePrivate bool
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
}

// Dispatcher POSTs the outbox's deliveries to the webhooks.
type Dispatcher struct {
	o       DispatcherOptions
	log     *slog.Logger
	client  *http.Client
	results *prometheus.CounterVec
	// purged is when finished deliveries were last deleted.
	purged time.Time
}

// NewDispatcher returns a dispatcher; Run runs it.
func NewDispatcher(o DispatcherOptions) *Dispatcher {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxResponse <= 0 {
		o.MaxResponse = 64 << 10
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 30 * time.Second
	}
	if o.RetryMax < o.RetryBase {
		o.RetryMax = max(time.Hour, o.RetryBase)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 12
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{o: o, log: o.Logger,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_webhook_deliveries_total",
			Help: "Webhook POSTs, by result: delivered (2xx answer), failed (to be retried), dead (given up)."}, []string{"result"})}
	if o.Registerer != nil {
		o.Registerer.MustRegister(d.results)
	}
	dialer := &net.Dialer{Timeout: o.Timeout}
	if o.RefusePrivate {
		dialer.Control = refusePrivate
	}
	d.client = &http.Client{
		Timeout: o.Timeout,
		Transport: &http.Transport{DialContext: dialer.DialContext, Proxy: nil, MaxIdleConnsPerHost: 2,
			IdleConnTimeout: 30 * time.Second, TLSHandshakeTimeout: o.Timeout, ResponseHeaderTimeout: o.Timeout},
		// A redirect is not followed: the answer counts as a failure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return d
}

// refusePrivate is a dialer's Control that refuses addresses that are not public unicast.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return err
	}
	ip := ap.Addr().Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(ip) {
		return fmt.Errorf("webhook address %s is not a public address", ip)
	}
	return nil
}

// Run delivers due deliveries until ctx ends, then waits for the POSTs in progress.
func (d *Dispatcher) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var kick <-chan struct{}
	if d.o.Bus != nil {
		kick = d.o.Bus.kick
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-timer.C:
		}
		for ctx.Err() == nil {
			n, err := d.round(ctx)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Error("webhooks: dispatch failed", "err", err)
				}
				break
			}
			if n == 0 {
				break
			}
		}
		d.purge(ctx)
		timer.Reset(d.o.PollInterval)
	}
}

// Finished deliveries are kept for the dead-letter view and for inspection: delivered ones for keepDelivered,
// dead ones for keepDead; purgeEvery is how often older ones are deleted.
const (
	keepDelivered = 7 * 24 * time.Hour
	keepDead      = 30 * 24 * time.Hour
	purgeEvery    = time.Hour
)

// purge deletes the finished deliveries past their keeping time, at most once per purgeEvery.
func (d *Dispatcher) purge(ctx context.Context) {
	now := time.Now()
	if now.Sub(d.purged) < purgeEvery {
		return
	}
	d.purged = now
	err := d.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM event_outbox WHERE (status = 'delivered' AND done_at < ?) OR (status = 'dead' AND done_at < ?)`,
			store.Millis(now.Add(-keepDelivered)), store.Millis(now.Add(-keepDead)))
		return err
	})
	if err != nil && ctx.Err() == nil {
		d.log.Warn("webhooks: purging finished deliveries failed", "err", err)
	}
}

// due is one delivery to make.
type due struct {
	id                  int64
	attempts            int
	eventID, event, url string
	secret, payload     string
}

// round claims and makes the due deliveries, at most Workers at once, and returns how many it made.
func (d *Dispatcher) round(ctx context.Context) (int, error) {
	now := time.Now()
	rows, err := d.o.DB.R.QueryContext(ctx, `SELECT o.id, o.attempts, o.event_id, o.event, w.url, w.secret, o.payload
		FROM event_outbox o JOIN webhooks w ON w.id = o.webhook_id
		WHERE o.status = 'pending' AND o.next_attempt_at <= ? ORDER BY o.next_attempt_at, o.id LIMIT ?`,
		store.Millis(now), d.o.Workers*4)
	if err != nil {
		return 0, err
	}
	var list []due
	for rows.Next() {
		var x due
		if err := rows.Scan(&x.id, &x.attempts, &x.eventID, &x.event, &x.url, &x.secret, &x.payload); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(list) == 0 {
		return 0, err
	}
	// The attempt and its retry time are recorded before the POST: a crash during it leaves the delivery due
	// again at that time, never lost and never retried in a hot loop.
	err = d.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		for i := range list {
			list[i].attempts++
			if _, err := tx.Exec(`UPDATE event_outbox SET attempts = ?, next_attempt_at = ? WHERE id = ? AND status = 'pending'`,
				list[i].attempts, store.Millis(now.Add(d.backoff(list[i].attempts))), list[i].id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	sem := make(chan struct{}, d.o.Workers)
	var wg sync.WaitGroup
	for _, x := range list {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d.finish(context.WithoutCancel(ctx), x, d.post(ctx, x))
		})
	}
	wg.Wait()
	return len(list), nil
}

// backoff is the wait after attempt number n fails: RetryBase doubled n-1 times, at most RetryMax.
func (d *Dispatcher) backoff(n int) time.Duration {
	w := d.o.RetryBase
	for i := 1; i < n && w < d.o.RetryMax; i++ {
		w *= 2
	}
	return min(w, d.o.RetryMax)
}

// post makes one POST and returns nil for a 2xx answer.
func (d *Dispatcher) post(ctx context.Context, x due) error {
	body := []byte(x.payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Easymail-Webhooks/1")
	req.Header.Set("X-Easymail-Event", x.event)
	req.Header.Set("X-Easymail-Event-Id", x.eventID)
	req.Header.Set(SignatureHeader, Sign(x.secret, time.Now(), body))
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Only so much of the answer is read, so a receiver cannot hold a worker with an endless body.
	_, rerr := io.CopyN(io.Discard, resp.Body, d.o.MaxResponse)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		d.log.Debug("webhooks: reading the answer", "err", rerr)
	}
	return nil
}

// finish records the outcome of a delivery's attempt.
func (d *Dispatcher) finish(ctx context.Context, x due, perr error) {
	now := store.Millis(time.Now())
	var err error
	switch {
	case perr == nil:
		d.results.WithLabelValues("delivered").Inc()
		err = d.o.DB.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE event_outbox SET status = 'delivered', last_error = '', done_at = ? WHERE id = ?`, now, x.id)
			return err
		})
	case x.attempts >= d.o.MaxAttempts:
		d.results.WithLabelValues("dead").Inc()
		d.log.Warn("webhooks: delivery given up (dead-lettered)", "delivery", x.id, "event", x.event, "event_id", x.eventID,
			"attempts", x.attempts, "err", perr)
		err = d.o.DB.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE event_outbox SET status = 'dead', last_error = ?, done_at = ? WHERE id = ?`, clip(perr.Error()), now, x.id)
			return err
		})
	default:
		d.results.WithLabelValues("failed").Inc()
		d.log.Info("webhooks: delivery failed; will retry", "delivery", x.id, "event_id", x.eventID, "attempts", x.attempts, "err", perr)
		err = d.o.DB.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE event_outbox SET last_error = ? WHERE id = ?`, clip(perr.Error()), x.id)
			return err
		})
	}
	if err != nil {
		d.log.Error("webhooks: recording a delivery failed; it will be retried", "delivery", x.id, "err", err)
	}
}

func clip(s string) string {
	if len(s) > 500 {
		return s[:500]
	}
	return s
}
