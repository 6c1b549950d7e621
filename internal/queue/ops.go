package queue

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"easymail/internal/store"
)

// ErrHeld is the cause of a StateError from Retry or Hold on a held message.
var ErrHeld = errors.New("message is held")

// ErrNotHeld is the cause of a StateError from Release on a message that is not held.
var ErrNotHeld = errors.New("message is not held")

// StateError is returned by Retry, Hold and Release when the message's state makes the operation do nothing:
// it says what the state is and what would do what the caller wants. It wraps ErrNotQueued (nothing left to
// deliver), ErrHeld or ErrNotHeld, so that the API answers 409.
type StateError struct {
	// ID is the message, Op the operation asked for (retry, hold, release).
	ID, Op string
	// Status is the message's status: held, queued, deferred, delivered, bounced, rejected, quarantined,
	// deleted, lost.
	Status string
	// Err is ErrNotQueued, ErrHeld or ErrNotHeld.
	Err error
}

// Error says the state and, where there is one, the operation that would act on it.
func (e *StateError) Error() string {
	switch {
	case errors.Is(e.Err, ErrHeld) && e.Op == "hold":
		return "message is already held; release it with `easymail queue release " + e.ID + "`"
	case errors.Is(e.Err, ErrHeld):
		return "message is held, and a held message is not delivered: release it with `easymail queue release " + e.ID +
			"` (POST /api/v1/queue/" + e.ID + "/release), which makes it due now"
	case errors.Is(e.Err, ErrNotHeld):
		return "message is not held (it is " + e.Status + "); to deliver it now use `easymail queue retry " + e.ID + "`"
	case e.Status == StatusQuarantined:
		return "message is quarantined, not in the queue: release it with `easymail quarantine release " + e.ID + "`"
	}
	return "message is " + e.Status + ": nothing left to deliver"
}

// Unwrap returns ErrNotQueued, ErrHeld or ErrNotHeld.
func (e *StateError) Unwrap() error { return e.Err }

// state reads what Retry, Hold and Release need to know of message id: its status (held when held), whether
// it is held, and whether a recipient is left to deliver. It returns ErrNotFound for an unknown id.
func state(tx *sql.Tx, id string) (status string, held, pending bool, err error) {
	err = tx.QueryRow(`SELECT status, held FROM messages WHERE id = ?`, id).Scan(&status, &held)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, false, ErrNotFound
	}
	if err != nil {
		return "", false, false, err
	}
	var n int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM recipients WHERE message_id = ? AND status IN ('queued', 'deferred')`, id).Scan(&n); err != nil {
		return "", false, false, err
	}
	if held && n > 0 {
		status = StatusHeld
	}
	return status, held, n > 0, nil
}

// Retry makes every undelivered recipient of message id due now. It returns ErrNotFound for an unknown id,
// and a StateError for a message with nothing left to deliver (ErrNotQueued) or held (ErrHeld: a held
// message is not delivered, so a retry would do nothing; Release makes it due now).
func (q *Queue) Retry(ctx context.Context, id string) error {
	err := q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		status, held, pending, err := state(tx, id)
		switch {
		case err != nil:
			return err
		case !pending:
			return &StateError{ID: id, Op: "retry", Status: status, Err: ErrNotQueued}
		case held:
			return &StateError{ID: id, Op: "retry", Status: status, Err: ErrHeld}
		}
		_, err = tx.Exec(`UPDATE recipients SET next_attempt_at = ? WHERE message_id = ? AND status IN ('queued', 'deferred')`,
			store.Now(), id)
		return err
	})
	if err == nil {
		q.Kick()
	}
	return err
}

// Hold stops deliveries of message id until Release. A delivery already in progress finishes. It returns
// ErrNotFound for an unknown id, and a StateError for a message with nothing left to deliver (ErrNotQueued)
// or already held (ErrHeld).
func (q *Queue) Hold(ctx context.Context, id string) error {
	return q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		status, held, pending, err := state(tx, id)
		switch {
		case err != nil:
			return err
		case !pending:
			return &StateError{ID: id, Op: "hold", Status: status, Err: ErrNotQueued}
		case held:
			return &StateError{ID: id, Op: "hold", Status: status, Err: ErrHeld}
		}
		_, err = tx.Exec(`UPDATE messages SET held = 1, status = ? WHERE id = ?`, StatusHeld, id)
		return err
	})
}

// Release undoes Hold and makes the message due now. It returns ErrNotFound for an unknown id, and a
// StateError for a message with nothing left to deliver (ErrNotQueued) or not held (ErrNotHeld: Retry makes
// such a message due now).
func (q *Queue) Release(ctx context.Context, id string) error {
	err := q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		status, held, pending, err := state(tx, id)
		switch {
		case err != nil:
			return err
		case !pending:
			return &StateError{ID: id, Op: "release", Status: status, Err: ErrNotQueued}
		case !held:
			return &StateError{ID: id, Op: "release", Status: status, Err: ErrNotHeld}
		}
		if _, err := tx.Exec(`UPDATE messages SET held = 0 WHERE id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE recipients SET next_attempt_at = ? WHERE message_id = ? AND status IN ('queued', 'deferred')`,
			store.Now(), id); err != nil {
			return err
		}
		_, err = updateStatus(tx, id, time.Now())
		return err
	})
	if err == nil {
		q.Kick()
	}
	return err
}

// deletedReply is recorded for the recipients of a message an operator deleted from the queue.
const deletedReply = "Deleted from the queue by an operator; no notification sent"

// Delete removes message id from the queue: its undelivered recipients are closed with status deleted (not a
// bounce: nothing refused them), without a DSN, and its content is removed from the spool. The message log
// keeps the record.
func (q *Queue) Delete(ctx context.Context, id string) error {
	err := q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := checkQueued(tx, id); err != nil {
			return err
		}
		now := store.Now()
		if _, err := tx.Exec(`UPDATE recipients SET status = ?, last_code = 0, last_enhanced = '', last_reply = ?, updated_at = ?
			WHERE message_id = ? AND status IN ('queued', 'deferred')`, StatusDeleted, deletedReply, now, id); err != nil {
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
