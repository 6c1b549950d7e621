package queue

import (
	"context"
	"database/sql"
	"os"
	"time"

	"easymail/internal/store"
)

// lostReply is recorded when a queued message's content is missing from the spool.
const lostReply = "Message content missing from the spool; it cannot be delivered"

// Recover runs at start, before the SMTP listeners open: it removes spool files that no queue row refers to
// (a crash between a spool commit and the queue commit, which was never acknowledged), and closes queue rows
// whose content is missing. Every acknowledged message still queued is then delivered by Run; deliveries
// that were in progress at the crash are repeated (at-least-once), never lost.
func (q *Queue) Recover(ctx context.Context) error {
	pending := map[string]bool{}
	rows, err := q.o.DB.R.QueryContext(ctx, `SELECT DISTINCT m.id FROM messages m JOIN recipients r ON r.message_id = m.id
		WHERE m.node_id = ? AND r.status IN ('queued', 'deferred')`, q.o.NodeID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		pending[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// Quarantined messages keep their content in the spool until released or deleted (quarantine.go).
	quarantined, err := q.quarantinedIDs(ctx)
	if err != nil {
		return err
	}
	removed, err := q.o.Spool.Sweep(func(id string) bool { return pending[id] || quarantined[id] })
	if err != nil {
		return err
	}
	q.m.recovered.Add(float64(removed))
	var lost []string
	for id := range pending {
		r, err := q.o.Spool.Open(id)
		if err != nil {
			if os.IsNotExist(err) {
				lost = append(lost, id)
			}
			continue
		}
		r.Close()
	}
	for _, id := range lost {
		q.log.Error("queue: queued message has no content in the spool; closing it as bounced", "queue_id", id)
		err := q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.Exec(`UPDATE recipients SET status = ?, last_reply = ?, updated_at = ? WHERE message_id = ?
				AND status IN ('queued', 'deferred')`, StatusBounced, lostReply, store.Now(), id); err != nil {
				return err
			}
			_, err := updateStatus(tx, id, time.Now())
			return err
		})
		if err != nil {
			return err
		}
	}
	q.log.Info("queue: recovered", "queued_messages", len(pending)-len(lost), "orphans_removed", removed, "lost", len(lost))
	q.Kick()
	return nil
}
