package dkimsign

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"easymail/internal/resolver"
	"easymail/internal/store"
)

// Rotate starts a rotation of the domain's keys: a new key, in state pending, for each algorithm the domain
// signs with. The domain keeps signing with its active keys until a pending key's record is published (see
// the package comment); the check runs at once, then at every check interval.
func (m *Manager) Rotate(ctx context.Context, domain string) error {
	if err := m.domainExists(ctx, domain); err != nil {
		return err
	}
	if err := m.rotate(ctx, domain, nil); err != nil {
		return err
	}
	m.checkDomain(ctx, domain)
	return nil
}

// rotate creates the pending keys of a rotation of domain, for the given algorithms or, when nil, for every
// algorithm the domain has an active key of. The check for a rotation in progress and the insertion are one
// transaction, and the dkim_keys_one_pending index refuses a second pending key, so concurrent rotations
// (API, scheduler, other nodes) cannot both succeed.
func (m *Manager) rotate(ctx context.Context, domain string, algorithms []string) error {
	if algorithms == nil {
		active, err := selectKeys(ctx, m.db.R, `WHERE domain = ? AND state = ?`, domain, StateActive)
		if err != nil {
			return err
		}
		if len(active) == 0 {
			return ErrNoActiveKey
		}
		for _, k := range active {
			algorithms = append(algorithms, k.algorithm)
		}
	}
	// Generation is slow (RSA): before the transaction.
	keys := make([]*newKey, len(algorithms))
	for i, a := range algorithms {
		k, err := generate(a, m.o.RSABits)
		if err != nil {
			return err
		}
		keys[i] = k
	}
	selectors := make([]string, len(keys))
	err := m.db.Tx(ctx, func(tx *sql.Tx) error {
		for i, k := range keys {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM dkim_keys WHERE domain = ? AND algorithm = ? AND state = ?`,
				domain, k.algorithm, StatePending).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return ErrRotationInProgress
			}
			var err error
			if selectors[i], err = m.insertKey(ctx, tx, domain, k, StatePending); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, k := range keys {
		m.log.Info("dkim: rotation started, waiting for the new record", "domain", domain, "selector", selectors[i],
			"algorithm", k.algorithm, "record", RecordName(selectors[i], domain))
	}
	return nil
}

// publication is what DNS says of a key's record.
type publication int

const (
	// published: the record holds the key.
	published publication = iota
	// unpublished: DNS answered, and the record is absent or holds something else.
	unpublished
	// unknown: the lookup failed; nothing can be concluded.
	unknown
)

// lookupKey checks the record of a key in DNS; detail says why it is not published.
func (m *Manager) lookupKey(ctx context.Context, selector, domain, algorithm, public string) (publication, string) {
	txts, err := m.res.LookupTXT(ctx, RecordName(selector, domain))
	switch {
	case errors.Is(err, resolver.ErrNotFound):
		return unpublished, "no record at " + RecordName(selector, domain)
	case err != nil:
		return unknown, "DNS lookup failed: " + err.Error()
	}
	if ok, why := matchRecord(txts, algorithm, public); !ok {
		return unpublished, why
	}
	return published, ""
}

// KeyRecord is what DNS says of one key's record.
type KeyRecord struct {
	Selector  string
	Algorithm string
	State     string
	// Name is the record's DNS name, <selector>._domainkey.<domain>.
	Name string
	// Published is set when the record at Name holds the key; LookupFailed when the lookup failed, so that
	// nothing is known of the record.
	Published    bool
	LookupFailed bool
	// Detail says why the key is not published.
	Detail string
}

// KeyRecords looks up, live, the record of each active, pending and retiring key of the domain, active keys
// first, RSA before Ed25519. A domain without such keys has none.
func (m *Manager) KeyRecords(ctx context.Context, domain string) ([]KeyRecord, error) {
	keys, err := selectKeys(ctx, m.db.R, `WHERE domain = ? AND state IN (?, ?, ?) ORDER BY `+stateOrder+`, algorithm DESC`,
		domain, StateActive, StatePending, StateRetiring)
	if err != nil {
		return nil, err
	}
	out := make([]KeyRecord, 0, len(keys))
	for _, k := range keys {
		pub, why := m.lookupKey(ctx, k.selector, domain, k.algorithm, k.public)
		out = append(out, KeyRecord{Selector: k.selector, Algorithm: k.algorithm, State: k.state,
			Name: RecordName(k.selector, domain), Published: pub == published, LookupFailed: pub == unknown, Detail: why})
	}
	return out, nil
}

// Check checks the records of the domain's pending keys now, rather than at the next round of the rotation
// loop, and activates those that may be (after the customer published a record).
func (m *Manager) Check(ctx context.Context, domain string) error {
	if err := m.domainExists(ctx, domain); err != nil {
		return err
	}
	m.checkDomain(ctx, domain)
	return nil
}

// checkDomain checks the pending keys of one domain (after a rotation on demand).
func (m *Manager) checkDomain(ctx context.Context, domain string) {
	pending, err := selectKeys(ctx, m.db.R, `WHERE domain = ? AND state = ?`, domain, StatePending)
	if err != nil {
		m.log.Error("dkim: reading pending keys", "domain", domain, "err", err)
		return
	}
	changed := false
	for _, k := range pending {
		changed = m.checkPending(ctx, k) || changed
	}
	if changed {
		m.reload(ctx)
	}
}

// checkPending activates a pending key when its record is published, or when the active key it would
// replace is not published either. It reports whether the key was activated. The activation is conditional
// on the key still being pending, so that concurrent checks (API, loop, other nodes) activate it once.
func (m *Manager) checkPending(ctx context.Context, k keyRow) bool {
	pub, why := m.lookupKey(ctx, k.selector, k.domain, k.algorithm, k.public)
	if pub != published {
		if pub == unknown {
			m.log.Warn("dkim: cannot check a pending key's record", "domain", k.domain, "selector", k.selector, "err", why)
			return false
		}
		prev, err := selectKeys(ctx, m.db.R, `WHERE domain = ? AND algorithm = ? AND state = ?`, k.domain, k.algorithm, StateActive)
		if err != nil {
			m.log.Error("dkim: reading the active key", "domain", k.domain, "err", err)
			return false
		}
		if len(prev) == 0 {
			// Nothing to replace: an added Ed25519 key signs only once its record is there.
			m.log.Debug("dkim: pending key not published yet", "domain", k.domain, "selector", k.selector, "why", why)
			return false
		}
		prevPub, _ := m.lookupKey(ctx, prev[0].selector, k.domain, k.algorithm, prev[0].public)
		if prevPub != unpublished {
			// The active key still verifies (or cannot be checked): keep signing with it.
			m.log.Debug("dkim: pending key not published yet", "domain", k.domain, "selector", k.selector, "why", why)
			return false
		}
		m.log.Info("dkim: switching to the pending key although its record is missing, as the active key's is too",
			"domain", k.domain, "selector", k.selector)
	}
	now := m.now()
	activated := false
	err := m.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE dkim_keys SET state = ?, retire_at = ? WHERE domain = ? AND algorithm = ? AND state = ?`,
			StateRetiring, store.Millis(now.Add(m.o.RetireAfter)), k.domain, k.algorithm, StateActive); err != nil {
			return err
		}
		var verified any
		if pub == published {
			verified = store.Millis(now)
		}
		res, err := tx.ExecContext(ctx, `UPDATE dkim_keys SET state = ?, activated_at = ?, verified_at = COALESCE(?, verified_at)
			WHERE id = ? AND state = ?`, StateActive, store.Millis(now), verified, k.id, StatePending)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != 1 {
			// Another node activated it meanwhile: undo the retirement above.
			return errAlreadyDone
		}
		activated = true
		return nil
	})
	if err != nil && !errors.Is(err, errAlreadyDone) {
		m.log.Error("dkim: activating a key", "domain", k.domain, "selector", k.selector, "err", err)
		return false
	}
	if activated {
		m.log.Info("dkim: key activated", "domain", k.domain, "selector", k.selector, "algorithm", k.algorithm,
			"published", pub == published)
	}
	return activated
}

