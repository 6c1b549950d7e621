package msglog

import (
	"context"
	"database/sql"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/queue"
	"easymail/internal/store"
)

// TopDestinations is the number of destination domains that get their own label in the deferral gauge; the
// others are summed under destination="other", so that the label set stays bounded.
const TopDestinations = 10

// Collector is a Prometheus collector of the queue's state, read from the database at each scrape: messages
// and recipients waiting by state, the age of the oldest waiting message, the deferred recipients of the top
// destinations, and the size of the suppression lists. The queries use the partial indexes of pending
// recipients and held messages, so a scrape costs the size of the queue, not of the log.
type Collector struct {
	db      *store.DB
	node    string
	timeout time.Duration
	now     func() time.Time

	messages, recipients, oldest, deferred, suppressions, up *prometheus.Desc
}

// NewCollector returns a collector of node nodeID's queue ("" for every node's).
func NewCollector(db *store.DB, nodeID string) *Collector {
	return &Collector{
		db: db, node: nodeID, timeout: 5 * time.Second, now: time.Now,
		messages: prometheus.NewDesc("easymail_queue_messages",
			"Messages in the queue, by state (queued, deferred, held).", []string{"state"}, nil),
		recipients: prometheus.NewDesc("easymail_queue_recipients",
			"Recipients waiting for delivery, by state (queued, deferred).", []string{"state"}, nil),
		oldest: prometheus.NewDesc("easymail_queue_oldest_message_age_seconds",
			"Age of the oldest message waiting in the queue (0 when it is empty).", nil, nil),
		deferred: prometheus.NewDesc("easymail_queue_deferred_recipients",
			"Deferred recipients by destination domain: the top destinations, the rest as \"other\".", []string{"destination"}, nil),
		suppressions: prometheus.NewDesc("easymail_suppressions",
			"Entries on the customers' suppression lists, expired ones not yet purged included.", nil, nil),
		up: prometheus.NewDesc("easymail_queue_stats_up",
			"Whether the last reading of the queue state from the database succeeded.", nil, nil),
	}
}

// Describe sends the collector's descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.messages, c.recipients, c.oldest, c.deferred, c.suppressions, c.up} {
		ch <- d
	}
}

// Collect reads the queue state and sends it. A failed reading sends easymail_queue_stats_up 0 only.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	s, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, st := range []string{queue.StatusQueued, queue.StatusDeferred, queue.StatusHeld} {
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, float64(s.messages[st]), st)
	}
	for _, st := range []string{queue.StatusQueued, queue.StatusDeferred} {
		ch <- prometheus.MustNewConstMetric(c.recipients, prometheus.GaugeValue, float64(s.recipients[st]), st)
	}
	age := 0.0
	if s.oldest > 0 {
		age = max(0, c.now().Sub(store.Time(s.oldest)).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
	for _, d := range s.topDeferred() {
		ch <- prometheus.MustNewConstMetric(c.deferred, prometheus.GaugeValue, float64(d.n), d.domain)
	}
	ch <- prometheus.MustNewConstMetric(c.suppressions, prometheus.GaugeValue, float64(s.suppressions))
}

type queueState struct {
	messages     map[string]int64
	recipients   map[string]int64
	oldest       int64 // received_at of the oldest waiting message, 0 when none
	deferredBy   map[string]int64
	suppressions int64
}

type destCount struct {
	domain string
	n      int64
}

// topDeferred returns the TopDestinations domains with the most deferred recipients, then "other".
func (s *queueState) topDeferred() []destCount {
	var all []destCount
	for d, n := range s.deferredBy {
		all = append(all, destCount{d, n})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].domain < all[j].domain
	})
	var other int64
	if len(all) > TopDestinations {
		for _, d := range all[TopDestinations:] {
			other += d.n
		}
		all = all[:TopDestinations]
	}
	return append(all, destCount{"other", other})
}

func (c *Collector) read(ctx context.Context) (*queueState, error) {
	s := &queueState{messages: map[string]int64{}, recipients: map[string]int64{}, deferredBy: map[string]int64{}}
	nodeCond, args := "", []any{}
	if c.node != "" {
		nodeCond, args = " AND m.node_id = ?", []any{c.node}
	}
	// Waiting recipients by state and destination, through the partial index of pending recipients.
	rows, err := c.db.R.QueryContext(ctx, `SELECT r.status, r.domain, COUNT(*), MIN(m.received_at)
		FROM recipients r JOIN messages m ON m.id = r.message_id
		WHERE r.status IN ('queued', 'deferred')`+nodeCond+` GROUP BY r.status, r.domain`, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var status, domain string
		var n, oldest int64
		if err := rows.Scan(&status, &domain, &n, &oldest); err != nil {
			rows.Close()
			return nil, err
		}
		s.recipients[status] += n
		if status == queue.StatusDeferred {
			s.deferredBy[domain] += n
		}
		if s.oldest == 0 || oldest < s.oldest {
			s.oldest = oldest
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Waiting messages by state: held, else the status the queue keeps (deferred when a recipient is).
	rows, err = c.db.R.QueryContext(ctx, `SELECT CASE WHEN m.held = 1 THEN 'held' ELSE m.status END, COUNT(*) FROM messages m
		WHERE m.id IN (SELECT r.message_id FROM recipients r WHERE r.status IN ('queued', 'deferred'))`+nodeCond+`
		GROUP BY 1`, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			rows.Close()
			return nil, err
		}
		s.messages[state] += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var n sql.NullInt64
	if err := c.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM suppressions`).Scan(&n); err != nil {
		return nil, err
	}
	s.suppressions = n.Int64
	return s, nil
}
