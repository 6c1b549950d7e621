package account

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"time"

	"easymail/internal/store"
)

// Session is a logged-in user's session.
type Session struct {
	// ID is the stored form of the cookie's secret.
	ID string
	// CSRF is the token every change request of the session carries.
	CSRF      string
	User      User
	ExpiresAt time.Time
}

// touchEvery is how stale last_seen may get before a request updates it: not every request writes.
const touchEvery = time.Minute

// RandomToken returns 32 random bytes in URL-safe base64.
func RandomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NewSession starts a session of user that ends after lifetime, and returns the cookie's secret with it.
func (s *Store) NewSession(ctx context.Context, u *User, lifetime time.Duration) (string, *Session, error) {
	secret, err := RandomToken()
	if err != nil {
		return "", nil, err
	}
	csrf, err := RandomToken()
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	sess := &Session{ID: hashSecret(secret), CSRF: csrf, User: *u, ExpiresAt: now.Add(lifetime)}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		// Ended sessions are removed as new ones start.
		if _, err := tx.ExecContext(ctx, `DELETE FROM portal_sessions WHERE user_id = ? AND expires_at <= ?`, u.ID, store.Millis(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO portal_sessions (id, user_id, csrf, created_at, expires_at, last_seen)
			VALUES (?, ?, ?, ?, ?, ?)`, sess.ID, u.ID, csrf, store.Millis(now), store.Millis(sess.ExpiresAt), store.Millis(now))
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return secret, sess, nil
}

// Session returns the session of a cookie's secret, if it has not expired nor been idle for longer than idle,
// and its user may still log in (a customer's user, while its customer's portal is enabled).
func (s *Store) Session(ctx context.Context, secret string, idle time.Duration) (*Session, error) {
	if secret == "" {
		return nil, ErrNoSession
	}
	id := hashSecret(secret)
	var sess Session
	var expires, seen int64
	var enabled bool
	u, err := scanUser(s.DB.R.QueryRowContext(ctx, `SELECT `+userColumns+`, s.csrf, s.expires_at, s.last_seen,
		COALESCE(c.portal_enabled, 0) FROM portal_sessions s JOIN portal_users u ON u.id = s.user_id
		LEFT JOIN customers c ON c.id = u.customer_id WHERE s.id = ?`, id), &sess.CSRF, &expires, &seen, &enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(store.Time(expires)) || now.Sub(store.Time(seen)) >= idle || (u.Role == RoleCustomer && !enabled) {
		return nil, ErrNoSession
	}
	if now.Sub(store.Time(seen)) >= touchEvery {
		err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE portal_sessions SET last_seen = ? WHERE id = ?`, store.Millis(now), id)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	sess.ID, sess.User, sess.ExpiresAt = id, *u, store.Time(expires)
	return &sess, nil
}

// EndSession ends the session of a cookie's secret (logout).
func (s *Store) EndSession(ctx context.Context, secret string) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM portal_sessions WHERE id = ?`, hashSecret(secret))
		return err
	})
}

// EndAll ends every session of a user (logout everywhere); it returns how many there were.
func (s *Store) EndAll(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM portal_sessions WHERE user_id = ?`, userID)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}