var errAlreadyDone = errors.New("dkim: already done by another node")

// Tick runs one round of the rotation loop: it reloads the keys, gives a key to any domain without one
// (domains added before DKIM existed), starts the scheduled rotations, checks the pending keys' records,
// and retires the keys whose time has come.
func (m *Manager) Tick(ctx context.Context) {
	m.backfill(ctx)
	m.scheduled(ctx)
	pending, err := selectKeys(ctx, m.db.R, `WHERE state = ? ORDER BY domain`, StatePending)
	if err != nil {
		m.log.Error("dkim: reading pending keys", "err", err)
	}
	for _, k := range pending {
		if ctx.Err() != nil {
			return
		}
		m.checkPending(ctx, k)
	}
	m.retire(ctx)
	m.reload(ctx)
	m.countKeys(ctx)
}

// countKeys sets the key gauges.
func (m *Manager) countKeys(ctx context.Context) {
	rows, err := m.db.R.QueryContext(ctx, `SELECT state, COUNT(*) FROM dkim_keys WHERE state <> ? GROUP BY state`, StateRetired)
	if err != nil {
		return
	}
	defer rows.Close()
	counts := map[string]float64{StateActive: 0, StatePending: 0, StateRetiring: 0}
	for rows.Next() {
		var state string
		var n float64
		if rows.Scan(&state, &n) == nil {
			counts[state] = n
		}
	}
	if rows.Err() != nil {
		return
	}
	for state, n := range counts {
		m.m.keys.WithLabelValues(state).Set(n)
	}
}

