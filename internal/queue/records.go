package queue

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"easymail/internal/store"
)

// This file holds the writes the personal-data rules make to the queue's tables (messages, recipients,
// attempts): the retention job's deletion of finished messages and a data subject's erasure. They need the
// database only, not a running Queue; internal/retention decides what to delete and when.

// Purged is what one DeleteFinished call did.
type Purged struct {
	// Selected is how many finished messages the batch chose; it is below the limit when no more are due.
	Selected int
	// Messages, Recipients and Attempts count the rows deleted from each table.
	Messages, Recipients, Attempts int64
}

// DeleteFinished deletes, in one transaction, up to limit finished messages (done_at set) received before
// cutoff, oldest first, with their recipients and attempts. Messages still queued, held or quarantined are
// never deleted: their content is still in the spool and their rows are the queue.
func DeleteFinished(ctx context.Context, db *store.DB, cutoff time.Time, limit int) (Purged, error) {
	var p Purged
	var ids []any
	if err := store.Each(ctx, db.R, `SELECT id FROM messages WHERE received_at < ? AND done_at IS NOT NULL
		ORDER BY received_at LIMIT ?`, []any{store.Millis(cutoff), limit}, func(r *sql.Rows) error {
		var id string
		if err := r.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	}); err != nil || len(ids) == 0 {
		return p, err
	}
	in := inList(len(ids))
	var msgs, rcpts, atts int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		// The messages are checked again inside the transaction: one may have been released meanwhile.
		for _, d := range []struct {
			q string
			n *int64
		}{
			{`DELETE FROM attempts WHERE message_id IN (SELECT id FROM messages WHERE id IN ` + in + ` AND done_at IS NOT NULL)`, &atts},
			{`DELETE FROM recipients WHERE message_id IN (SELECT id FROM messages WHERE id IN ` + in + ` AND done_at IS NOT NULL)`, &rcpts},
			{`DELETE FROM messages WHERE id IN ` + in + ` AND done_at IS NOT NULL`, &msgs},
		} {
			r, err := tx.ExecContext(ctx, d.q, ids...)
			if err != nil {
				return err
			}
			if *d.n, err = r.RowsAffected(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	return Purged{Selected: len(ids), Messages: msgs, Recipients: rcpts, Attempts: atts}, nil
}

// Redaction says what to erase of a data subject from one finished message: either the whole message, or
// the subject's recipient entries, its sender fields and its address where the message quotes it.
// internal/retention decides it from the message's recipients and leaves out messages still waiting.
type Redaction struct {
	// Whole deletes the message with all its recipients and attempts; the other fields are then ignored.
	Whole bool
	// Recipients are the indexes of the subject's recipient entries: they are deleted with their attempts.
	Recipients []int
	// Sender replaces the message's sender, header From and subject with Mark.
	Sender bool
	// Quotes are the forms of the subject's address replaced with Mark, in this order, in the message's
	// refusal reason and in its recipients' and attempts' replies. The message's stored header prefix (which
	// names a recipient) is cleared in any case.
	Quotes []string
	// Mark is what replaces erased text.
	Mark string
}

// Redacted is what Redact deleted.
type Redacted struct {
	// Messages is 1 when the whole message was deleted.
	Messages int64
	// Recipients and Attempts count the recipient entries and attempts deleted.
	Recipients, Attempts int64
}

// Redact applies r to message id within tx, the caller's transaction (a data subject's erasure changes other
// tables in the same one).
func Redact(ctx context.Context, tx *sql.Tx, id string, r Redaction) (Redacted, error) {
	var out Redacted
	count := func(n *int64, q string, args ...any) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		c, err := res.RowsAffected()
		*n += c
		return err
	}
	if r.Whole {
		if err := count(&out.Attempts, `DELETE FROM attempts WHERE message_id = ?`, id); err != nil {
			return out, err
		}
		if err := count(&out.Recipients, `DELETE FROM recipients WHERE message_id = ?`, id); err != nil {
			return out, err
		}
		return out, count(&out.Messages, `DELETE FROM messages WHERE id = ?`, id)
	}
	if len(r.Recipients) > 0 {
		in := inList(len(r.Recipients))
		args := []any{id}
		for _, i := range r.Recipients {
			args = append(args, i)
		}
		if err := count(&out.Attempts, `DELETE FROM attempts WHERE message_id = ? AND rcpt_idx IN `+in, args...); err != nil {
			return out, err
		}
		if err := count(&out.Recipients, `DELETE FROM recipients WHERE message_id = ? AND idx IN `+in, args...); err != nil {
			return out, err
		}
	}
	if r.Sender {
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET sender = ?, header_from = ?, subject = ? WHERE id = ?`,
			r.Mark, r.Mark, r.Mark, id); err != nil {
			return out, err
		}
	}
	for _, u := range []struct{ table, col, key string }{
		{"messages", "reason", "id"},
		{"recipients", "last_reply", "message_id"},
		{"attempts", "reply", "message_id"},
		{"recipients", "last_remote_reply", "message_id"},
		{"attempts", "remote_reply", "message_id"},
	} {
		expr, args := u.col, []any{}
		for _, q := range r.Quotes {
			expr = "replace(" + expr + ", ?, ?)"
			args = append(args, q, r.Mark)
		}
		set := u.col + " = " + expr
		if u.table == "messages" {
			set += ", prefix = ''"
		}
		if _, err := tx.ExecContext(ctx, `UPDATE `+u.table+` SET `+set+` WHERE `+u.key+` = ?`, append(args, id)...); err != nil {
			return out, err
		}
	}
	return out, nil
}

// inList returns an SQL list of n placeholders: "(?, ?, ?)".
func inList(n int) string {
	return "(?" + strings.Repeat(", ?", n-1) + ")"
}

// AdoptMessages makes node id, inside tx, the node of every message recorded under another node id, and
// returns how many it moved; package datadir calls it when an operator renames a node.
func AdoptMessages(ctx context.Context, tx *sql.Tx, id string) (int64, error) {
	r, err := tx.ExecContext(ctx, `UPDATE messages SET node_id = ? WHERE node_id <> ?`, id, id)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}
