package queue

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"time"

	"easymail/internal/delivery"
	"easymail/internal/smtperr"
	"easymail/internal/store"
)

// lostReply is recorded for the recipients of a message whose content is missing from the spool.
const lostReply = "Message content missing from the spool; it cannot be delivered"

// lostError is the status of the recipients of a lost message in their DSN: a permanent failure of the
// mail system (RFC 3463 X.3.0), made here, not a refusal by the receiving side.
var lostError = smtperr.New(554, smtperr.PermMailSystem, "%s", lostReply)

// errFinished aborts closeLost when the message was finished meanwhile.
var errFinished = errors.New("message finished meanwhile")

// contentMissing reports whether message id has no content in the spool.
func (q *Queue) contentMissing(id string) bool {
	f, err := q.o.Spool.Open(id)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	f.Close()
	return false
}

// closeLost closes the undelivered recipients of message id, whose content is gone from the spool (found at
// where: "recovery" or "delivery"), with status lost, and sends its sender a failure DSN for the recipients
// whose NOTIFY asks for one (never to the null sender, never for a DSN), in the same transaction. It logs an
// ERROR and counts easymail_queue_lost_total. A message finished meanwhile (an operator deleted it, which
// removes its content) is left as it is.
func (q *Queue) closeLost(ctx context.Context, id, where string) error {
	g, err := q.loadGroup(ctx, id)
	if errors.Is(err, errFinished) {
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	var failed []outcome
	for _, r := range g.rcpts {
		if notifies(r.notify, "FAILURE") {
			failed = append(failed, outcome{rcpt: r, status: StatusLost, err: lostError})
		}
	}
	var notice *Envelope
	if g.sender != "" && !g.isDSN && len(failed) > 0 {
		if notice, err = q.makeDSN(g, failed, delivery.Result{}, false, now); err != nil {
			return err
		}
	}
	err = q.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`UPDATE recipients SET status = ?, last_code = ?, last_enhanced = '5.3.0', last_reply = ?, updated_at = ?,
			claimed_by = '' WHERE message_id = ? AND status IN ('queued', 'deferred')`,
			StatusLost, lostError.Code, lostReply, store.Millis(now), id)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != int64(len(g.rcpts)) {
			return errFinished
		}
		if _, err := tx.Exec(`UPDATE messages SET held = 0, reason = ? WHERE id = ?`, lostReply, id); err != nil {
			return err
		}
		if notice != nil {
			if err := q.insert(tx, *notice, StatusQueued, ""); err != nil {
				return err
			}
		}
		_, err = updateStatus(tx, id, now)
		return err
	})
	if err != nil {
		if notice != nil {
			q.o.Spool.Remove(notice.ID)
		}
		if errors.Is(err, errFinished) {
			return nil
		}
		return err
	}
	dsnID := ""
	if notice != nil {
		dsnID = notice.ID
		q.m.dsns.WithLabelValues("failure").Inc()
		q.Kick()
	}
	q.m.lost.Inc()
	q.log.Error("queue: an accepted message's content is missing from the spool; closed as lost", "queue_id", id,
		"found_at", where, "recipients", len(g.rcpts), "sender", g.sender, "dsn_queue_id", dsnID)
	return nil
}

// loadGroup reads message id with all its undelivered recipients, as a group for makeDSN. It returns
// errFinished when none is left.
func (q *Queue) loadGroup(ctx context.Context, id string) (*group, error) {
	g := &group{msgID: id}
	var bodyType string
	var received, expires int64
	err := q.o.DB.R.QueryRowContext(ctx, `SELECT customer_id, sender, size, smtputf8, body_type, is_dsn, dsn_ret, dsn_envid,
		received_at, expires_at, prefix FROM messages WHERE id = ?`, id).Scan(&g.customerID, &g.sender, &g.size, &g.smtputf8,
		&bodyType, &g.isDSN, &g.dsnRet, &g.envID, &received, &expires, &g.prefix)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errFinished
	}
	if err != nil {
		return nil, err
	}
	g.eightBit = bodyType == "8BITMIME"
	g.received, g.expires = store.Time(received), store.Time(expires)
	rows, err := q.o.DB.R.QueryContext(ctx, `SELECT idx, address, attempts, notify, orcpt FROM recipients
		WHERE message_id = ? AND status IN ('queued', 'deferred') ORDER BY idx`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r claimedRcpt
		if err := rows.Scan(&r.idx, &r.address, &r.attempt, &r.notify, &r.orcpt); err != nil {
			return nil, err
		}
		g.rcpts = append(g.rcpts, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(g.rcpts) == 0 {
		return nil, errFinished
	}
	return g, nil
}
