// Package audit is the audit log: who changed what, when, with the state before and after. The API server
// records every successful change request (apiserver's audit wrapper, applied to every non-GET endpoint),
// and the lifecycle scheduler records what it does on its own (actor role "system").
package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"easymail/internal/msgid"
	"easymail/internal/store"
)

// RoleSystem is the actor role of changes made by Easymail itself (the lifecycle scheduler).
const RoleSystem = "system"

// maxSnapshot bounds a before or after snapshot; a longer one is replaced by a note.
const maxSnapshot = 256 << 10

// Insert writes e inside tx. An empty ID and a zero At are filled in.
func Insert(ctx context.Context, tx *sql.Tx, e Entry) error {
	if e.ID == "" {
		e.ID = msgid.New()
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (id, at, actor_token, actor_role, actor_customer, action, target,
		customer_id, status, before_json, after_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, store.Millis(e.At), e.ActorToken, e.ActorRole, e.ActorCustomer, e.Action, e.Target, e.CustomerID, e.Status,
		snapshot(e.Before), snapshot(e.After))
	return err
}

// Record writes e in its own durable transaction.
func Record(ctx context.Context, db *store.DB, e Entry) error {
	return db.Batch(ctx, func(tx *sql.Tx) error { return Insert(ctx, tx, e) })
}

func snapshot(b []byte) string {
	if len(b) > maxSnapshot {
		return fmt.Sprintf(`{"truncated":true,"bytes":%d}`, len(b))
	}
	if len(b) > 0 && !json.Valid(b) {
		q, _ := json.Marshal(string(b))
		return string(q)
	}
	return string(b)
}

// MaxLimit is the most entries List returns.
const MaxLimit = 1000

// List returns the entries matching q, newest first.
func List(ctx context.Context, db *store.DB, q Query) ([]Entry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where, args = append(where, cond), append(args, v) }
	if q.Customer != "" {
		add("customer_id = ?", q.Customer)
	}
	if q.Actor != "" {
		add("actor_token = ?", q.Actor)
	}
	if q.Action != "" {
		// The text is matched as it is: LIKE's wildcards in it are escaped.
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.Action)
		add(`action LIKE ? ESCAPE '\'`, "%"+esc+"%")
	}
	if !q.Since.IsZero() {
		add("at >= ?", store.Millis(q.Since))
	}
	if !q.Until.IsZero() {
		add("at < ?", store.Millis(q.Until))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxLimit)
	sqlq := `SELECT id, at, actor_token, actor_role, actor_customer, action, target, customer_id, status, before_json, after_json
		FROM audit_log`
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	sqlq += " ORDER BY at DESC, id DESC LIMIT ?"
	rows, err := db.R.QueryContext(ctx, sqlq, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var at int64
		var before, after string
		if err := rows.Scan(&e.ID, &at, &e.ActorToken, &e.ActorRole, &e.ActorCustomer, &e.Action, &e.Target, &e.CustomerID,
			&e.Status, &before, &after); err != nil {
			return nil, err
		}
		e.At = store.Time(at)
		if before != "" {
			e.Before = RawJSON(before)
		}
		if after != "" {
			e.After = RawJSON(after)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
