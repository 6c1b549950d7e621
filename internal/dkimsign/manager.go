package dkimsign

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/resolver"
	"easymail/internal/store"
)

// Errors of the provisioning operations.
var (
	// ErrRotationInProgress is returned by Rotate while a previous rotation still waits for its record.
	ErrRotationInProgress = errors.New("a key rotation is already in progress for this domain: publish the pending key's record first")
	// ErrNoActiveKey is returned by Rotate for a domain without an active key.
	ErrNoActiveKey = errors.New("the domain has no active DKIM key to rotate")
	// ErrHasEd25519 is returned by AddEd25519 when the domain already has an Ed25519 key.
	ErrHasEd25519 = errors.New("the domain already has an Ed25519 key")
	// ErrUnknownDomain is returned for a domain that is not registered.
	ErrUnknownDomain = errors.New("no such domain")
)

// Options configure a Manager.
type Options struct {
	// DB holds the keys and the message log; required.
	DB *store.DB
	// Resolver looks up the published records; required.
	Resolver resolver.Resolver
	// MasterKey encrypts the private keys stored and decrypts those loaded; required. EncryptAtRest must
	// have run with it (the node does, at start).
	MasterKey *MasterKey
	// RSABits is the size of new RSA keys. Default: DefaultRSABits.
	RSABits int
	// RotateEvery is the age at which a domain's active keys are rotated; 0 turns scheduled rotation off.
	RotateEvery time.Duration
	// RetireAfter is how long a replaced key stays published (retiring) before it is retired. Default: 168h.
	RetireAfter time.Duration
	// CheckInterval is the time between two rounds of the rotation loop (record checks, retirement,
	// scheduled rotations, key reload). Default: 1h.
	CheckInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the rotation events and errors; nil discards them.
	Logger *slog.Logger
	// Registerer receives the metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
}

// Manager manages the DKIM keys and signs messages. It is safe for concurrent use.
type Manager struct {
	o   Options
	db  *store.DB
	res resolver.Resolver
	log *slog.Logger
	m   *metrics

	keys atomic.Pointer[keyTable]
	// loadMu serialises reloads of the key table.
	loadMu sync.Mutex
}

// signingKey is an active key, ready to sign.
type signingKey struct {
	id         string
	domain     string
	selector   string
	algorithm  string
	customerID string
	signer     crypto.Signer
}

// keyTable is an immutable snapshot of the active keys.
type keyTable struct {
	// byDomain holds each domain's active keys, RSA first.
	byDomain map[string][]*signingKey
	byID     map[string]*signingKey
}

// New returns a manager with an empty key table; call Load before signing.
func New(o Options) (*Manager, error) {
	if o.DB == nil || o.Resolver == nil || o.MasterKey == nil {
		return nil, errors.New("dkimsign: DB, Resolver and MasterKey are required")
	}
	if o.RSABits == 0 {
		o.RSABits = DefaultRSABits
	}
	if o.RSABits < 1024 {
		return nil, fmt.Errorf("dkimsign: RSA keys of %d bits are too short (RFC 8301 §3.2 requires 1024, recommends 2048)", o.RSABits)
	}
	if o.RetireAfter <= 0 {
		o.RetireAfter = 168 * time.Hour
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = time.Hour
	}
	if o.RotateEvery < 0 {
		return nil, errors.New("dkimsign: RotateEvery must not be negative")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	m := &Manager{o: o, db: o.DB, res: o.Resolver, log: o.Logger, m: newMetrics(o.Registerer)}
	m.keys.Store(&keyTable{byDomain: map[string][]*signingKey{}, byID: map[string]*signingKey{}})
	return m, nil
}

func (m *Manager) now() time.Time { return m.o.Now() }

// MasterKey is the master key that encrypts the private keys (and the portal's TOTP secrets).
func (m *Manager) MasterKey() *MasterKey { return m.o.MasterKey }

// Load (re)reads the active keys from the database into the in-memory table that signing uses. Keys already
// in the table are not parsed again.
func (m *Manager) Load(ctx context.Context) error {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	old := m.keys.Load()
	rows, err := m.db.R.QueryContext(ctx, `SELECT k.id, k.domain, k.selector, k.algorithm, k.private_key, d.customer_id
		FROM dkim_keys k JOIN customer_domains d ON d.domain = k.domain WHERE k.state = ? ORDER BY k.domain, k.algorithm DESC`,
		StateActive)
	if err != nil {
		return err
	}
	defer rows.Close()
	t := &keyTable{byDomain: map[string][]*signingKey{}, byID: map[string]*signingKey{}}
	for rows.Next() {
		var k signingKey
		var pemText string
		if err := rows.Scan(&k.id, &k.domain, &k.selector, &k.algorithm, &pemText, &k.customerID); err != nil {
			return err
		}
		if prev := old.byID[k.id]; prev != nil && prev.customerID == k.customerID {
			k.signer = prev.signer
		} else {
			s, err := m.o.MasterKey.open(k.id, pemText)
			var signer crypto.Signer
			if err == nil {
				signer, err = parsePrivate(s)
			}
			if err != nil {
				// One broken key must not stop the others from signing.
				m.log.Error("dkim: cannot load a key", "domain", k.domain, "selector", k.selector, "err", err)
				continue
			}
			k.signer = signer
		}
		t.byDomain[k.domain] = append(t.byDomain[k.domain], &k)
		t.byID[k.id] = &k
	}
	if err := rows.Err(); err != nil {
		return err
	}
	m.keys.Store(t)
	return nil
}

// Domains returns the number of domains that have an active key, for logs.
func (m *Manager) Domains() int { return len(m.keys.Load().byDomain) }
