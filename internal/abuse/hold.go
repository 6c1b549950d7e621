package abuse

import (
	"context"
	"database/sql"
	"maps"

	"easymail/internal/customer"
)

// Hold holds the customer's outbound mail: its new messages are accepted and queued held, and the messages
// of it this node has queued and not delivered yet are held too. trigger names the cause for the metric
// ("volume", "refused", "operator") and reason explains it to the operator. It reports false when the
// customer was already held (or does not exist). The event is logged as a warning with audit=true.
func (p *Policies) Hold(ctx context.Context, customerID, trigger, reason string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var changed bool
	err := p.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		changed, err = customer.Hold(ctx, tx, customerID, reason, p.o.Now())
		return err
	})
	if err != nil || !changed {
		return false, err
	}
	// The snapshot changes at once, before any reload, so the next message is held.
	next := maps.Clone(*p.cur.Load())
	pol := p.Policy(customerID)
	pol.Held = true
	next[customerID] = pol
	p.cur.Store(&next)
	p.held.WithLabelValues(customerID).Set(1)
	if trigger != "operator" {
		p.detections.WithLabelValues(trigger).Inc()
	}
	queued, err := p.holdQueued(ctx, customerID)
	p.log.Warn("abuse: customer's outbound mail held; an operator must release or purge it", "audit", true,
		"event", "customer_held", "customer", customerID, "trigger", trigger, "reason", reason, "queued_held", queued)
	return true, err
}

// holdQueued holds the customer's messages that this node has queued and not delivered yet.
func (p *Policies) holdQueued(ctx context.Context, customerID string) (int, error) {
	if p.o.Queue == nil {
		return 0, nil
	}
	rows, err := p.o.DB.R.QueryContext(ctx, `SELECT id FROM messages WHERE customer_id = ? AND node_id = ? AND held = 0
		AND status IN ('queued', 'deferred')`, customerID, p.o.NodeID)
	if err != nil {
		return 0, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		// A message delivered (or deleted) since the query is no longer queued: nothing to hold.
		if err := p.o.Queue.Hold(ctx, id); err == nil {
			n++
		}
	}
	return n, nil
}
