package queue

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"time"

	"easymail/internal/bounce"
	"easymail/internal/delivery"
	"easymail/internal/events"
	"easymail/internal/smtperr"
	"easymail/internal/store"
)

// group is the unit of delivery: the due recipients of one message at one destination domain.
type group struct {
	msgID         string
	customerID    string
	domain        string
	sender        string
	size          int64
	smtputf8      bool
	eightBit      bool
	isDSN         bool
	dsnRet        string
	envID         string
	pool          string
	fallbackPool  string
	tlsPolicy     string          // the customer's TLS policy, "" for none
	src           delivery.Source // the outbound IP of the attempt in progress
	received      time.Time
	expires       time.Time
	delayNotified bool
	prefix        string
	headerMsgID   string // the Message-ID header field, for events
	rcpts         []claimedRcpt
}

type claimedRcpt struct {
	idx     int
	address string
	attempt int // the number of this attempt (1 for the first)
	notify  string
	orcpt   string
}

func (g *group) key() string { return g.msgID + "\x00" + g.domain }

// Run schedules deliveries until ctx ends, then waits for the deliveries in progress (cancelling them after
// the shutdown grace time) and returns. Work left undone stays in the database for the next start.
func (q *Queue) Run(ctx context.Context) error {
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			stopped := make(chan struct{})
			go func() { q.wg.Wait(); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(q.o.ShutdownGrace):
				q.log.Warn("queue: cancelling deliveries still in progress at shutdown")
				cancel()
				<-stopped
			}
			return nil
		case <-q.kick:
		case <-timer.C:
		}
		for {
			n, full, err := q.dispatch(ctx, dctx)
			if err != nil && ctx.Err() == nil {
				q.log.Error("queue: scheduling failed", "err", err)
				break
			}
			if n == 0 || !full || ctx.Err() != nil {
				break
			}
		}
		timer.Reset(q.o.PollInterval)
	}
}

