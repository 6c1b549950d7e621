// Package account is the portal's accounts: its users (operator, expert, or customer bound to one customer),
// their bcrypt-hashed passwords and optional TOTP second factor (RFC 6238), their sessions, and the
// throttling of failed logins. A customer's users may log in only while the customer's portal is enabled.
package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"easymail/internal/authz"
	"easymail/internal/fielderr"
	"easymail/internal/msgid"
	"easymail/internal/store"
)

// The roles of portal users: the API's token roles.
const (
	RoleOperator = authz.RoleOperator
	RoleExpert   = authz.RoleExpert
	RoleCustomer = authz.RoleCustomer
)

// Password length bounds: bcrypt reads at most 72 bytes.
const (
	MinPassword = 12
	MaxPassword = 72
)

var (
	// ErrNotFound is returned for an unknown user.
	ErrNotFound = errors.New("no such portal user")
	// ErrBadCredentials is returned for an unknown e-mail address or a wrong password, alike.
	ErrBadCredentials = errors.New("wrong e-mail address or password")
	// ErrCodeRequired is returned when the password is right but the TOTP code is missing or wrong.
	ErrCodeRequired = errors.New("a valid code of the authenticator app is required")
	// ErrPortalDisabled is returned for a customer's user while the customer's portal is not enabled.
	ErrPortalDisabled = errors.New("the portal is not enabled for this customer; ask the operator")
	// ErrNoSession is returned for an unknown, expired or idle session.
	ErrNoSession = errors.New("no valid session")
)

// Store keeps the users and sessions in the database.
type Store struct {
	DB *store.DB
	// Cost is the bcrypt cost; 0 means bcrypt.DefaultCost.
	Cost int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Secrets encrypts the TOTP secrets at rest; required to enable a second factor.
	Secrets Sealer
}

// Sealer encrypts the TOTP secrets at rest, each bound to its user: *dkimsign.MasterKey, the master key of
// the DKIM private keys.
type Sealer interface {
	SealTOTP(userID, secret string) (string, error)
	OpenTOTP(userID, stored string) (string, error)
	// IsSealed reports whether a stored secret is encrypted (else it is plain, as stored before).
	IsSealed(stored string) bool
}

// openSecret returns the TOTP secret stored for user id, and whether it is stored plain (as before
// encryption at rest), to be sealed.
func (s *Store) openSecret(id, stored string) (secret string, plain bool, err error) {
	if s.Secrets == nil || !s.Secrets.IsSealed(stored) {
		if strings.HasPrefix(stored, "enc1:") {
			return "", false, errors.New("portal: a TOTP secret is encrypted, and no master key was given")
		}
		return stored, true, nil
	}
	secret, err = s.Secrets.OpenTOTP(id, stored)
	return secret, false, err
}

// SealTOTPSecrets encrypts the TOTP secrets still stored plain (by a version before encryption at rest),
// in one transaction that leaves no plain copy in the database's free pages or journal; it returns how
// many it sealed.
func (s *Store) SealTOTPSecrets(ctx context.Context) (int, error) {
	if s.Secrets == nil {
		return 0, errors.New("portal: no master key to encrypt the TOTP secrets")
	}
	var n int
	if err := s.DB.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM portal_users WHERE totp_secret <> '' AND totp_secret NOT LIKE 'enc1:%'`).Scan(&n); err != nil || n == 0 {
		return 0, err
	}
	n = 0
	err := s.DB.TxScrub(ctx, func(tx *sql.Tx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, `SELECT id, totp_secret FROM portal_users WHERE totp_secret <> '' AND totp_secret NOT LIKE 'enc1:%'`)
		if err != nil {
			return err
		}
		plain := map[string]string{}
		for rows.Next() {
			var id, secret string
			if err := rows.Scan(&id, &secret); err != nil {
				rows.Close()
				return err
			}
			plain[id] = secret
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for id, secret := range plain {
			sealed, err := s.Secrets.SealTOTP(id, secret)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE portal_users SET totp_secret = ? WHERE id = ?`, sealed, id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Store) cost() int {
	if s.Cost == 0 {
		return bcrypt.DefaultCost
	}
	return s.Cost
}

