package queue

import (
	"context"
	"database/sql"
	"log/slog"

	"easymail/internal/store"
)

// Recover runs at start, before the SMTP listeners open. It
//   - removes the spool files that no waiting message refers to (a crash between a spool commit and the queue
//     commit, which was never acknowledged, or a finished message whose removal failed); a file is kept
//     whenever the database has a message waiting for it (queued, deferred, held or quarantined), whatever
//     node the row names;
//   - closes this node's waiting messages whose content is missing as lost, with a DSN (closeLost);
//   - makes due at once the deliveries that a previous process of this node had claimed when it died (kill
//     -9, power loss), instead of at their retry time.
//
// Every acknowledged message still queued is then delivered by Run; deliveries that were in progress at the
// crash are repeated (at-least-once), never lost.
func (q *Queue) Recover(ctx context.Context) error {
	pending, err := q.ids(ctx, `SELECT DISTINCT m.id FROM messages m JOIN recipients r ON r.message_id = m.id
		WHERE m.node_id = ? AND r.status IN ('queued', 'deferred')`, q.o.NodeID)
	if err != nil {
		return err
	}
	// Quarantined messages keep their content in the spool until released or deleted (quarantine.go).
	waiting, err := q.ids(ctx, `SELECT m.id FROM messages m WHERE m.status = ? OR m.held = 1
		OR m.id IN (SELECT r.message_id FROM recipients r WHERE r.status IN ('queued', 'deferred'))`, StatusQuarantined)
	if err != nil {
		return err
	}
	removed, err := q.o.Spool.Sweep(func(id string) bool { return waiting[id] })
	if err != nil {
		return err
	}
	q.m.recovered.Add(float64(removed))
	var lost int
	for id := range pending {
		if !q.contentMissing(id) {
			continue
		}
		lost++
		if err := q.closeLost(ctx, id, "recovery"); err != nil {
			return err
		}
	}
	released, err := q.releaseClaims(ctx)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if lost > 0 {
		level = slog.LevelError
	}
	q.log.Log(ctx, level, "queue: recovered", "queued_messages", len(pending)-lost, "orphans_removed", removed, "lost", lost,
		"claims_released", released)
	q.Kick()
	return nil
}

// releaseClaims makes the deliveries claimed by an earlier process of this node due now, and returns how
// many recipients it released. Only one process runs on a data directory (package datadir), so such a
// claim's process is dead: its attempt may or may not have reached the receiving side, and is made again.
func (q *Queue) releaseClaims(ctx context.Context) (int64, error) {
	var n int64
	err := q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE recipients SET next_attempt_at = ?, claimed_by = ''
			WHERE claimed_by <> '' AND claimed_by <> ? AND status IN ('queued', 'deferred')
			AND message_id IN (SELECT id FROM messages WHERE node_id = ?)`, store.Now(), q.instance, q.o.NodeID)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err == nil {
		q.m.released.Add(float64(n))
	}
	return n, err
}

// ids runs query (selecting one id column) and returns the ids as a set.
func (q *Queue) ids(ctx context.Context, query string, args ...any) (map[string]bool, error) {
	out := map[string]bool{}
	rows, err := q.o.DB.R.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}
