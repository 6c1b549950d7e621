// Package msglog answers questions about the message log: searching messages by customer, sender,
// recipient, recipient domain, Message-ID, queue id, status, outbound IP, remote MX, verdict, bounce class and
// time (filter.go), exporting them as CSV (export.go), tracing one message with its recipients and every
// delivery attempt (trace.go), statistics over time (stats.go), the queue's size and age for Prometheus
// (metrics.go), and listing what is still queued. It only reads; the queue writes the rows.
package msglog

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"easymail/internal/queue"
	"easymail/internal/store"
)

// Statuses returns the message statuses a search may filter on.
func Statuses() []string {
	return []string{queue.StatusQueued, queue.StatusDeferred, queue.StatusDelivered, queue.StatusBounced, queue.StatusRejected,
		queue.StatusQuarantined, queue.StatusHeld, queue.StatusDeleted, queue.StatusLost}
}

// Result list sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// ErrNotFound is returned by Trace for an unknown message id.
var ErrNotFound = errors.New("no such message")

// summaryColumns selects a MessageSummary from messages m, pending recipients counted.
const summaryColumns = `m.id, m.customer_id, m.sender, m.header_from, m.message_id, m.subject, m.size,
	CASE WHEN m.held = 1 THEN 'held' ELSE m.status END, m.reason, m.stage, m.received_at, m.done_at,
	(SELECT COUNT(*) FROM recipients r WHERE r.message_id = m.id AND r.status IN ('queued', 'deferred')),
	(SELECT MIN(r.next_attempt_at) FROM recipients r WHERE r.message_id = m.id AND r.status IN ('queued', 'deferred'))`

// Queue returns the messages with recipients still to be delivered (queued or deferred) and the held ones,
// oldest first, each with its pending recipients only. customer "" means every customer; limit as in
// Filter. QueuePage filters further and pages.
func Queue(ctx context.Context, db *store.DB, customer string, lim int) ([]MessageSummary, error) {
	p, err := QueuePage(ctx, db, QueueFilter{Customer: customer, Limit: lim})
	if err != nil {
		return nil, err
	}
	return p.Messages, nil
}

func limit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// likeEscape escapes the LIKE wildcards of s with backslashes.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// summaries runs q (selecting summaryColumns) and fills each message's recipient addresses.
func summaries(ctx context.Context, db *store.DB, q string, args []any) ([]MessageSummary, error) {
	return summariesOf(ctx, db, q, args, false)
}

// summariesOf is summaries, with only the pending recipients (queued or deferred) when pendingOnly.
func summariesOf(ctx context.Context, db *store.DB, q string, args []any, pendingOnly bool) ([]MessageSummary, error) {
	rows, err := db.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	out := []MessageSummary{}
	byID := map[string]int{}
	for rows.Next() {
		var m MessageSummary
		var received int64
		var done, next sql.NullInt64
		if err := rows.Scan(&m.ID, &m.CustomerID, &m.Sender, &m.HeaderFrom, &m.MessageID, &m.Subject, &m.Size,
			&m.Status, &m.Reason, &m.Stage, &received, &done, &m.Pending, &next); err != nil {
			rows.Close()
			return nil, err
		}
		m.ReceivedAt = store.Time(received)
		m.DoneAt = optTime(done)
		m.NextAttemptAt = optTime(next)
		m.Recipients = []string{}
		byID[m.ID] = len(out)
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]any, len(out))
	for i, m := range out {
		ids[i] = m.ID
	}
	pending := ""
	if pendingOnly {
		pending = " AND status IN ('queued', 'deferred')"
	}
	rows, err = db.R.QueryContext(ctx, `SELECT message_id, address FROM recipients WHERE message_id IN (?`+
		strings.Repeat(", ?", len(ids)-1)+`)`+pending+` ORDER BY message_id, idx`, ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, addr string
		if err := rows.Scan(&id, &addr); err != nil {
			return nil, err
		}
		if i, ok := byID[id]; ok {
			out[i].Recipients = append(out[i].Recipients, addr)
		}
	}
	return out, rows.Err()
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.Time(v.Int64)
	return &t
}
