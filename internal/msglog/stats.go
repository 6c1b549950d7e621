package msglog

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"easymail/internal/bounce"
	"easymail/internal/fielderr"
	"easymail/internal/queue"
	"easymail/internal/store"
)

// Statistics buckets and groupings.
const (
	BucketHour = "hour"
	BucketDay  = "day"

	GroupCustomer    = "customer"
	GroupDomain      = "domain"
	GroupDestination = "destination"
)

// MaxBuckets bounds the buckets of one statistics query.
const MaxBuckets = 2000

// StatsFilter selects the messages counted. Empty fields do not filter.
type StatsFilter struct {
	// Customer is a customer id.
	Customer string
	// Domain is a sending domain: the envelope sender's domain, or the header From's for the null sender.
	Domain string
	// Destination is a recipient domain.
	Destination string
	// Bucket is BucketHour (the default) or BucketDay; buckets start at whole UTC hours or days.
	Bucket string
	// Group splits the figures by GroupCustomer, GroupDomain or GroupDestination; "" gives one series.
	Group string
	// Since and Until bound the reception time. Until defaults to now, Since to 24 hours (hourly buckets) or
	// 30 days (daily buckets) before Until; both are widened to whole buckets.
	Since, Until time.Time
}

// ComputeStats counts the messages received between f.Since and f.Until, in the bucket of their reception:
// accepted, rejected and quarantined messages; their recipients delivered, bounced (by bounce class) and
// still pending; the deferred attempts; and the latency from reception to delivery. now is the default Until.
func ComputeStats(ctx context.Context, db *store.DB, f StatsFilter, now time.Time) (*Stats, error) {
	var size time.Duration
	switch f.Bucket {
	case "", BucketHour:
		f.Bucket, size = BucketHour, time.Hour
	case BucketDay:
		size = 24 * time.Hour
	default:
		return nil, &fielderr.Error{Field: "bucket", Msg: fmt.Sprintf("%q is not a bucket (hour or day)", f.Bucket)}
	}
	switch f.Group {
	case "", GroupCustomer, GroupDomain, GroupDestination:
	default:
		return nil, &fielderr.Error{Field: "group", Msg: fmt.Sprintf("%q is not a grouping (customer, domain or destination)", f.Group)}
	}
	if f.Until.IsZero() {
		f.Until = now
	}
	if f.Since.IsZero() {
		if f.Bucket == BucketHour {
			f.Since = f.Until.Add(-24 * time.Hour)
		} else {
			f.Since = f.Until.Add(-30 * 24 * time.Hour)
		}
	}
	since := f.Since.UTC().Truncate(size)
	until := f.Until.UTC().Truncate(size)
	if until.Before(f.Until) {
		until = until.Add(size)
	}
	if !since.Before(until) {
		return nil, &fielderr.Error{Field: "until", Msg: "must be after since"}
	}
	nb := int(until.Sub(since) / size)
	if nb > MaxBuckets {
		return nil, &fielderr.Error{Field: "since", Msg: fmt.Sprintf("the range holds %d %s buckets; at most %d", nb, f.Bucket, MaxBuckets)}
	}

	q := `SELECT m.id, m.received_at, m.customer_id, m.sender, m.from_domain, m.status, r.domain, r.status, r.bounce_class,
		r.updated_at, (SELECT COUNT(*) FROM attempts a WHERE a.message_id = r.message_id AND a.rcpt_idx = r.idx AND a.outcome = 'deferred')
		FROM messages m LEFT JOIN recipients r ON r.message_id = m.id WHERE m.received_at >= ? AND m.received_at < ?`
	args := []any{store.Millis(since), store.Millis(until)}
	if f.Customer != "" {
		q += " AND m.customer_id = ?"
		args = append(args, f.Customer)
	}
	if d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(f.Domain), ".")); d != "" {
		q += ` AND (lower(m.sender) LIKE ? ESCAPE '\' OR (m.sender = '' AND m.from_domain = ?))`
		args = append(args, "%@"+likeEscape(d), d)
	}
	if d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(f.Destination), ".")); d != "" {
		q += " AND r.domain = ?"
		args = append(args, d)
	}
	q += " ORDER BY m.received_at, m.id"
	rows, err := db.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	acc := newStatsAcc(since, size, nb)
	var lastID string
	counted := map[string]bool{} // group keys the current message was counted in
	for rows.Next() {
		var (
			id, customer, sender, fromDomain, status string
			received                                 int64
			domain, rstatus, class                   sql.NullString
			updated                                  sql.NullInt64
			deferred                                 int64
		)
		if err := rows.Scan(&id, &received, &customer, &sender, &fromDomain, &status, &domain, &rstatus, &class, &updated, &deferred); err != nil {
			return nil, err
		}
		if id != lastID {
			lastID = id
			clear(counted)
		}
		var key string
		switch f.Group {
		case GroupCustomer:
			key = customer
		case GroupDomain:
			key = senderDomain(sender, fromDomain)
		case GroupDestination:
			key = domain.String
		}
		b := acc.bucket(key, received)
		if !counted[key] {
			counted[key] = true
			switch status {
			case queue.StatusRejected:
				b.Rejected++
			case queue.StatusQuarantined:
				b.Received++
				b.Quarantined++
			default:
				b.Received++
			}
		}
		if !rstatus.Valid || status == queue.StatusRejected {
			continue
		}
		b.Recipients++
		b.Deferred += deferred
		switch rstatus.String {
		case queue.StatusDelivered:
			b.Delivered++
			if updated.Valid {
				acc.latency(key, received, float64(updated.Int64-received)/1000)
			}
		case queue.StatusBounced:
			b.Bounced++
			c := class.String
			if c == "" {
				c = bounce.Other
			}
			if b.BouncedByClass == nil {
				b.BouncedByClass = map[string]int64{}
			}
			b.BouncedByClass[c]++
		case queue.StatusDeleted:
			b.Deleted++
		case queue.StatusLost:
			b.Lost++
		case queue.StatusQueued, queue.StatusDeferred:
			b.Pending++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return acc.result(f, since, until), nil
}

// senderDomain is the sending domain of a message: its envelope sender's, or its header From's for the null
// sender.
func senderDomain(sender, fromDomain string) string {
	if i := strings.LastIndexByte(sender, '@'); i >= 0 {
		return strings.ToLower(sender[i+1:])
	}
	return strings.ToLower(fromDomain)
}

// statsAcc accumulates the buckets of every group.
type statsAcc struct {
	since  time.Time
	size   time.Duration
	n      int
	groups map[string]*groupAcc
}

type groupAcc struct {
	buckets   []StatBucket
	latencies [][]float64
}

func newStatsAcc(since time.Time, size time.Duration, n int) *statsAcc {
	return &statsAcc{since: since, size: size, n: n, groups: map[string]*groupAcc{}}
}

func (a *statsAcc) group(key string) *groupAcc {
	g := a.groups[key]
	if g == nil {
		g = &groupAcc{buckets: make([]StatBucket, a.n), latencies: make([][]float64, a.n)}
		for i := range g.buckets {
			g.buckets[i].Start = a.since.Add(time.Duration(i) * a.size)
		}
		a.groups[key] = g
	}
	return g
}

func (a *statsAcc) index(received int64) int {
	i := int(store.Time(received).Sub(a.since) / a.size)
	return max(0, min(i, a.n-1))
}

func (a *statsAcc) bucket(key string, received int64) *StatBucket {
	return &a.group(key).buckets[a.index(received)]
}

func (a *statsAcc) latency(key string, received int64, seconds float64) {
	g := a.group(key)
	i := a.index(received)
	g.latencies[i] = append(g.latencies[i], max(0, seconds))
}

func (a *statsAcc) result(f StatsFilter, since, until time.Time) *Stats {
	out := &Stats{Bucket: f.Bucket, Since: since, Until: until, Group: f.Group, Series: []StatSeries{}}
	keys := make([]string, 0, len(a.groups))
	for k := range a.groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if f.Group == "" && len(keys) == 0 {
		// One series, even when empty, so that a chart has its buckets.
		a.group("")
		keys = []string{""}
	}
	for _, k := range keys {
		g := a.groups[k]
		s := StatSeries{Key: k, Buckets: g.buckets}
		var all []float64
		for i := range g.buckets {
			b := &g.buckets[i]
			b.Latency = percentiles(g.latencies[i])
			all = append(all, g.latencies[i]...)
			addCounts(&s.Total, &b.StatCounts)
		}
		s.Total.Latency = percentiles(all)
		out.Series = append(out.Series, s)
	}
	return out
}

func addCounts(t, b *StatCounts) {
	t.Received += b.Received
	t.Recipients += b.Recipients
	t.Delivered += b.Delivered
	t.Bounced += b.Bounced
	t.Pending += b.Pending
	t.Deleted += b.Deleted
	t.Lost += b.Lost
	t.Deferred += b.Deferred
	t.Rejected += b.Rejected
	t.Quarantined += b.Quarantined
	for c, n := range b.BouncedByClass {
		if t.BouncedByClass == nil {
			t.BouncedByClass = map[string]int64{}
		}
		t.BouncedByClass[c] += n
	}
}

// percentiles returns the nearest-rank percentiles of v (which it sorts), rounded to milliseconds.
func percentiles(v []float64) Latency {
	if len(v) == 0 {
		return Latency{}
	}
	sort.Float64s(v)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(v)))) - 1
		return math.Round(v[max(0, min(i, len(v)-1))]*1000) / 1000
	}
	return Latency{P50: rank(50), P90: rank(90), P99: rank(99), Max: rank(100)}
}
