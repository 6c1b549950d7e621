package queue

import (
	"context"
	"database/sql"
	"time"

	"easymail/internal/api"
	"easymail/internal/store"
)

// EnqueueQuarantined records an accepted message whose content is committed to the spool as quarantined:
// its recipients wait in status "quarantined" and nothing is delivered until ReleaseQuarantined. extra runs
// in the same transaction (the quarantine's own row). When it returns nil the message is durably kept and
// 250 may be sent.
func (q *Queue) EnqueueQuarantined(ctx context.Context, env Envelope, reason string, extra func(*sql.Tx) error) error {
	var evs []api.Event
	err := q.o.DB.Batch(ctx, func(tx *sql.Tx) error {
		evs = evs[:0]
		if err := q.insert(tx, env, StatusQuarantined, reason); err != nil {
			return err
		}
		for _, r := range env.Recipients {
			if err := q.emit(tx, &evs, api.Event{Event: api.EventQuarantined, CustomerID: env.CustomerID, QueueID: env.ID,
				MessageID: env.MessageID, Recipient: r.Address, Reply: reason}); err != nil {
				return err
			}
		}
		return extra(tx)
	})
	if err == nil && q.o.Events != nil {
		q.o.Events.Published(evs...)
	}
	return err
}

// ReleaseQuarantined queues quarantined message id for delivery now, with a fresh queue lifetime. extra runs
// in the same transaction. It returns ErrNotFound for an unknown id and ErrNotQueued for a message that is
// not quarantined.
func (q *Queue) ReleaseQuarantined(ctx context.Context, id string, extra func(*sql.Tx) error) error {
	now := time.Now()
	err := q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := checkQuarantined(tx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE recipients SET status = ?, next_attempt_at = ?, updated_at = ? WHERE message_id = ? AND status = ?`,
			StatusQueued, store.Millis(now), store.Millis(now), id, StatusQuarantined); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE messages SET expires_at = ?, reason = '' WHERE id = ?`,
			store.Millis(now.Add(q.o.MaxLifetime)), id); err != nil {
			return err
		}
		if _, err := updateStatus(tx, id, now); err != nil {
			return err
		}
		return extra(tx)
	})
	if err == nil {
		q.Kick()
	}
	return err
}

// DeleteQuarantined closes quarantined message id without delivering it: its recipients and the message
// become "rejected" with reason, and its content is removed from this node's spool (another node's spool
// drops it at its next start). extra runs in the same transaction.
func (q *Queue) DeleteQuarantined(ctx context.Context, id, reason string, extra func(*sql.Tx) error) error {
	now := store.Now()
	err := q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := checkQuarantined(tx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE recipients SET status = ?, last_reply = ?, updated_at = ? WHERE message_id = ? AND status = ?`,
			StatusRejected, reason, now, id, StatusQuarantined); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE messages SET status = ?, reason = ?, done_at = ? WHERE id = ?`,
			StatusRejected, reason, now, id); err != nil {
			return err
		}
		return extra(tx)
	})
	if err != nil {
		return err
	}
	var node string
	if err := q.o.DB.R.QueryRowContext(ctx, `SELECT node_id FROM messages WHERE id = ?`, id).Scan(&node); err == nil && node == q.o.NodeID {
		return q.o.Spool.Remove(id)
	}
	return nil
}

// checkQuarantined returns ErrNotFound or ErrNotQueued unless message id is quarantined.
func checkQuarantined(tx *sql.Tx, id string) error {
	var status string
	err := tx.QueryRow(`SELECT status FROM messages WHERE id = ?`, id).Scan(&status)
	if err == sql.ErrNoRows {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if status != StatusQuarantined {
		return ErrNotQueued
	}
	return nil
}
