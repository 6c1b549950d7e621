package customer

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"easymail/internal/fielderr"
	"easymail/internal/store"
)

// maxRateLimit bounds a rate limit value; anything larger is a mistake.
const maxRateLimit = 1_000_000_000

// operatorHoldReason is the reason recorded for a hold set through PATCH.
const operatorHoldReason = "Held by an operator"

// limitSets adds to an update the columns of in.RateLimits (replaced as a whole: a null field is the
// configured default) and in.Held.
func (s *Service) limitSets(in Update, sets []string, args []any) ([]string, []any, error) {
	if rl := in.RateLimits; rl != nil {
		for _, f := range []struct {
			col, field string
			v          *int
		}{
			{"rl_messages_per_minute", "rate_limits.messages_per_minute", rl.MessagesPerMinute},
			{"rl_messages_per_hour", "rate_limits.messages_per_hour", rl.MessagesPerHour},
			{"rl_recipients_per_minute", "rate_limits.recipients_per_minute", rl.RecipientsPerMinute},
			{"rl_recipients_per_hour", "rate_limits.recipients_per_hour", rl.RecipientsPerHour},
			{"rl_burst", "rate_limits.burst", rl.Burst},
		} {
			var v any
			if f.v != nil {
				if *f.v < 0 || *f.v > maxRateLimit {
					return nil, nil, &fielderr.Error{Field: f.field, Msg: fmt.Sprintf("must be 0 (unlimited) to %d, or null for the default", maxRateLimit)}
				}
				v = *f.v
			}
			sets, args = append(sets, f.col+" = ?"), append(args, v)
		}
	}
	if in.Held != nil {
		if *in.Held {
			sets = append(sets, "held_reason = CASE WHEN held = 1 THEN held_reason ELSE ? END",
				"held_at = CASE WHEN held = 1 THEN held_at ELSE ? END", "held = 1")
			args = append(args, operatorHoldReason, s.now())
		} else {
			sets = append(sets, "released_at = CASE WHEN held = 1 THEN ? ELSE released_at END", "held = 0",
				"held_reason = ''", "held_at = NULL")
			args = append(args, s.now())
		}
	}
	return sets, args, nil
}

// fillLimits fills the rate limits and hold state of the customers in list.
func (s *Service) fillLimits(ctx context.Context, list ...*Customer) error {
	if len(list) == 0 {
		return nil
	}
	byID := make(map[string]*Customer, len(list))
	for _, c := range list {
		byID[c.ID] = c
	}
	q := `SELECT id, rl_messages_per_minute, rl_messages_per_hour, rl_recipients_per_minute, rl_recipients_per_hour,
		rl_burst, held, held_reason, held_at FROM customers`
	var args []any
	if len(list) == 1 {
		q += ` WHERE id = ?`
		args = append(args, list[0].ID)
	}
	return store.Each(ctx, s.DB.R, q, args, func(r *sql.Rows) error {
		var id string
		var v [5]sql.NullInt64
		var held bool
		var reason string
		var at sql.NullInt64
		if err := r.Scan(&id, &v[0], &v[1], &v[2], &v[3], &v[4], &held, &reason, &at); err != nil {
			return err
		}
		c := byID[id]
		if c == nil {
			return nil
		}
		ptr := func(n sql.NullInt64) *int {
			if !n.Valid {
				return nil
			}
			i := int(n.Int64)
			return &i
		}
		c.RateLimits = RateLimits{MessagesPerMinute: ptr(v[0]), MessagesPerHour: ptr(v[1]),
			RecipientsPerMinute: ptr(v[2]), RecipientsPerHour: ptr(v[3]), Burst: ptr(v[4])}
		c.Held, c.HeldReason = held, reason
		if at.Valid {
			t := store.Time(at.Int64)
			c.HeldAt = &t
		}
		return nil
	})
}

// LiftHold lifts the customer's hold, if any, recording when: compromise detection then counts only the
// messages received after it. The messages already held stay held.
func (s *Service) LiftHold(ctx context.Context, id string) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE customers SET released_at = CASE WHEN held = 1 THEN ? ELSE released_at END,
			held = 0, held_reason = '', held_at = NULL WHERE id = ?`, s.now(), id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
}

// Hold holds the customer's outbound mail inside tx, recording reason and at, and reports whether it did:
// false when the customer was already held or does not exist. The messages already queued are the caller's
// to hold (package abuse).
func Hold(ctx context.Context, tx *sql.Tx, id, reason string, at time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE customers SET held = 1, held_reason = ?, held_at = ? WHERE id = ? AND held = 0`,
		reason, store.Millis(at), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// HeldMessages returns the ids of the customer's held messages, oldest first.
func (s *Service) HeldMessages(ctx context.Context, id string) ([]string, error) {
	var ids []string
	err := store.Each(ctx, s.DB.R, `SELECT id FROM messages WHERE customer_id = ? AND held = 1 ORDER BY received_at, id`,
		[]any{id}, func(r *sql.Rows) error {
			var m string
			if err := r.Scan(&m); err != nil {
				return err
			}
			ids = append(ids, m)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return ids, nil
}
