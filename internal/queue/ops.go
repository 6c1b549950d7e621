package queue

import (
	"context"
	"database/sql"
	"time"

	"easymail/internal/store"
)

// Retry makes every undelivered recipient of message id due now.
func (q *Queue) Retry(ctx context.Context, id string) error {
	err := q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := checkQueued(tx, id); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE recipients SET next_attempt_at = ? WHERE message_id = ? AND status IN ('queued', 'deferred')`,
			store.Now(), id)
		return err
	})
	if err == nil {
		q.Kick()
	}
	return err
}

// Hold stops deliveries of message id until Release. A delivery already in progress finishes.
func (q *Queue) Hold(ctx context.Context, id string) error {
	return q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := checkQueued(tx, id); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE messages SET held = 1, status = ? WHERE id = ?`, StatusHeld, id)
		return err
	})
}

// Release undoes Hold and makes the message due now.
func (q *Queue) Release(ctx context.Context, id string) error {
	err := q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := checkQueued(tx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE messages SET held = 0 WHERE id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE recipients SET next_attempt_at = ? WHERE message_id = ? AND status IN ('queued', 'deferred')`,
			store.Now(), id); err != nil {
			return err
		}
		_, err := updateStatus(tx, id, time.Now())
		return err
	})
	if err == nil {
		q.Kick()
	}
	return err
}

// deletedReply is recorded for the recipients of a message an operator deleted from the queue.
const deletedReply = "Deleted from the queue by an operator; no notification sent"

// Delete removes message id from the queue: its undelivered recipients are closed as bounced, without a DSN,
// and its content is removed from the spool. The message log keeps the record.
func (q *Queue) Delete(ctx context.Context, id string) error {
	err := q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := checkQueued(tx, id); err != nil {
			return err
		}
		now := store.Now()
		if _, err := tx.Exec(`UPDATE recipients SET status = ?, last_code = 0, last_enhanced = '', last_reply = ?, updated_at = ?
			WHERE message_id = ? AND status IN ('queued', 'deferred')`, StatusBounced, deletedReply, now, id); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE messages SET held = 0, reason = ? WHERE id = ?`, deletedReply, id); err != nil {
			return err
		}
		_, err := updateStatus(tx, id, time.Now())
		return err
	})
	if err != nil {
		return err
	}
	return q.o.Spool.Remove(id)
}

// checkQueued returns ErrNotFound or ErrNotQueued unless message id has a recipient left to deliver on this node.
func checkQueued(tx *sql.Tx, id string) error {
	var n int
	err := tx.QueryRow(`SELECT COUNT(*) FROM messages WHERE id = ?`, id).Scan(&n)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	err = tx.QueryRow(`SELECT COUNT(*) FROM recipients WHERE message_id = ? AND status IN ('queued', 'deferred')`, id).Scan(&n)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotQueued
	}
	return nil
}