// reload loads the keys, logging a failure: the previous table stays in use.
func (m *Manager) reload(ctx context.Context) {
	if err := m.Load(ctx); err != nil && ctx.Err() == nil {
		m.log.Error("dkim: reloading keys", "err", err)
	}
}

// backfill gives an active RSA key to every domain that has no key to sign with or to switch to.
func (m *Manager) backfill(ctx context.Context) {
	rows, err := m.db.R.QueryContext(ctx, `SELECT d.domain FROM customer_domains d WHERE NOT EXISTS
		(SELECT 1 FROM dkim_keys k WHERE k.domain = d.domain AND k.state IN (?, ?)) ORDER BY d.domain`, StateActive, StatePending)
	if err != nil {
		m.log.Error("dkim: looking for domains without keys", "err", err)
		return
	}
	var domains []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err == nil {
			domains = append(domains, d)
		}
	}
	rows.Close()
	for _, d := range domains {
		if ctx.Err() != nil {
			return
		}
		save, err := m.Prepare(d)
		if err == nil {
			err = m.db.Tx(ctx, func(tx *sql.Tx) error { return save(ctx, tx) })
		}
		if err != nil {
			// A unique violation means another node did it; the domain may also have just been removed.
			m.log.Warn("dkim: giving a key to a domain without one", "domain", d, "err", err)
			continue
		}
		m.log.Info("dkim: key created for a domain that had none", "domain", d)
	}
}

// scheduled starts a rotation for each domain whose active key is older than RotateEvery.
func (m *Manager) scheduled(ctx context.Context) {
	if m.o.RotateEvery <= 0 {
		return
	}
	due := store.Millis(m.now().Add(-m.o.RotateEvery))
	old, err := selectKeys(ctx, m.db.R, `WHERE state = ? AND COALESCE(activated_at, created_at) <= ? AND NOT EXISTS
		(SELECT 1 FROM dkim_keys p WHERE p.domain = dkim_keys.domain AND p.algorithm = dkim_keys.algorithm AND p.state = ?)
		ORDER BY domain`, StateActive, due, StatePending)
	if err != nil {
		m.log.Error("dkim: looking for keys to rotate", "err", err)
		return
	}
	for _, k := range old {
		if ctx.Err() != nil {
			return
		}
		if err := m.rotate(ctx, k.domain, []string{k.algorithm}); err != nil {
			m.log.Warn("dkim: scheduled rotation", "domain", k.domain, "algorithm", k.algorithm, "err", err)
		}
	}
}

// retire retires the retiring keys whose delay is over, erasing their private keys.
func (m *Manager) retire(ctx context.Context) {
	now := store.Millis(m.now())
	retired, err := selectKeys(ctx, m.db.R, `WHERE state = ? AND retire_at <= ?`, StateRetiring, now)
	if err != nil || len(retired) == 0 {
		if err != nil {
			m.log.Error("dkim: looking for keys to retire", "err", err)
		}
		return
	}
	err = m.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, k := range retired {
			if _, err := tx.ExecContext(ctx, `UPDATE dkim_keys SET state = ?, retired_at = ?, private_key = '' WHERE id = ? AND state = ?`,
				StateRetired, now, k.id, StateRetiring); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		m.log.Error("dkim: retiring keys", "err", err)
		return
	}
	for _, k := range retired {
		m.log.Info("dkim: key retired; its record may be removed", "domain", k.domain, "selector", k.selector,
			"record", RecordName(k.selector, k.domain))
	}
}

// Run runs the rotation loop until ctx ends: a round at once, then one every CheckInterval.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.o.CheckInterval)
	defer t.Stop()
	for {
		m.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
