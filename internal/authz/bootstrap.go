package authz

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"easymail/internal/msgid"
	"easymail/internal/store"
)

// AdminTokenFile is the name, in the data directory, of the file holding the generated operator token.
const AdminTokenFile = "admin.token"

// AdminTokenName is the name given to the bootstrap operator token.
const AdminTokenName = "admin"

// Bootstrap makes sure an operator can log in. When envToken (EASYMAIL_ADMIN_TOKEN) is set, it is stored as
// an operator token unless already there; it is an error if that token exists revoked or with another role.
// Otherwise, when no valid operator token exists, a new one is generated and written to
// dataDir/admin.token (mode 0600) before it is stored, so that a crash cannot leave a token nobody knows.
func Bootstrap(ctx context.Context, db *store.DB, dataDir, envToken string) error {
	if envToken != "" {
		return bootstrapEnv(ctx, db, envToken)
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

func bootstrapEnv(ctx context.Context, db *store.DB, envToken string) error {
	hash := Hash(envToken)
	return db.Tx(ctx, func(tx *sql.Tx) error {
		var role string
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT role, revoked_at FROM api_tokens WHERE hash = ?`, hash).Scan(&role, &revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return insert(ctx, tx, Token{ID: msgid.Random(10), Role: RoleOperator, Name: AdminTokenName}, hash, store.Now())
		case err != nil:
			return err
		case revoked.Valid:
			return errors.New("EASYMAIL_ADMIN_TOKEN names a revoked token; set another value")
		case role != RoleOperator:
			return fmt.Errorf("EASYMAIL_ADMIN_TOKEN names a %s token, not an operator token; set another value", role)
		}
		return nil
	})
}

// writeTokenFile writes secret to path with mode 0600: into a new temporary file (created exclusively),
// synced, then renamed over path (replacing a stale file from an earlier database), and the directory
// synced.
func writeTokenFile(path, secret string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".admin-*.tmp") // O_CREATE|O_EXCL, mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.WriteString(secret + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
