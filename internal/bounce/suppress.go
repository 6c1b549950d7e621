package bounce

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/fielderr"
	"easymail/internal/store"
)

// Sources of suppression entries.
const (
	SourceBounce    = "bounce"
	SourceOperator  = "operator"
	SourceComplaint = "complaint" // a receiver's feedback report (package feedback)
	// SourceUnsubscribe is a recipient's one-click unsubscription (package unsubscribe); it does not expire.
	SourceUnsubscribe = "unsubscribe"
)

// never is the expiry written for entries that do not expire (unsubscriptions).
var never = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// ErrNotFound is returned by Remove for an address that is not on the list.
var ErrNotFound = errors.New("no such suppression")

// Suppress puts address on the suppression list of customerID after a hard bounce of a bad mailbox, in the
// transaction that records the bounce: queueID is the bounced message, reason its reply. An entry already
// there is renewed. A customer that no longer exists (or operator mail, customer "") gets no entry, and that is
// no error: the bounce must be recorded anyway. The entry expires after the List's TTL.
func Suppress(tx *sql.Tx, customerID, address, queueID, reason string, at time.Time) error {
	return SuppressAs(tx, SourceBounce, customerID, address, queueID, reason, at)
}

// SuppressAs is Suppress with the entry's source: SourceBounce, SourceComplaint for a complaint about
// message queueID, or SourceUnsubscribe for an unsubscription from it, which never expires (9999-12-31).
func SuppressAs(tx *sql.Tx, source, customerID, address, queueID, reason string, at time.Time) error {
	if customerID == "" || address == "" {
		return nil
	}
	// INSERT ... SELECT needs its WHERE before ON CONFLICT for SQLite to parse the upsert.
	var expires sql.NullInt64 // NULL: the List's TTL
	if source == SourceUnsubscribe {
		expires = sql.NullInt64{Int64: store.Millis(never), Valid: true}
	}
	_, err := tx.Exec(`INSERT INTO suppressions (customer_id, address, source, reason, queue_id, created_at, expires_at)
		SELECT ?, lower(?), ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM customers WHERE id = ?)
		ON CONFLICT (customer_id, address) DO UPDATE SET source = excluded.source, reason = excluded.reason,
			queue_id = excluded.queue_id, created_at = excluded.created_at, expires_at = excluded.expires_at`,
		customerID, address, source, clip(reason, maxReason), queueID, store.Millis(at), expires, customerID)
	if err != nil {
		return fmt.Errorf("suppress %s for %s: %w", address, customerID, err)
	}
	return nil
}

// ListOptions configure a List.
type ListOptions struct {
	// DB is the database; required.
	DB *store.DB
	// TTL is how long an entry without an explicit expiry applies after it was made; 0 makes only the
	// operator's entries with an expiry apply.
	TTL time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Logger receives lookup errors; nil discards them.
	Logger *slog.Logger
	// Registerer receives the list's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// List is the suppression lists of every customer. It is safe for concurrent use.
type List struct {
	db      *store.DB
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger
	refused prometheus.Counter
}

// NewList returns the suppression lists kept in o.DB.
func NewList(o ListOptions) *List {
	l := &List{db: o.DB, ttl: o.TTL, now: o.Now, log: o.Logger}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.refused = prometheus.NewCounter(prometheus.CounterOpts{Name: "easymail_suppression_refusals_total",
		Help: "Recipients refused at RCPT because they are on the customer's suppression list."})
	if o.Registerer != nil {
		o.Registerer.MustRegister(l.refused)
	}
	return l
}

// TTL returns the lifetime of entries without an explicit expiry.
func (l *List) TTL() time.Duration { return l.ttl }

// Maximum lengths.
const (
	maxReason  = 300
	maxAddress = 254 // RFC 5321 §4.5.3.1.3 path, less the brackets
)

// row is a stored entry.
type row struct {
	customer, address, source, reason, queueID string
	created                                    int64
	expires                                    sql.NullInt64
}

const rowColumns = `customer_id, address, source, reason, queue_id, created_at, expires_at`

func (r *row) dest() []any {
	return []any{&r.customer, &r.address, &r.source, &r.reason, &r.queueID, &r.created, &r.expires}
}

// expiry returns when the entry stops applying.
func (l *List) expiry(r row) time.Time {
	if r.expires.Valid {
		return store.Time(r.expires.Int64)
	}
	return store.Time(r.created).Add(l.ttl)
}

func (l *List) entry(r row) Suppression {
	return Suppression{CustomerID: r.customer, Address: r.address, Source: r.source, Reason: r.reason,
		QueueID: r.queueID, CreatedAt: store.Time(r.created), ExpiresAt: l.expiry(r)}
}

// Suppressed reports whether rcpt is on customerID's list, with the text of the refusal: "Recipient
// suppressed after a hard bounce on 2030-03-01: <the bounce's reply>". A lookup error is logged and lets the
// recipient through: the receiver will answer for itself.
func (l *List) Suppressed(ctx context.Context, customerID, rcpt string) (string, bool) {
	var r row
	err := l.db.R.QueryRowContext(ctx, `SELECT `+rowColumns+` FROM suppressions WHERE customer_id = ? AND address = lower(?)`,
		customerID, rcpt).Scan(r.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false
	}
	if err != nil {
		l.log.Warn("suppression: lookup failed; recipient let through", "customer", customerID, "err", err)
		return "", false
	}
	if !l.now().Before(l.expiry(r)) {
		return "", false
	}
	l.refused.Inc()
	return refusal(r), true
}

// refusal is the text of the 550 5.1.1 reply for an entry: one line of printable ASCII.
func refusal(r row) string {
	day := store.Time(r.created).Format(time.DateOnly)
	var s string
	switch r.source {
	case SourceBounce:
		s = "Recipient suppressed after a hard bounce on " + day
	case SourceComplaint:
		s = "Recipient suppressed after a complaint on " + day
	case SourceUnsubscribe:
		s = "Recipient unsubscribed on " + day
	default:
		s = "Recipient suppressed by the operator on " + day
	}
	if r.reason != "" {
		s += ": " + r.reason
	}
	return clip(strings.Map(func(c rune) rune {
		if c < 0x20 || c > 0x7e {
			return '?'
		}
		return c
	}, s), 400)
}

// List returns customerID's entries in force, by address.
func (l *List) List(ctx context.Context, customerID string) ([]Suppression, error) {
	rows, err := l.db.R.QueryContext(ctx, `SELECT `+rowColumns+` FROM suppressions WHERE customer_id = ? ORDER BY address`, customerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Suppression{}
	now := l.now()
	for rows.Next() {
		var r row
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, err
		}
		if now.Before(l.expiry(r)) {
			out = append(out, l.entry(r))
		}
	}
	return out, rows.Err()
}

// ForAddress returns every entry naming address, on any customer's list, expired ones not yet purged
// included (for a data subject's export).
func (l *List) ForAddress(ctx context.Context, address string) ([]Suppression, error) {
	rows, err := l.db.R.QueryContext(ctx, `SELECT `+rowColumns+` FROM suppressions WHERE address = lower(?) ORDER BY customer_id`, address)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Suppression{}
	for rows.Next() {
		var r row
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, err
		}
		out = append(out, l.entry(r))
	}
	return out, rows.Err()
}

