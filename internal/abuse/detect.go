package abuse

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"easymail/internal/store"
)

// windowCount is one customer's traffic in the detection window.
type windowCount struct {
	customer string
	created  time.Time
	total    int
	refused  int
}

// Check runs one detection pass over every customer not already held. A customer is held when, over the
// last compromise.window (and since the operator last lifted a hold of it):
//   - it has more messages than max(floor, factor × its average messages per hour over the baseline before
//     the window — at most its age, at least one hour); or
//   - at least refused_min messages, of which a share of refused_ratio or more were refused.
//
// DSNs are not counted. The counts come from the shared database, so every node sees the same traffic.
func (p *Policies) Check(ctx context.Context) error {
	c := p.o.Compromise
	now := p.o.Now()
	from := now.Add(-c.Window)
	rows, err := p.o.DB.R.QueryContext(ctx, `SELECT m.customer_id, c.created_at, COUNT(*),
		SUM(CASE WHEN m.status = 'rejected' THEN 1 ELSE 0 END)
		FROM messages m JOIN customers c ON c.id = m.customer_id
		WHERE m.received_at >= ? AND m.is_dsn = 0 AND c.held = 0
			AND (c.released_at IS NULL OR m.received_at >= c.released_at)
		GROUP BY m.customer_id, c.created_at`, store.Millis(from))
	if err != nil {
		return err
	}
	var counts []windowCount
	for rows.Next() {
		var w windowCount
		var created int64
		if err := rows.Scan(&w.customer, &created, &w.total, &w.refused); err != nil {
			rows.Close()
			return err
		}
		w.created = store.Time(created)
		counts = append(counts, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, w := range counts {
		trigger, reason, err := p.judge(ctx, w, now)
		if err != nil {
			return err
		}
		if trigger == "" {
			continue
		}
		if _, err := p.Hold(ctx, w.customer, trigger, reason); err != nil {
			return err
		}
	}
	return p.checkComplaints(ctx, now)
}

// checkComplaints holds the customers whose complaint rate over the complaint window is at or over the
// threshold, with enough complaints for the rate to mean something.
func (p *Policies) checkComplaints(ctx context.Context, now time.Time) error {
	if p.o.Complaints == nil || p.o.ComplaintRate <= 0 {
		return nil
	}
	counts, err := p.o.Complaints.CustomerComplaints(ctx, now.Add(-p.o.ComplaintWindow))
	if err != nil {
		return err
	}
	for _, c := range counts {
		if c.Complaints < max(p.o.ComplaintMin, 1) {
			continue
		}
		rate := float64(c.Complaints) / float64(max(c.Delivered, c.Complaints))
		if rate < p.o.ComplaintRate || p.Policy(c.CustomerID).Held {
			continue
		}
		reason := fmt.Sprintf("%d complaints for %d delivered recipients in the last %v: %.2f%% (threshold %.2f%%)",
			c.Complaints, c.Delivered, p.o.ComplaintWindow, 100*rate, 100*p.o.ComplaintRate)
		if _, err := p.Hold(ctx, c.CustomerID, "complaints", reason); err != nil {
			return err
		}
	}
	return nil
}

// judge decides whether the window's traffic is a compromise, and says why.
func (p *Policies) judge(ctx context.Context, w windowCount, now time.Time) (trigger, reason string, err error) {
	c := p.o.Compromise
	if c.RefusedRatio > 0 && w.total >= c.RefusedMin && float64(w.refused) >= c.RefusedRatio*float64(w.total) {
		return "refused", fmt.Sprintf("%d of its %d messages in the last %v were refused (threshold %.0f%%)",
			w.refused, w.total, c.Window, 100*c.RefusedRatio), nil
	}
	if w.total <= c.Floor {
		return "", "", nil
	}
	// Only customers over the floor get here, so the baseline query is rare.
	end := now.Add(-c.Window)
	start := now.Add(-c.Baseline)
	if w.created.After(start) {
		start = w.created
	}
	var n int
	if end.After(start) {
		err := p.o.DB.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE customer_id = ? AND received_at >= ?
			AND received_at < ? AND is_dsn = 0`, w.customer, store.Millis(start), store.Millis(end)).Scan(&n)
		if err != nil && err != sql.ErrNoRows {
			return "", "", err
		}
	}
	hours := math.Max(1, end.Sub(start).Hours())
	perHour := float64(n) / hours
	threshold := math.Max(float64(c.Floor), c.Factor*perHour)
	if float64(w.total) <= threshold {
		return "", "", nil
	}
	return "volume", fmt.Sprintf("%d messages in the last %v, over max(floor %d, %g × its average of %.1f/h over %.0fh)",
		w.total, c.Window, c.Floor, c.Factor, perHour, hours), nil
}
