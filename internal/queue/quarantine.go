package queue

import (
	"context"
	"database/sql"
	"time"

	"easymail/internal/events"
	"easymail/internal/store"
)

// QuarantineRecord is what the quarantine keeps beside a quarantined message's queue rows: its row of the
// quarantine table, which the queue writes and removes in the transactions that quarantine, release and
// delete the message, so that a message is never quarantined without it nor released leaving it. The
// quarantine package (internal/quarantine) builds it and reads the table.
type QuarantineRecord struct {
	// Reason is the text the client was told; it is also the message's reason and the events' reply.
	Reason string
	// Verdict is the scan verdict that sent the message to quarantine.
	Verdict string
	// Header is the message's header section and Preview a safe preview of its text: plain text, shown as is.
	Header, Preview string
	// CreatedAt is when the message was quarantined; at ExpiresAt the retention job deletes it.
	CreatedAt, ExpiresAt time.Time
}

// EnqueueQuarantined records an accepted message whose content is committed to the spool as quarantined:
// its recipients wait in status "quarantined" and nothing is delivered until ReleaseQuarantined. The
// message's quarantine row (rec) is written in the same transaction. When it returns nil the message is
// durably kept and 250 may be sent.
func (q *Queue) EnqueueQuarantined(ctx context.Context, env Envelope, rec QuarantineRecord) error {
	var evs []events.Event
	err := q.o.DB.Batch(ctx, func(tx *sql.Tx) error {
		evs = evs[:0]
		if err := q.insert(tx, env, StatusQuarantined, rec.Reason); err != nil {
			return err
		}
		for _, r := range env.Recipients {
			if err := q.emit(tx, &evs, events.Event{Event: events.Quarantined, CustomerID: env.CustomerID, QueueID: env.ID,
				MessageID: env.MessageID, Recipient: r.Address, Reply: rec.Reason}); err != nil {
				return err
			}
		}
		_, err := tx.Exec(`INSERT INTO quarantine (id, customer_id, reason, verdict, header, preview, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, env.ID, env.CustomerID, rec.Reason, rec.Verdict, rec.Header, rec.Preview,
			store.Millis(rec.CreatedAt), store.Millis(rec.ExpiresAt))
		return err
	})
	if err == nil && q.o.Events != nil {
		q.o.Events.Published(evs...)
	}
	return err
}

// ReleaseQuarantined queues quarantined message id for delivery now, with a fresh queue lifetime, and
// removes its quarantine row in the same transaction. It returns ErrNotFound for an unknown id or a message
// without a quarantine row, and ErrNotQueued for a message that is not quarantined.
func (q *Queue) ReleaseQuarantined(ctx context.Context, id string) error {
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
		return removeQuarantineRow(tx, id)
	})
	if err == nil {
		q.Kick()
	}
	return err
}

// DeleteQuarantined closes quarantined message id without delivering it: its recipients and the message
// become "rejected" with reason, and its content is removed from this node's spool (another node's spool
// drops it at its next start). Its quarantine row is removed in the same transaction. The errors are
// ReleaseQuarantined's.
func (q *Queue) DeleteQuarantined(ctx context.Context, id, reason string) error {
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
		return removeQuarantineRow(tx, id)
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

// removeQuarantineRow deletes the quarantine row of message id, or returns ErrNotFound if it has none.
func removeQuarantineRow(tx *sql.Tx, id string) error {
	r, err := tx.Exec(`DELETE FROM quarantine WHERE id = ?`, id)
	if err != nil {
		return err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
