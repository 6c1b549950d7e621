package authz

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"easymail/internal/fielderr"
	"easymail/internal/msgid"
	"easymail/internal/store"
)

// TokenPrefix starts every generated token, so that a leaked one is easy to recognise.
const TokenPrefix = "em_"

// ErrUnauthenticated is returned by Authenticate for an unknown or revoked token.
var ErrUnauthenticated = errors.New("invalid or revoked API token")

// ErrNotFound is returned by Revoke for an unknown token id.
var ErrNotFound = errors.New("no such token")

// ErrLastOperator is returned by Revoke for the last valid operator token: without it, nobody could
// administer the installation.
var ErrLastOperator = errors.New("this is the last valid operator token; create another one first")

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newSecret returns a new token: the prefix and 32 random bytes in lower-case base32.
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return TokenPrefix + strings.ToLower(tokenEncoding.EncodeToString(b)), nil
}

// Hash returns the stored form of a token: the hex SHA-256 of its text.
func Hash(plaintext string) string {
	h := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(h[:])
}

const maxTokenName = 100

// Create makes a new token for role (for the customer role, bound to customerID, which must exist) and
// returns its secret, shown this once, with the stored token.
func Create(ctx context.Context, db *store.DB, role Role, customerID, name string) (string, Token, error) {
	switch role {
	case RoleOperator, RoleExpert:
		if customerID != "" {
			return "", Token{}, &fielderr.Error{Field: "customer_id", Msg: "only customer tokens name a customer"}
		}
	case RoleCustomer:
		if customerID == "" {
			return "", Token{}, &fielderr.Error{Field: "customer_id", Msg: "is required for a customer token"}
		}
	case "":
		return "", Token{}, &fielderr.Error{Field: "role", Msg: "is required (operator, expert or customer)"}
	default:
		return "", Token{}, &fielderr.Error{Field: "role", Msg: fmt.Sprintf("%q is not a role (operator, expert or customer)", role)}
	}
	name = strings.TrimSpace(name)
	if len(name) > maxTokenName || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", Token{}, &fielderr.Error{Field: "name", Msg: fmt.Sprintf("must be at most %d printable characters", maxTokenName)}
	}
	secret, err := newSecret()
	if err != nil {
		return "", Token{}, err
	}
	t := Token{ID: msgid.Random(10), Role: role, CustomerID: customerID, Name: name}
	now := store.Now()
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		if customerID != "" {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM customers WHERE id = ?`, customerID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return &fielderr.Error{Field: "customer_id", Msg: fmt.Sprintf("no customer %q", customerID)}
			}
			if err != nil {
				return err
			}
		}
		return insert(ctx, tx, t, Hash(secret), now)
	})
	if err != nil {
		return "", Token{}, err
	}
	t.CreatedAt = store.Time(now)
	return secret, t, nil
}

func insert(ctx context.Context, tx *sql.Tx, t Token, hash string, now int64) error {
	var cust any
	if t.CustomerID != "" {
		cust = t.CustomerID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (id, hash, role, customer_id, name, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, hash, t.Role, cust, t.Name, now)
	return err
}

// List returns every token, revoked ones included, oldest first.
func List(ctx context.Context, db *store.DB) ([]Token, error) {
	rows, err := db.R.QueryContext(ctx, `SELECT id, role, customer_id, name, created_at, revoked_at FROM api_tokens
		ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		var t Token
		var cust sql.NullString
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Role, &cust, &t.Name, &created, &revoked); err != nil {
			return nil, err
		}
		t.CustomerID = cust.String
		t.CreatedAt = store.Time(created)
		if revoked.Valid {
			r := store.Time(revoked.Int64)
			t.RevokedAt = &r
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Revoke revokes a token. Revoking a revoked token does nothing; the last valid operator token cannot be
// revoked (ErrLastOperator).
func Revoke(ctx context.Context, db *store.DB, id string) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		var role string
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT role, revoked_at FROM api_tokens WHERE id = ?`, id).Scan(&role, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if revoked.Valid {
			return nil
		}
		if role == RoleOperator {
			var others int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_tokens WHERE role = ? AND revoked_at IS NULL AND id <> ?`,
				RoleOperator, id).Scan(&others); err != nil {
				return err
			}
			if others == 0 {
				return ErrLastOperator
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ?`, store.Now(), id)
		return err
	})
}

// Authenticate returns the principal of a token given as plaintext, or ErrUnauthenticated.
func Authenticate(ctx context.Context, db *store.DB, plaintext string) (Principal, error) {
	if plaintext == "" {
		return Principal{}, ErrUnauthenticated
	}
	var p Principal
	var cust sql.NullString
	var revoked sql.NullInt64
	err := db.R.QueryRowContext(ctx, `SELECT id, role, customer_id, revoked_at FROM api_tokens WHERE hash = ?`,
		Hash(plaintext)).Scan(&p.TokenID, &p.Role, &cust, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	if revoked.Valid {
		return Principal{}, ErrUnauthenticated
	}
	p.CustomerID = cust.String
	if p.Role == RoleCustomer && p.CustomerID == "" {
		return Principal{}, ErrUnauthenticated
	}
	return p, nil
}

// RevokeCustomerTokens revokes, inside tx, every token of the customer not yet revoked, as of at; the
// customer's deletion and removal call it in their transaction.
func RevokeCustomerTokens(ctx context.Context, tx *sql.Tx, customerID string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE customer_id = ? AND revoked_at IS NULL`,
		store.Millis(at), customerID)
	return err
}
