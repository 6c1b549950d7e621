package dkimsign

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"easymail/internal/msgid"
	"easymail/internal/store"
)

// keyRow is one row of dkim_keys, without its private key.
type keyRow struct {
	id, domain, selector, algorithm, state, public string
	created                                        int64
	activated, retireAt, retired, verified         sql.NullInt64
}

const keyColumns = `id, domain, selector, algorithm, state, public_key, created_at, activated_at, retire_at, retired_at, verified_at`

func scanKey(r interface{ Scan(...any) error }) (keyRow, error) {
	var k keyRow
	err := r.Scan(&k.id, &k.domain, &k.selector, &k.algorithm, &k.state, &k.public, &k.created, &k.activated,
		&k.retireAt, &k.retired, &k.verified)
	return k, err
}

// apiKey is the wire form of the key.
func (k keyRow) apiKey() Key {
	return Key{
		Selector:    k.selector,
		Algorithm:   k.algorithm,
		State:       k.state,
		Record:      record(k.selector, k.domain, k.algorithm, k.public),
		CreatedAt:   store.Time(k.created),
		ActivatedAt: optTime(k.activated),
		RetireAt:    optTime(k.retireAt),
		RetiredAt:   optTime(k.retired),
		VerifiedAt:  optTime(k.verified),
	}
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.Time(v.Int64)
	return &t
}

// queryer is what *sql.DB and *sql.Tx have in common for reads.
type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// selectKeys runs a SELECT of keyColumns and returns the rows.
func selectKeys(ctx context.Context, q queryer, where string, args ...any) ([]keyRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+keyColumns+` FROM dkim_keys `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []keyRow
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// insertKey stores k for domain in state, inside tx, under a new selector.
func (m *Manager) insertKey(ctx context.Context, tx *sql.Tx, domain string, k *newKey, state string) (string, error) {
	taken := map[string]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT selector FROM dkim_keys WHERE domain = ?`, domain)
	if err != nil {
		return "", err
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return "", err
		}
		taken[s] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", err
	}
	now := m.now()
	sel := newSelector(k.algorithm, now, func(s string) bool { return taken[s] })
	var activated any
	if state == StateActive {
		activated = store.Millis(now)
	}
	id := msgid.Random(10)
	sealed, err := m.o.MasterKey.seal(id, k.privatePEM)
	if err != nil {
		return "", err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO dkim_keys (id, domain, selector, algorithm, state, private_key, public_key,
		created_at, activated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, domain, sel, k.algorithm, state, sealed, k.public, store.Millis(now), activated)
	return sel, err
}

// Prepare generates the first key of a new domain, an RSA key that is active at once (there is no previous
// key whose signatures could be lost). Generation is slow, so it runs before the domain's transaction;
// the returned function stores the key inside it, after the domain's row.
func (m *Manager) Prepare(domain string) (func(ctx context.Context, tx *sql.Tx) error, error) {
	k, err := generate(RSA, m.o.RSABits)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := m.insertKey(ctx, tx, domain, k, StateActive)
		return err
	}, nil
}

// Keys returns the keys of the given domains, retired ones excepted, by domain, active ones first, RSA before
// Ed25519. A nil list means every domain.
func (m *Manager) Keys(ctx context.Context, domains []string) (map[string][]Key, error) {
	where := `WHERE state <> ?`
	args := []any{StateRetired}
	if domains != nil {
		if len(domains) == 0 {
			return map[string][]Key{}, nil
		}
		where += ` AND domain IN (?` + strings.Repeat(", ?", len(domains)-1) + `)`
		for _, d := range domains {
			args = append(args, d)
		}
	}
	rows, err := selectKeys(ctx, m.db.R, where+` ORDER BY domain, `+stateOrder+`, algorithm DESC, created_at DESC`, args...)
	if err != nil {
		return nil, err
	}
	out := map[string][]Key{}
	for _, k := range rows {
		out[k.domain] = append(out[k.domain], k.apiKey())
	}
	return out, nil
}

// stateOrder sorts keys active, pending, retiring, retired.
const stateOrder = `CASE state WHEN 'active' THEN 0 WHEN 'pending' THEN 1 WHEN 'retiring' THEN 2 ELSE 3 END`

// DomainKeys returns every key of a domain, retired ones included, in the order of Keys, then newest first.
func (m *Manager) DomainKeys(ctx context.Context, domain string) (*DomainDKIM, error) {
	if err := m.domainExists(ctx, domain); err != nil {
		return nil, err
	}
	rows, err := selectKeys(ctx, m.db.R, `WHERE domain = ? ORDER BY `+stateOrder+`, algorithm DESC, created_at DESC`, domain)
	if err != nil {
		return nil, err
	}
	out := &DomainDKIM{Domain: domain, Keys: []Key{}}
	for _, k := range rows {
		out.Keys = append(out.Keys, k.apiKey())
	}
	return out, nil
}

func (m *Manager) domainExists(ctx context.Context, domain string) error {
	var one int
	err := m.db.R.QueryRowContext(ctx, `SELECT 1 FROM customer_domains WHERE domain = ?`, domain).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrUnknownDomain
	}
	return err
}

// AddEd25519 gives the domain an Ed25519 key, so that its messages carry a second signature (RFC 8463). The
// key waits in state pending until its record is published, then the check loop activates it.
func (m *Manager) AddEd25519(ctx context.Context, domain string) error {
	if err := m.domainExists(ctx, domain); err != nil {
		return err
	}
	k, err := generate(Ed25519, 0)
	if err != nil {
		return err
	}
	var sel string
	err = m.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM dkim_keys WHERE domain = ? AND algorithm = ? AND state IN (?, ?)`,
			domain, Ed25519, StateActive, StatePending).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrHasEd25519
		}
		sel, err = m.insertKey(ctx, tx, domain, k, StatePending)
		return err
	})
	if err != nil {
		return err
	}
	m.log.Info("dkim: Ed25519 key created, waiting for its record", "domain", domain, "selector", sel)
	m.checkDomain(ctx, domain)
	return nil
}