// dispatch claims due recipients for as many groups as there are free workers and starts their deliveries.
// It returns the number of groups started and whether the query hit its limit (more may be due).
func (q *Queue) dispatch(ctx, dctx context.Context) (int, bool, error) {
	q.mu.Lock()
	free := q.o.Workers - len(q.inflight)
	q.mu.Unlock()
	if free <= 0 {
		return 0, false, nil
	}
	limit := free * 4
	now := time.Now()
	rows, err := q.o.DB.R.QueryContext(ctx, `SELECT r.message_id, r.idx, r.address, r.domain, r.attempts, r.notify, r.orcpt,
			m.customer_id, m.sender, m.size, m.smtputf8, m.body_type, m.is_dsn, m.dsn_ret, m.dsn_envid,
			m.received_at, m.expires_at, m.delay_notified, m.prefix, COALESCE(c.pool, ''), COALESCE(c.fallback_pool, ''),
			COALESCE(c.tls_policy, ''), m.message_id
		FROM recipients r JOIN messages m ON m.id = r.message_id LEFT JOIN customers c ON c.id = m.customer_id
		WHERE r.status IN ('queued', 'deferred') AND r.next_attempt_at <= ? AND m.held = 0 AND m.node_id = ?
		ORDER BY r.next_attempt_at LIMIT ?`, store.Millis(now), q.o.NodeID, limit)
	if err != nil {
		return 0, false, err
	}
	var groups []*group
	byKey := map[string]*group{}
	n := 0
	for rows.Next() {
		n++
		var (
			r                 claimedRcpt
			g                 group
			bodyType          string
			received, expires int64
		)
		if err := rows.Scan(&g.msgID, &r.idx, &r.address, &g.domain, &r.attempt, &r.notify, &r.orcpt,
			&g.customerID, &g.sender, &g.size, &g.smtputf8, &bodyType, &g.isDSN, &g.dsnRet, &g.envID,
			&received, &expires, &g.delayNotified, &g.prefix, &g.pool, &g.fallbackPool,
			&g.tlsPolicy, &g.headerMsgID); err != nil {
			rows.Close()
			return 0, false, err
		}
		r.attempt++
		g.eightBit = bodyType == "8BITMIME"
		g.received, g.expires = store.Time(received), store.Time(expires)
		if existing := byKey[g.key()]; existing != nil {
			existing.rcpts = append(existing.rcpts, r)
			continue
		}
		g.rcpts = []claimedRcpt{r}
		gp := &g
		byKey[g.key()] = gp
		groups = append(groups, gp)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, false, err
	}

	q.mu.Lock()
	var start []*group
	for _, g := range groups {
		if len(start) == free {
			break
		}
		if q.inflight[g.key()] {
			continue
		}
		q.inflight[g.key()] = true
		start = append(start, g)
	}
	q.mu.Unlock()
	if len(start) == 0 {
		return 0, false, nil
	}

	// Record the attempt and its next retry time before dialing: a crash during delivery must not make the
	// next start retry in a hot loop. A power failure may lose this record (BatchLazy); the attempt is then
	// made again at the next start, once. The claim names this process (claimed_by, cleared with the
	// outcome): the next start makes the claims of a process that died due at once (Recover).
	err = q.o.DB.BatchLazy(ctx, func(tx *sql.Tx) error {
		for _, g := range start {
			for _, r := range g.rcpts {
				next := now.Add(q.backoff(r.attempt))
				if next.After(g.expires) {
					next = g.expires
				}
				if _, err := tx.Exec(`UPDATE recipients SET attempts = ?, next_attempt_at = ?, updated_at = ?, claimed_by = ?
					WHERE message_id = ? AND idx = ? AND status IN ('queued', 'deferred')`,
					r.attempt, store.Millis(next), store.Millis(now), q.instance, g.msgID, r.idx); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		q.mu.Lock()
		for _, g := range start {
			delete(q.inflight, g.key())
		}
		q.mu.Unlock()
		return 0, false, err
	}
	for _, g := range start {
		q.wg.Add(1)
		q.m.inflight.Inc()
		go q.deliver(dctx, g)
	}
	return len(start), n == limit, nil
}

func (q *Queue) deliver(ctx context.Context, g *group) {
	defer func() {
		q.mu.Lock()
		delete(q.inflight, g.key())
		q.mu.Unlock()
		q.m.inflight.Dec()
		q.wg.Done()
		q.Kick()
	}()
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("queue: panic in delivery", "queue_id", g.msgID, "panic", p)
		}
	}()
	// Content gone from the spool is never retried in silence: it is closed as lost, with a DSN (lost.go).
	if q.contentMissing(g.msgID) {
		if err := q.closeLost(context.WithoutCancel(ctx), g.msgID, "delivery"); err != nil {
			q.log.Error("queue: closing a message whose content is lost failed; it will be tried again", "queue_id", g.msgID, "err", err)
		}
		return
	}
	res := q.attempt(ctx, g)
	q.m.latency.Observe(res.Duration.Seconds())
	if err := q.record(context.WithoutCancel(ctx), g, res); err != nil {
		q.log.Error("queue: recording delivery outcome failed; the message will be retried", "queue_id", g.msgID,
			"domain", g.domain, "err", err)
	}
}

// attempt runs one delivery of g, or makes a temporary result for every recipient when it cannot start.
func (q *Queue) attempt(ctx context.Context, g *group) delivery.Result {
	rcpts := make([]string, len(g.rcpts))
	for i, r := range g.rcpts {
		rcpts[i] = r.address
	}
	src, err := q.o.Sources.Pick(ctx, PickRequest{Pool: g.pool, FallbackPool: g.fallbackPool, Domain: g.domain})
	if err != nil {
		return failAll(rcpts, smtperr.New(451, smtperr.TempNetwork, "%v", err))
	}
	g.src = src
	job := delivery.Job{
		QueueID:    g.msgID,
		Sender:     g.sender,
		Domain:     g.domain,
		Recipients: rcpts,
		SMTPUTF8:   g.smtputf8,
		EightBit:   g.eightBit,
		Size:       g.size,
		Open:       func() (io.ReadCloser, error) { return q.openContent(g.msgID, g.prefix) },
		Source:     src,
		TLSPolicy:  g.tlsPolicy,
	}
	return q.o.Deliverer.Deliver(ctx, job)
}

func failAll(rcpts []string, e *smtperr.Error) delivery.Result {
	res := delivery.Result{Started: time.Now()}
	for _, r := range rcpts {
		res.Rcpts = append(res.Rcpts, delivery.RcptResult{Rcpt: r, Err: e})
	}
	return res
}

// outcome is what became of one recipient in one attempt.
type outcome struct {
	rcpt    claimedRcpt
	status  string // delivered, deferred, bounced
	err     *smtperr.Error
	expired bool
	// remote is the remote host's reply the outcome rests on, as it wrote it (delivery.RcptResult.Reply).
	remote string
}

// record writes the attempt's outcomes, creates the DSNs they call for, and finishes the message when no
// recipient is left to deliver.
func (q *Queue) record(ctx context.Context, g *group, res delivery.Result) error {
	if q.o.Observer != nil && g.src.IP.IsValid() {
		q.o.Observer.Observe(g.src, g.domain, res)
	}
	now := time.Now()
	if res.TLSVerify != "" {
		q.m.tls.WithLabelValues(res.TLSVerify, res.TLSPolicy).Inc()
	}
	outs := make([]outcome, len(g.rcpts))
	var failed, delayed []outcome
	for i, r := range g.rcpts {
		o := outcome{rcpt: r, status: StatusDelivered}
		if i < len(res.Rcpts) {
			o.err, o.remote = res.Rcpts[i].Err, res.Rcpts[i].Reply
		} else {
			o.err = smtperr.New(451, smtperr.TempSystem, "No result from delivery")
		}
		switch {
		case o.err == nil:
		case !o.err.Temporary():
			o.status = StatusBounced
		case !now.Before(g.expires):
			o.status = StatusBounced
			o.expired = true
		default:
			o.status = StatusDeferred
		}
		outs[i] = o
		q.m.attempts.WithLabelValues(o.status).Inc()
		switch {
		case o.status == StatusBounced && notifies(r.notify, "FAILURE"):
			failed = append(failed, o)
		case o.status == StatusDeferred && notifies(r.notify, "DELAY"):
			delayed = append(delayed, o)
		}
	}
	wantDelay := len(delayed) > 0 && q.o.DelayNotice > 0 && !g.delayNotified && now.Sub(g.received) >= q.o.DelayNotice

	// DSN content goes to the spool before the transaction that queues it.
	var failDSN, delayDSN *Envelope
	if g.sender != "" && !g.isDSN {
		var err error
		if len(failed) > 0 {
			if failDSN, err = q.makeDSN(g, failed, res, false, now); err != nil {
				return err
			}
		}
		if wantDelay {
			if delayDSN, err = q.makeDSN(g, delayed, res, true, now); err != nil {
				if failDSN != nil {
					q.o.Spool.Remove(failDSN.ID)
				}
				return err
			}
		}
	}

	var final bool
	var delaySent bool
	var evs []events.Event
	err := q.o.DB.Batch(ctx, func(tx *sql.Tx) error {
		evs = evs[:0] // a batch may run the function again
		for _, o := range outs {
			var code int
			var enh, reply string
			if o.err != nil {
				code = o.err.Code
				enh = fmt.Sprintf("%d.%d.%d", o.err.Enhanced[0], o.err.Enhanced[1], o.err.Enhanced[2])
				reply = o.err.Message
				if o.expired {
					reply = "Message expired in the queue after " + q.o.MaxLifetime.String() + "; last error: " + reply
				}
			} else {
				code, enh, reply = 250, "2.0.0", "Delivered"
			}
			// The bounce class of a failure (of its last error, for an expiry); "" for a delivery.
			var class string
			if o.err != nil {
				class = bounce.Classify(code, enh, o.err.Message)
			}
			if _, err := tx.Exec(`INSERT INTO attempts (message_id, rcpt_idx, attempt, started_at, duration_ms, outcome,
				remote_mx, remote_ip, outbound_ip, tls, code, enhanced, reply, bounce_class, remote_reply,
				tls_version, tls_cipher, tls_verify, tls_policy)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				g.msgID, o.rcpt.idx, o.rcpt.attempt, store.Millis(res.Started), res.Duration.Milliseconds(), o.status,
				res.RemoteMX, res.RemoteIP, res.LocalIP, res.TLS, code, enh, reply, class, o.remote,
				res.TLSVersion, res.TLSCipher, res.TLSVerify, res.TLSPolicy); err != nil {
				return err
			}
			if _, err := tx.Exec(`UPDATE recipients SET status = ?, last_code = ?, last_enhanced = ?, last_reply = ?,
				remote_mx = ?, outbound_ip = ?, updated_at = ?, bounce_class = ?, last_remote_reply = ?, claimed_by = ''
				WHERE message_id = ? AND idx = ? AND status IN ('queued', 'deferred')`,
				o.status, code, enh, reply, res.RemoteMX, res.LocalIP, store.Millis(now), class, o.remote, g.msgID, o.rcpt.idx); err != nil {
				return err
			}
			// DSNs are the relay's own mail: their outcomes are no customer's events.
			if !g.isDSN {
				e := events.Event{Event: o.status, CustomerID: g.customerID, QueueID: g.msgID, MessageID: g.headerMsgID,
					Recipient: o.rcpt.address, Timestamp: now, BounceClass: class, Attempt: o.rcpt.attempt,
					RemoteMX: res.RemoteMX, OutboundIP: res.LocalIP}
				if o.remote != "" {
					e.Reply = o.remote
				} else {
					e.Reply = fmt.Sprintf("%d %s %s", code, enh, reply)
				}
				if err := q.emit(tx, &evs, e); err != nil {
					return err
				}
			}
			// A hard bounce of a bad mailbox puts the recipient on the customer's suppression list.
			if o.status == StatusBounced && !o.expired && !g.isDSN && class == bounce.BadMailbox {
				if err := bounce.Suppress(tx, g.customerID, o.rcpt.address, g.msgID, reply, now); err != nil {
					return err
				}
				if err := q.emit(tx, &evs, events.Event{Event: events.Suppressed, CustomerID: g.customerID, QueueID: g.msgID,
					MessageID: g.headerMsgID, Recipient: o.rcpt.address, Timestamp: now, Source: bounce.SourceBounce,
					BounceClass: class}); err != nil {
					return err
				}
			}
		}
		if failDSN != nil {
			if err := q.insert(tx, *failDSN, StatusQueued, ""); err != nil {
				return err
			}
		}
		if delayDSN != nil {
			r, err := tx.Exec(`UPDATE messages SET delay_notified = 1 WHERE id = ? AND delay_notified = 0`, g.msgID)
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 1 {
				if err := q.insert(tx, *delayDSN, StatusQueued, ""); err != nil {
					return err
				}
				delaySent = true
			}
		}
		var err error
		final, err = updateStatus(tx, g.msgID, now)
		return err
	})
	if err != nil {
		for _, d := range []*Envelope{failDSN, delayDSN} {
			if d != nil {
				q.o.Spool.Remove(d.ID)
			}
		}
		return err
	}
	if delayDSN != nil && !delaySent {
		q.o.Spool.Remove(delayDSN.ID)
	}
	if q.o.Events != nil {
		q.o.Events.Published(evs...)
	}
	for _, o := range outs {
		args := []any{"queue_id", g.msgID, "rcpt", o.rcpt.address, "status", o.status, "attempt", o.rcpt.attempt,
			"mx", res.RemoteMX, "ip", res.LocalIP, "duration", res.Duration.Round(time.Millisecond)}
		if o.err != nil {
			args = append(args, "reply", o.err.Reply())
		}
		if o.remote != "" {
			args = append(args, "remote_reply", o.remote)
		}
		q.log.Info("delivery", args...)
	}
	if failDSN != nil {
		q.m.dsns.WithLabelValues("failure").Inc()
	}
	if delaySent {
		q.m.dsns.WithLabelValues("delay").Inc()
	}
	if failDSN != nil || delaySent {
		q.Kick()
	}
	if final {
		if err := q.o.Spool.Remove(g.msgID); err != nil {
			q.log.Warn("queue: removing delivered message from the spool", "queue_id", g.msgID, "err", err)
		}
	}
	return nil
}

// notifies reports whether a NOTIFY parameter asks for the given kind of notice. The default (no NOTIFY)
// is FAILURE and DELAY (RFC 3461 §4.1).
func notifies(notify, kind string) bool {
	if notify == "" {
		return true
	}
	for _, n := range strings.Split(strings.ToUpper(notify), ",") {
		if strings.TrimSpace(n) == kind {
			return true
		}
	}
	return false
}

// updateStatus recomputes a message's status from its recipients and reports whether it is finished.
func updateStatus(tx *sql.Tx, id string, now time.Time) (bool, error) {
	rows, err := tx.Query(`SELECT status FROM recipients WHERE message_id = ?`, id)
	if err != nil {
		return false, err
	}
	var pending, deferred, bounced, lost, deleted int
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return false, err
		}
		switch s {
		case StatusQueued:
			pending++
		case StatusDeferred:
			pending++
			deferred++
		case StatusBounced:
			bounced++
		case StatusLost:
			lost++
		case StatusDeleted:
			deleted++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	var held bool
	if err := tx.QueryRow(`SELECT held FROM messages WHERE id = ?`, id).Scan(&held); err != nil {
		return false, err
	}
	status := StatusDelivered
	switch {
	case pending > 0 && held:
		status = StatusHeld
	case deferred > 0:
		status = StatusDeferred
	case pending > 0:
		status = StatusQueued
	case bounced > 0:
		status = StatusBounced
	case lost > 0:
		status = StatusLost
	case deleted > 0:
		status = StatusDeleted
	}
	var done any
	if pending == 0 {
		done = store.Millis(now)
	}
	_, err = tx.Exec(`UPDATE messages SET status = ?, done_at = ? WHERE id = ?`, status, done, id)
	return pending == 0, err
}

// emit records e in the outbox within tx (when the queue has an event sink) and adds it to evs, to be
// published once tx is committed.
func (q *Queue) emit(tx *sql.Tx, evs *[]events.Event, e events.Event) error {
	if q.o.Events == nil {
		return nil
	}
	if err := q.o.Events.Emit(tx, &e); err != nil {
		return err
	}
	*evs = append(*evs, e)
	return nil
}