// Add puts address on customerID's list (or renews it) as an operator's entry with reason, until expires
// (zero: now plus the TTL). The customer must exist (a foreign key failure otherwise).
func (l *List) Add(ctx context.Context, customerID, address, reason string, expires time.Time) (Suppression, error) {
	if err := CheckAddress(address); err != nil {
		return Suppression{}, err
	}
	reason = strings.TrimSpace(reason)
	if len(reason) > maxReason || strings.IndexFunc(reason, unicode.IsControl) >= 0 {
		return Suppression{}, &fielderr.Error{Field: "reason", Msg: fmt.Sprintf("must be at most %d printable characters", maxReason)}
	}
	now := l.now()
	if expires.IsZero() {
		expires = now.Add(l.ttl)
	}
	if !expires.After(now) {
		return Suppression{}, &fielderr.Error{Field: "expires_at", Msg: "must be in the future"}
	}
	var r row
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO suppressions (customer_id, address, source, reason, queue_id, created_at, expires_at)
			VALUES (?, lower(?), ?, ?, '', ?, ?)
			ON CONFLICT (customer_id, address) DO UPDATE SET source = excluded.source, reason = excluded.reason,
				queue_id = excluded.queue_id, created_at = excluded.created_at, expires_at = excluded.expires_at`,
			customerID, address, SourceOperator, reason, store.Millis(now), store.Millis(expires)); err != nil {
			return err
		}
		return tx.QueryRow(`SELECT `+rowColumns+` FROM suppressions WHERE customer_id = ? AND address = lower(?)`,
			customerID, address).Scan(r.dest()...)
	})
	if err != nil {
		return Suppression{}, err
	}
	return l.entry(r), nil
}

// Remove takes address off customerID's list; ErrNotFound when it is not there (expired entries count as
// there until they are purged).
func (l *List) Remove(ctx context.Context, customerID, address string) error {
	return l.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM suppressions WHERE customer_id = ? AND address = lower(?)`, customerID, address)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// DeleteAddress deletes, inside tx, the entries for address on every customer's list (a data subject's
// erasure, package retention) and returns how many.
func DeleteAddress(tx *sql.Tx, address string) (int64, error) {
	r, err := tx.Exec(`DELETE FROM suppressions WHERE address = lower(?)`, address)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// Purge deletes the expired entries and returns how many.
func (l *List) Purge(ctx context.Context) (int64, error) {
	now := l.now()
	var n int64
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM suppressions WHERE (expires_at IS NOT NULL AND expires_at <= ?)
			OR (expires_at IS NULL AND created_at <= ?)`, store.Millis(now), store.Millis(now.Add(-l.ttl)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// CheckAddress returns a *fielderr.Error unless address looks like local@domain: at most 254 characters, no
// spaces or control characters, a non-empty local part and domain.
func CheckAddress(address string) error {
	bad := func(msg string) error { return &fielderr.Error{Field: "address", Msg: msg} }
	if address == "" {
		return bad("is required")
	}
	if len(address) > maxAddress {
		return bad(fmt.Sprintf("must be at most %d characters", maxAddress))
	}
	if strings.IndexFunc(address, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 ||
		strings.ContainsAny(address, "<>") {
		return bad(fmt.Sprintf("%q is not an e-mail address (local@domain)", address))
	}
	i := strings.LastIndexByte(address, '@')
	if i <= 0 || i == len(address)-1 || strings.Contains(address[i+1:], "..") || strings.HasPrefix(address[i+1:], ".") {
		return bad(fmt.Sprintf("%q is not an e-mail address (local@domain)", address))
	}
	return nil
}

// clip cuts s to at most n bytes, at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
