// Package msglog answers questions about the message log: searching messages by customer, sender,
// recipient, Message-ID, status and time; tracing one message with its recipients and every delivery
// attempt; and listing what is still queued. It only reads; the queue writes the rows.
package msglog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"easymail/internal/api"
	"easymail/internal/store"
)

// MessageSummary is one message in a result list.
type MessageSummary = api.MessageSummary

// MessageTrace is the whole history of one message.
type MessageTrace = api.Trace

// Message statuses. A held message shows as StatusHeld whatever its stored status.
const (
	StatusQueued      = "queued"
	StatusDeferred    = "deferred"
	StatusDelivered   = "delivered"
	StatusBounced     = "bounced"
	StatusRejected    = "rejected"
	StatusQuarantined = "quarantined"
	StatusHeld        = "held"
)

// Statuses returns the message statuses a search may filter on.
func Statuses() []string {
	return []string{StatusQueued, StatusDeferred, StatusDelivered, StatusBounced, StatusRejected,
		StatusQuarantined, StatusHeld}
}

// Result list sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// ErrNotFound is returned by Trace for an unknown message id.
var ErrNotFound = errors.New("no such message")

// FilterError is a search filter that cannot be applied.
type FilterError struct {
	Field string
	Msg   string
}

// Error returns "field: message".
func (e *FilterError) Error() string { return e.Field + ": " + e.Msg }

// Filter selects messages. Empty fields do not filter.
type Filter struct {
	// Customer is a customer id.
	Customer string
	// Sender is an envelope sender address, or a domain (no "@"): every sender at that domain.
	Sender string
	// Recipient is a recipient address, or a domain (no "@"): any recipient at that domain.
	Recipient string
	// MessageID is the Message-ID header, with or without its angle brackets.
	MessageID string
	// Status is one of Statuses().
	Status string
	// Since and Until bound the reception time: Since <= received < Until.
	Since, Until time.Time
	// Limit is the most messages returned: DefaultLimit when 0, at most MaxLimit.
	Limit int
	// Before is a paging cursor: only messages listed after the message with this id are returned.
	Before string
}

// summaryColumns selects a MessageSummary from messages m, pending recipients counted.
const summaryColumns = `m.id, m.customer_id, m.sender, m.header_from, m.message_id, m.subject, m.size,
	CASE WHEN m.held = 1 THEN 'held' ELSE m.status END, m.reason, m.received_at, m.done_at,
	(SELECT COUNT(*) FROM recipients r WHERE r.message_id = m.id AND r.status IN ('queued', 'deferred')),
	(SELECT MIN(r.next_attempt_at) FROM recipients r WHERE r.message_id = m.id AND r.status IN ('queued', 'deferred'))`

// Search returns the messages matching f, newest first.
func Search(ctx context.Context, db *store.DB, f Filter) ([]MessageSummary, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if f.Customer != "" {
		add("m.customer_id = ?", f.Customer)
	}
	if s := strings.TrimSpace(f.Sender); s != "" {
		if strings.Contains(s, "@") {
			add("m.sender = ?", strings.Trim(s, "<>"))
		} else {
			add(`m.sender LIKE ? ESCAPE '\'`, "%@"+likeEscape(strings.ToLower(s)))
		}
	}
	if r := strings.TrimSpace(f.Recipient); r != "" {
		if strings.Contains(r, "@") {
			add("EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.address = ?)", strings.Trim(r, "<>"))
		} else {
			add("EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.domain = ?)", strings.ToLower(r))
		}
	}
	if id := strings.Trim(strings.TrimSpace(f.MessageID), "<>"); id != "" {
		add("m.message_id IN (?, ?)", id, "<"+id+">")
	}
	switch f.Status {
	case "":
	case StatusHeld:
		add("(m.held = 1 OR m.status = ?)", StatusHeld)
	case StatusQueued, StatusDeferred, StatusDelivered, StatusBounced, StatusRejected, StatusQuarantined:
		add("m.status = ? AND m.held = 0", f.Status)
	default:
		return nil, &FilterError{Field: "status", Msg: fmt.Sprintf("%q is not a status (one of %s)", f.Status, strings.Join(Statuses(), ", "))}
	}
	if !f.Since.IsZero() {
		add("m.received_at >= ?", store.Millis(f.Since))
	}
	if !f.Until.IsZero() {
		add("m.received_at < ?", store.Millis(f.Until))
	}
	if f.Before != "" {
		add(`(m.received_at < (SELECT c.received_at FROM messages c WHERE c.id = ?)
			OR (m.received_at = (SELECT c.received_at FROM messages c WHERE c.id = ?) AND m.id < ?))`,
			f.Before, f.Before, f.Before)
	}
	q := "SELECT " + summaryColumns + " FROM messages m"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY m.received_at DESC, m.id DESC LIMIT ?"
	args = append(args, limit(f.Limit))
	return summaries(ctx, db, q, args)
}

// Queue returns the messages with recipients still to be delivered (queued or deferred) and the held ones,
// oldest first. customer "" means every customer; limit as in Filter.
func Queue(ctx context.Context, db *store.DB, customer string, lim int) ([]MessageSummary, error) {
	q := "SELECT " + summaryColumns + ` FROM messages m WHERE (m.held = 1 OR m.status = ? OR EXISTS (SELECT 1 FROM recipients r
		WHERE r.message_id = m.id AND r.status IN ('queued', 'deferred')))`
	args := []any{StatusHeld}
	if customer != "" {
		q += " AND m.customer_id = ?"
		args = append(args, customer)
	}
	q += " ORDER BY m.received_at, m.id LIMIT ?"
	args = append(args, limit(lim))
	return summaries(ctx, db, q, args)
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
			&m.Status, &m.Reason, &received, &done, &m.Pending, &next); err != nil {
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
	rows, err = db.R.QueryContext(ctx, `SELECT message_id, address FROM recipients WHERE message_id IN (?`+
		strings.Repeat(", ?", len(ids)-1)+`) ORDER BY message_id, idx`, ids...)
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
