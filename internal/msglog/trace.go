package msglog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"easymail/internal/queue"
	"easymail/internal/scan"
	"easymail/internal/store"
)

// Trace returns the message with the given queue id, its recipients (in envelope order) and every delivery
// attempt (in time order), or ErrNotFound.
func Trace(ctx context.Context, db *store.DB, id string) (*MessageTrace, error) {
	t := &MessageTrace{Recipients: []Recipient{}, Attempts: []Attempt{}, DSNs: []string{}}
	m := &t.Message
	var held, isDSN, utf8, notified int
	var received, expires int64
	var done sql.NullInt64
	var au auth
	var scanJSON string
	err := db.R.QueryRowContext(ctx, `SELECT id, node_id, customer_id, sender, header_from, message_id, subject, size,
		client_ip, helo, tls, status, reason, stage, held, is_dsn, smtputf8, body_type, received_at, expires_at, delay_notified,
		done_at, verdict, scan, dsn_for, `+authColumns+` FROM messages WHERE id = ?`, id).Scan(append([]any{&m.ID, &m.NodeID, &m.CustomerID,
		&m.Sender, &m.HeaderFrom, &m.MessageID, &m.Subject, &m.Size, &m.ClientIP, &m.HELO, &m.TLS, &m.Status, &m.Reason,
		&m.Stage, &held, &isDSN, &utf8, &m.BodyType, &received, &expires, &notified, &done, &m.Verdict, &scanJSON, &t.DSNFor}, au.dest()...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	m.Held, m.IsDSN, m.SMTPUTF8, m.DelayNotified = held != 0, isDSN != 0, utf8 != 0, notified != 0
	if m.Held {
		m.Status = queue.StatusHeld
	}
	m.ReceivedAt, m.ExpiresAt, m.DoneAt = store.Time(received), store.Time(expires), optTime(done)
	au.fill(m)
	if scanJSON != "" {
		m.Scan = &scan.Report{}
		if err := json.Unmarshal([]byte(scanJSON), m.Scan); err != nil {
			m.Scan = nil
		}
	}

	rows, err := db.R.QueryContext(ctx, `SELECT idx, address, domain, status, attempts, next_attempt_at, last_code,
		last_enhanced, last_reply, remote_mx, outbound_ip, updated_at, bounce_class, last_remote_reply FROM recipients
		WHERE message_id = ? ORDER BY idx`, id)
	if err != nil {
		return nil, err
	}
	addr := map[int]string{}
	for rows.Next() {
		var r Recipient
		var next, updated int64
		if err := rows.Scan(&r.Index, &r.Address, &r.Domain, &r.Status, &r.Attempts, &next, &r.LastCode,
			&r.LastEnhanced, &r.LastReply, &r.RemoteMX, &r.OutboundIP, &updated, &r.BounceClass, &r.LastRemoteReply); err != nil {
			rows.Close()
			return nil, err
		}
		r.NextAttemptAt, r.UpdatedAt = store.Time(next), store.Time(updated)
		addr[r.Index] = r.Address
		t.Recipients = append(t.Recipients, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	rows, err = db.R.QueryContext(ctx, `SELECT rcpt_idx, attempt, started_at, duration_ms, outcome, remote_mx, remote_ip,
		outbound_ip, tls, code, enhanced, reply, bounce_class, remote_reply, tls_version, tls_cipher, tls_verify, tls_policy
		FROM attempts
		WHERE message_id = ? ORDER BY started_at, rcpt_idx, attempt`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var a Attempt
		var started int64
		if err := rows.Scan(&a.RcptIndex, &a.Attempt, &started, &a.DurationMS, &a.Outcome, &a.RemoteMX, &a.RemoteIP,
			&a.OutboundIP, &a.TLS, &a.Code, &a.Enhanced, &a.Reply, &a.BounceClass, &a.RemoteReply,
			&a.TLSVersion, &a.TLSCipher, &a.TLSVerify, &a.TLSPolicy); err != nil {
			return nil, err
		}
		a.StartedAt = store.Time(started)
		a.Recipient = addr[a.RcptIndex]
		t.Attempts = append(t.Attempts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	dsns, err := dsnLinks(ctx, db, t)
	if err != nil {
		return nil, err
	}
	t.Timeline = timeline(t, dsns)
	return t, nil
}
