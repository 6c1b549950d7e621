package authz

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"easymail/internal/msgid"
	"easymail/internal/secretfile"
	"easymail/internal/store"
)

// AdminTokenFile is the name, in the data directory, of the file holding the generated operator token.
const AdminTokenFile = "admin.token"

// AdminTokenName is the name given to the bootstrap operator token.
const AdminTokenName = "admin"

// AdminTokenEnv is the environment variable that gives the operator token, and the name of the token
// stored from it.
const AdminTokenEnv = "EASYMAIL_ADMIN_TOKEN"

// Bootstrap makes sure an operator can log in. When envToken (EASYMAIL_ADMIN_TOKEN) is set, it must pass
// CheckStrength; it is stored as an operator token unless already there (an error if that token exists
// revoked or with another role), and the tokens of the variable's earlier values are revoked.
// Otherwise, when no valid operator token exists, a new one is generated and written to
// dataDir/admin.token (mode 0600) before it is stored, so that a crash cannot leave a token nobody knows.
// Revocations are logged to log (nil: not logged).
func Bootstrap(ctx context.Context, db *store.DB, dataDir, envToken string, log *slog.Logger) error {
	if envToken != "" {
		if err := CheckStrength(AdminTokenEnv, envToken); err != nil {
			return err
		}
		return bootstrapEnv(ctx, db, dataDir, envToken, log)
	}
	var n int
	if err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_tokens WHERE role = ? AND revoked_at IS NULL`,
		RoleOperator).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	secret, err := newSecret()
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, AdminTokenFile)
	if err := writeTokenFile(path, secret); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	t := Token{ID: msgid.Random(10), Role: RoleOperator, Name: AdminTokenName}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		// Another node may have bootstrapped meanwhile; then its token stands and ours is dropped.
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_tokens WHERE role = ? AND revoked_at IS NULL`,
			RoleOperator).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errRaced
		}
		return insert(ctx, tx, t, Hash(secret), store.Now())
	})
	if errors.Is(err, errRaced) {
		os.Remove(path)
		return nil
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

var errRaced = errors.New("an operator token appeared meanwhile")

func bootstrapEnv(ctx context.Context, db *store.DB, dataDir, envToken string, log *slog.Logger) error {
	hash := Hash(envToken)
	// The generated token's hash tells it apart from an earlier environment token among the rows stored
	// before tokens were marked (from_env NULL).
	var fileHash string
	if b, err := os.ReadFile(filepath.Join(dataDir, AdminTokenFile)); err == nil {
		fileHash = Hash(strings.TrimSpace(string(b)))
	}
	var revoked []string
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		revoked = nil
		var id, role string
		var revokedAt sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT id, role, revoked_at FROM api_tokens WHERE hash = ?`, hash).Scan(&id, &role, &revokedAt)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			id = msgid.Random(10)
			if err := insert(ctx, tx, Token{ID: id, Role: RoleOperator, Name: AdminTokenEnv}, hash, store.Now()); err != nil {
				return err
			}
		case err != nil:
			return err
		case revokedAt.Valid:
			return errors.New(AdminTokenEnv + " names a revoked token; set another value")
		case role != RoleOperator:
			return fmt.Errorf("%s names a %s token, not an operator token; set another value", AdminTokenEnv, role)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE api_tokens SET from_env = 1 WHERE id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE api_tokens SET from_env = CASE WHEN hash = ? THEN 0 ELSE 1 END
			WHERE from_env IS NULL`, fileHash); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM api_tokens WHERE from_env = 1 AND revoked_at IS NULL AND id <> ?
			ORDER BY created_at, id`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var old string
			if err := rows.Scan(&old); err != nil {
				rows.Close()
				return err
			}
			revoked = append(revoked, old)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE from_env = 1 AND revoked_at IS NULL AND id <> ?`,
			store.Now(), id)
		return err
	})
	if err == nil && log != nil {
		for _, old := range revoked {
			log.Warn("api token of an earlier "+AdminTokenEnv+" value revoked", "token_id", old)
		}
	}
	return err
}

// writeTokenFile writes secret to path with mode 0600, replacing a stale file from an earlier database
// (secretfile.Replace).
func writeTokenFile(path, secret string) error {
	return secretfile.Replace(path, []byte(secret+"\n"))
}
