package msglog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"easymail/internal/fielderr"
	"easymail/internal/queue"
	"easymail/internal/store"
)

// QueueFilter selects messages of the queue: those with recipients still to deliver and the held ones.
// Empty fields do not filter.
type QueueFilter struct {
	// Customer is a customer id.
	Customer string
	// Status is queue.StatusQueued, queue.StatusDeferred (neither held) or queue.StatusHeld.
	Status string
	// Domain is the domain of a pending recipient; Recipient a pending recipient's address, or a domain
	// (no "@").
	Domain    string
	Recipient string
	// Sender is the envelope sender's address, or a domain (no "@").
	Sender string
	// ReceivedBefore and ReceivedAfter bound the reception time: ReceivedAfter <= received < ReceivedBefore
	// (older than, younger than).
	ReceivedBefore, ReceivedAfter time.Time
	// Limit is the most messages of a page: DefaultLimit when 0, at most MaxLimit.
	Limit int
	// After is a paging cursor: only the messages listed after the message with this id.
	After string
}

// QueueStatuses are the statuses a queue filter takes.
func QueueStatuses() []string {
	return []string{queue.StatusQueued, queue.StatusDeferred, queue.StatusHeld}
}

// pendingRcpt is the SQL condition of a pending recipient r.
const pendingRcpt = "r.status IN ('queued', 'deferred')"

// queueWhere returns the conditions on messages m of f, cursor excluded. The waiting messages are found
// through the partial indexes of pending recipients and held messages, so the cost follows the queue's size,
// not the log's.
func (f QueueFilter) queueWhere() ([]string, []any, error) {
	where := []string{`m.id IN (SELECT r.message_id FROM recipients r WHERE ` + pendingRcpt + `
		UNION ALL SELECT h.id FROM messages h WHERE h.held = 1)`}
	var args []any
	if f.Customer != "" {
		// Not through the customer index: a customer's whole log is larger than the queue.
		where = append(where, "(m.customer_id || '') = ?")
		args = append(args, f.Customer)
	}
	switch f.Status {
	case "":
	case queue.StatusHeld:
		where = append(where, "m.held = 1")
	case queue.StatusQueued, queue.StatusDeferred:
		where = append(where, "m.held = 0 AND (m.status || '') = ?")
		args = append(args, f.Status)
	default:
		return nil, nil, &fielderr.Error{Field: "status", Msg: fmt.Sprintf("%q is not a queue status (one of %s)",
			f.Status, strings.Join(QueueStatuses(), ", "))}
	}
	if s := strings.TrimSpace(f.Sender); s != "" {
		if strings.Contains(s, "@") {
			where = append(where, "lower(m.sender) = lower(?)")
			args = append(args, strings.Trim(s, "<>"))
		} else {
			where = append(where, `lower(m.sender) LIKE ? ESCAPE '\'`)
			args = append(args, "%@"+likeEscape(strings.ToLower(strings.TrimPrefix(s, "@"))))
		}
	}
	var rc []string
	var rargs []any
	if r := strings.Trim(strings.TrimSpace(f.Recipient), "<>"); r != "" {
		if strings.Contains(r, "@") {
			rc = append(rc, "lower(r.address) = lower(?)")
			rargs = append(rargs, r)
		} else {
			rc = append(rc, "(r.domain || '') = ?")
			rargs = append(rargs, strings.ToLower(strings.TrimPrefix(r, "@")))
		}
	}
	if d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(f.Domain), ".")); d != "" {
		rc = append(rc, "(r.domain || '') = ?")
		rargs = append(rargs, d)
	}
	if len(rc) > 0 {
		where = append(where, "EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND "+pendingRcpt+" AND "+
			strings.Join(rc, " AND ")+")")
		args = append(args, rargs...)
	}
	if !f.ReceivedBefore.IsZero() {
		where = append(where, "m.received_at < ?")
		args = append(args, store.Millis(f.ReceivedBefore))
	}
	if !f.ReceivedAfter.IsZero() {
		where = append(where, "m.received_at >= ?")
		args = append(args, store.Millis(f.ReceivedAfter))
	}
	if !f.ReceivedBefore.IsZero() && !f.ReceivedAfter.IsZero() && !f.ReceivedAfter.Before(f.ReceivedBefore) {
		return nil, nil, &fielderr.Error{Field: "younger_than", Msg: "must be longer than older_than: no message is both"}
	}
	return where, args, nil
}

// QueuePage returns a page of the messages of the queue matching f, oldest first, each with its pending
// recipients only, and the totals of every match.
func QueuePage(ctx context.Context, db *store.DB, f QueueFilter) (*Page, error) {
	where, args, err := f.queueWhere()
	if err != nil {
		return nil, err
	}
	page := &Page{}
	if err := db.R.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(m.size), 0) FROM messages m WHERE `+
		strings.Join(where, " AND "), args...).Scan(&page.Total.Messages, &page.Total.Size); err != nil {
		return nil, err
	}
	if f.After != "" {
		var at int64
		err := db.R.QueryRowContext(ctx, `SELECT received_at FROM messages WHERE id = ?`, f.After).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, &fielderr.Error{Field: "after", Msg: fmt.Sprintf("message %q not found: give the next of the previous page", f.After)}
		}
		if err != nil {
			return nil, err
		}
		where = append(where, "(m.received_at > ? OR m.received_at = ? AND m.id > ?)")
		args = append(args, at, at, f.After)
	}
	n := limit(f.Limit)
	q := "SELECT " + summaryColumns + " FROM messages m WHERE " + strings.Join(where, " AND ") +
		" ORDER BY +m.received_at, m.id LIMIT ?"
	list, err := summariesOf(ctx, db, q, append(args, n+1), true)
	if err != nil {
		return nil, err
	}
	if len(list) > n {
		list = list[:n]
		page.Next = list[n-1].ID
	}
	page.Messages = list
	return page, nil
}

// QueueIDs returns the ids of every message of the queue matching f (Limit and After aside), oldest first.
func QueueIDs(ctx context.Context, db *store.DB, f QueueFilter) ([]string, error) {
	where, args, err := f.queueWhere()
	if err != nil {
		return nil, err
	}
	rows, err := db.R.QueryContext(ctx, "SELECT m.id FROM messages m WHERE "+strings.Join(where, " AND ")+
		" ORDER BY +m.received_at, m.id", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