// NormalizeRole maps a role name to the stored role: "customer-user" is an alias of "customer".
func NormalizeRole(r string) string {
	r = strings.ToLower(strings.TrimSpace(r))
	if r == "customer-user" {
		return RoleCustomer
	}
	return r
}

// normalizeEmail checks an e-mail address and returns it in lower case.
func normalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 || !strings.Contains(s, "@") {
		return "", &fielderr.Error{Field: "email", Msg: fmt.Sprintf("%q is not an e-mail address", s)}
	}
	return strings.ToLower(s), nil
}

// CheckPassword checks a new password's length.
func CheckPassword(pw string) error {
	if utf8.RuneCountInString(pw) < MinPassword || len(pw) > MaxPassword {
		return &fielderr.Error{Field: "password", Msg: fmt.Sprintf("must be %d to %d bytes long", MinPassword, MaxPassword)}
	}
	return nil
}

// GeneratePassword returns a random password of 20 characters (100 bits), for a new user to change.
func GeneratePassword() (string, error) {
	b := make([]byte, 13)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:20], nil
}

// Create adds a user. Its e-mail address is unique (409 on a second one); a customer user names an existing
// customer, staff none.
func (s *Store) Create(ctx context.Context, in NewUser) (*User, error) {
	email, err := normalizeEmail(in.Email)
	if err != nil {
		return nil, err
	}
	role := NormalizeRole(in.Role)
	switch role {
	case RoleOperator, RoleExpert:
		if in.CustomerID != "" {
			return nil, &fielderr.Error{Field: "customer_id", Msg: "only customer users name a customer"}
		}
	case RoleCustomer:
		if in.CustomerID == "" {
			return nil, &fielderr.Error{Field: "customer_id", Msg: "is required for a customer user"}
		}
	default:
		return nil, &fielderr.Error{Field: "role", Msg: fmt.Sprintf("%q is not a role (operator, expert or customer)", in.Role)}
	}
	if err := CheckPassword(in.Password); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(in.Password), s.cost())
	if err != nil {
		return nil, err
	}
	u := &User{ID: msgid.Random(10), Email: email, Role: role, CustomerID: in.CustomerID, CreatedAt: store.Time(store.Millis(s.now()))}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if role == RoleCustomer {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM customers WHERE id = ?`, in.CustomerID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return &fielderr.Error{Field: "customer_id", Msg: fmt.Sprintf("no customer %q", in.CustomerID)}
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM portal_users WHERE email = ?`, email).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return &fielderr.Error{Field: "email", Msg: fmt.Sprintf("a portal user %s exists already", email), Conflict: true}
		}
		now := store.Millis(u.CreatedAt)
		_, err := tx.ExecContext(ctx, `INSERT INTO portal_users (id, email, role, customer_id, password_hash, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, u.ID, email, role, nullable(in.CustomerID), string(hash), now, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

const userColumns = `u.id, u.email, u.role, COALESCE(u.customer_id, ''), u.totp_secret != '', u.created_at`

func scanUser(r interface{ Scan(...any) error }, extra ...any) (*User, error) {
	var u User
	var created int64
	if err := r.Scan(append([]any{&u.ID, &u.Email, &u.Role, &u.CustomerID, &u.TOTP, &created}, extra...)...); err != nil {
		return nil, err
	}
	u.CreatedAt = store.Time(created)
	return &u, nil
}

// List returns the users, by e-mail address: all of them for customerID "", else that customer's only.
func (s *Store) List(ctx context.Context, customerID string) ([]User, error) {
	q, args := `SELECT `+userColumns+` FROM portal_users u`, []any{}
	if customerID != "" {
		q, args = q+` WHERE u.customer_id = ?`, append(args, customerID)
	}
	rows, err := s.DB.R.QueryContext(ctx, q+` ORDER BY u.email`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *u)
	}
	return out, rows.Err()
}

// Get returns one user.
func (s *Store) Get(ctx context.Context, id string) (*User, error) {
	u, err := scanUser(s.DB.R.QueryRowContext(ctx, `SELECT `+userColumns+` FROM portal_users u WHERE u.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return u, err
}

// Delete removes a user and its sessions.
func (s *Store) Delete(ctx context.Context, id string) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM portal_users WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// SetPassword changes a user's password and ends all its sessions but keep (the session changing it; ""
// for none).
func (s *Store) SetPassword(ctx context.Context, id, password, keep string) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost())
	if err != nil {
		return err
	}
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE portal_users SET password_hash = ?, updated_at = ? WHERE id = ?`,
			string(hash), store.Millis(s.now()), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM portal_sessions WHERE user_id = ? AND id != ?`, id, keep)
		return err
	})
}

// dummyHash is compared against when the e-mail address is unknown, so that a login takes as long whether
// the account exists or not.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("easymail-no-such-user"), bcrypt.DefaultCost)

// Login checks an e-mail address, a password and, for a user with a second factor, a TOTP code, and returns
// the user. A customer's user is refused while the customer's portal is not enabled.
func (s *Store) Login(ctx context.Context, email, password, code string) (*User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	var hash, secret string
	var step int64
	var enabled bool
	u, err := scanUser(s.DB.R.QueryRowContext(ctx, `SELECT `+userColumns+`, u.password_hash, u.totp_secret, u.totp_step,
		COALESCE(c.portal_enabled, 0) FROM portal_users u LEFT JOIN customers c ON c.id = u.customer_id WHERE u.email = ?`, email),
		&hash, &secret, &step, &enabled)
	if errors.Is(err, sql.ErrNoRows) {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return nil, ErrBadCredentials
	}
	if secret != "" {
		secret, plain, err := s.openSecret(u.ID, secret)
		if err != nil {
			return nil, err
		}
		matched, ok := verifyTOTP(secret, code, s.now(), step)
		if !ok {
			return nil, ErrCodeRequired
		}
		if err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
			// The step only moves forward: of two concurrent logins with one code, one wins.
			res, err := tx.ExecContext(ctx, `UPDATE portal_users SET totp_step = ? WHERE id = ? AND totp_step < ?`, matched, u.ID, matched)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return ErrCodeRequired
			}
			if plain && s.Secrets != nil {
				// A secret stored plain before encryption at rest is sealed on its first use.
				sealed, err := s.Secrets.SealTOTP(u.ID, secret)
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE portal_users SET totp_secret = ? WHERE id = ?`, sealed, u.ID); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if u.Role == RoleCustomer && !enabled {
		return nil, ErrPortalDisabled
	}
	return u, nil
}

// EnableTOTP turns the second factor on with secret, once code proves the user's app has it.
func (s *Store) EnableTOTP(ctx context.Context, id, secret, code string) error {
	step, ok := verifyTOTP(secret, code, s.now(), 0)
	if !ok {
		return &fielderr.Error{Field: "code", Msg: "is not the current code of this secret"}
	}
	if s.Secrets == nil {
		return errors.New("portal: no master key to encrypt the TOTP secret")
	}
	sealed, err := s.Secrets.SealTOTP(id, secret)
	if err != nil {
		return err
	}
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE portal_users SET totp_secret = ?, totp_step = ?, updated_at = ? WHERE id = ?`,
			sealed, step, store.Millis(s.now()), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// DisableTOTP turns the second factor off.
func (s *Store) DisableTOTP(ctx context.Context, id string) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE portal_users SET totp_secret = '', totp_step = 0, updated_at = ? WHERE id = ?`,
			store.Millis(s.now()), id)
		return err
	})
}

// hashSecret is the stored form of a session secret.
func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}
