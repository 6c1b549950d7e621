package authz

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"easymail/internal/fielderr"
	"easymail/internal/store"
)

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func addCustomer(t *testing.T, db *store.DB, id string) {
	t.Helper()
	err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO customers (id, name, contact_email, pool, status, created_at, updated_at)
			VALUES (?, 'x', 'x@x.example', 'default', 'pending', 0, 0)`, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	addCustomer(t, db, "C1")

	op, opTok, err := Create(ctx, db, RoleOperator, "", "ops")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(op, TokenPrefix) || len(op) < 50 {
		t.Fatalf("token %q", op)
	}
	cu, cuTok, err := Create(ctx, db, RoleCustomer, "C1", "portal")
	if err != nil {
		t.Fatal(err)
	}
	// Only the hash is stored.
	var n int
	if err := db.R.QueryRow(`SELECT COUNT(*) FROM api_tokens WHERE hash = ? OR hash = ?`, op, cu).Scan(&n); err != nil || n != 0 {
		t.Fatalf("plaintext stored: %d %v", n, err)
	}

	p, err := Authenticate(ctx, db, op)
	if err != nil || p.Role != RoleOperator || p.TokenID != opTok.ID || !p.CanWrite() || !p.CanRead("anything") {
		t.Fatalf("operator principal %+v %v", p, err)
	}
	p, err = Authenticate(ctx, db, cu)
	if err != nil || p.Role != RoleCustomer || p.CustomerID != "C1" || p.CanWrite() || !p.CanRead("C1") || p.CanRead("C2") {
		t.Fatalf("customer principal %+v %v", p, err)
	}
	if id, ok := p.Scoped(); !ok || id != "C1" {
		t.Fatalf("Scoped = %q %v", id, ok)
	}
	for _, bad := range []string{"", "em_nope", op + "x"} {
		if _, err := Authenticate(ctx, db, bad); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v", bad, err)
		}
	}

	// Both tokens share a creation instant, so the order between them is the
	// random ids' order: look each up by id rather than by position.
	list, err := List(ctx, db)
	if err != nil || len(list) != 2 {
		t.Fatalf("list %+v %v", list, err)
	}
	byID := map[string]Token{}
	for _, tok := range list {
		byID[tok.ID] = tok
	}
	if got, ok := byID[opTok.ID]; !ok || got.Role != RoleOperator || got.Name != "ops" {
		t.Fatalf("operator token in list %+v", list)
	}
	if got, ok := byID[cuTok.ID]; !ok || got.CustomerID != "C1" || got.Name != "portal" {
		t.Fatalf("customer token in list %+v", list)
	}

	if err := Revoke(ctx, db, cuTok.ID); err != nil {
		t.Fatal(err)
	}
	if err := Revoke(ctx, db, cuTok.ID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := Authenticate(ctx, db, cu); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked token authenticates: %v", err)
	}
	if err := Revoke(ctx, db, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown revoke: %v", err)
	}
	if err := Revoke(ctx, db, opTok.ID); !errors.Is(err, ErrLastOperator) {
		t.Fatalf("revoking the last operator token: %v", err)
	}
	_, op2, err := Create(ctx, db, RoleOperator, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := Revoke(ctx, db, opTok.ID); err != nil {
		t.Fatal(err)
	}
	if err := Revoke(ctx, db, op2.ID); !errors.Is(err, ErrLastOperator) {
		t.Fatalf("revoking the new last operator token: %v", err)
	}
	list, _ = List(ctx, db)
	if list[0].RevokedAt == nil || list[2].RevokedAt != nil {
		t.Fatalf("revocation times %+v", list)
	}
}

func TestCreateValidation(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	addCustomer(t, db, "C1")
	for _, c := range []struct {
		role, cust, name, field string
	}{
		{"", "", "", "role"},
		{"admin", "", "", "role"},
		{RoleCustomer, "", "", "customer_id"},
		{RoleCustomer, "C9", "", "customer_id"},
		{RoleExpert, "C1", "", "customer_id"},
		{RoleOperator, "", strings.Repeat("n", 101), "name"},
		{RoleOperator, "", "a\nb", "name"},
	} {
		_, _, err := Create(ctx, db, c.role, c.cust, c.name)
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Create(%q, %q, %q) = %v, want a field error on %s", c.role, c.cust, c.name, err, c.field)
		}
	}
}

func TestBootstrapGenerates(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	dir := filepath.Join(t.TempDir(), "data")
	if err := Bootstrap(ctx, db, dir, "", nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, AdminTokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	b, _ := os.ReadFile(path)
	tok := strings.TrimSpace(string(b))
	p, err := Authenticate(ctx, db, tok)
	if err != nil || p.Role != RoleOperator {
		t.Fatalf("bootstrap token: %+v %v", p, err)
	}
	// A second start changes nothing.
	if err := Bootstrap(ctx, db, dir, "", nil); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(path)
	if string(b2) != string(b) {
		t.Fatal("admin.token rewritten on restart")
	}
	list, _ := List(ctx, db)
	if len(list) != 1 || list[0].Name != AdminTokenName {
		t.Fatalf("tokens %+v", list)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("stray files in the data dir: %v", entries)
	}
}

// Strong test values of EASYMAIL_ADMIN_TOKEN (fixed, so that no test depends on chance).
const (
	envOne = "7f3a9c2e81d64b05e9a7c3f1208d6b4e"
	envTwo = "Qm4xT8vZr2LpK9wNc6Hj3YsB5dFg7aUe"
)

func TestBootstrapEnv(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	dir := t.TempDir()
	if err := Bootstrap(ctx, db, dir, envOne, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, AdminTokenFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("admin.token written with EASYMAIL_ADMIN_TOKEN set: %v", err)
	}
	if p, err := Authenticate(ctx, db, envOne); err != nil || p.Role != RoleOperator {
		t.Fatalf("env token: %+v %v", p, err)
	}
	// Restart with the same value: nothing added, nothing revoked.
	if err := Bootstrap(ctx, db, dir, envOne, nil); err != nil {
		t.Fatal(err)
	}
	if list, _ := List(ctx, db); len(list) != 1 || list[0].RevokedAt != nil || list[0].Name != AdminTokenEnv {
		t.Fatalf("tokens after a restart with the same value %+v", list)
	}
	// A token made through the API is not the environment's: a new value leaves it alone.
	other, _, err := Create(ctx, db, RoleOperator, "", "ops")
	if err != nil {
		t.Fatal(err)
	}
	// Restart with a new value: it is added and the old one revoked.
	if err := Bootstrap(ctx, db, dir, envTwo, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Authenticate(ctx, db, envOne); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("the previous EASYMAIL_ADMIN_TOKEN still authenticates: %v", err)
	}
	for _, tok := range []string{envTwo, other} {
		if p, err := Authenticate(ctx, db, tok); err != nil || p.Role != RoleOperator {
			t.Fatalf("token %q after the change: %+v %v", tok[:4], p, err)
		}
	}
	// Going back to the first value: it was revoked, so the start fails.
	if err := Bootstrap(ctx, db, dir, envOne, nil); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked EASYMAIL_ADMIN_TOKEN: %v", err)
	}
	// Without the env var, an operator token exists: nothing is generated.
	if err := Bootstrap(ctx, db, dir, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, AdminTokenFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("admin.token generated although an operator token exists: %v", err)
	}
}

// TestBootstrapEnvWeak: obviously weak values are refused at start with an error naming the variable, and
// nothing is stored.
func TestBootstrapEnvWeak(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	for _, c := range []struct{ token, why string }{
		{"admin", "5 characters long"},
		{"secret-one", "10 characters long"},
		{strings.Repeat("a", 40), "one character repeated"},
		{strings.Repeat("abc123", 6), "only 6 different characters"},
		{strings.Repeat("admin-tok", 4), "repeats itself"},
		{"test-admin-token-test-admin-token", "repeats itself"},
		{"abcdefghijklmnopqrstuvwxyz0123456789", "mostly a sequence"},
	} {
		err := Bootstrap(ctx, db, t.TempDir(), c.token, nil)
		if err == nil || !strings.Contains(err.Error(), AdminTokenEnv) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("Bootstrap(%q) = %v, want an error naming %s and saying %q", c.token, err, AdminTokenEnv, c.why)
		}
	}
	if list, _ := List(ctx, db); len(list) != 0 {
		t.Fatalf("weak tokens stored: %+v", list)
	}
	for _, ok := range []string{envOne, envTwo, "em_k2n7q4zr8w3m5t9v6b1c0d8f4g2h7j5p3s6"} {
		if err := CheckStrength(AdminTokenEnv, ok); err != nil {
			t.Errorf("CheckStrength(%q) = %v", ok, err)
		}
	}
}

// TestBootstrapEnvLegacy: tokens stored before environment tokens were marked (all named "admin") are told
// apart at the next start with a new value: the generated one (its secret in admin.token) stays, an earlier
// environment token is revoked.
func TestBootstrapEnvLegacy(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	dir := t.TempDir()
	if err := Bootstrap(ctx, db, dir, "", nil); err != nil { // the generated admin.token
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, AdminTokenFile))
	generated := strings.TrimSpace(string(b))
	// An environment token as the versions before 0016 stored it: named "admin", unmarked.
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if err := insert(ctx, tx, Token{ID: "legacyenv1", Role: RoleOperator, Name: AdminTokenName}, Hash("admin"), store.Now()); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE api_tokens SET from_env = NULL WHERE name = ?`, AdminTokenName)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Bootstrap(ctx, db, dir, envOne, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Authenticate(ctx, db, "admin"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("the earlier environment token still authenticates: %v", err)
	}
	for _, tok := range []string{generated, envOne} {
		if _, err := Authenticate(ctx, db, tok); err != nil {
			t.Fatalf("token %q: %v", tok[:4], err)
		}
	}
}

func TestBootstrapReplacesStaleFile(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	dir := t.TempDir()
	path := filepath.Join(dir, AdminTokenFile)
	if err := os.WriteFile(path, []byte("em_stale\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Bootstrap(ctx, db, dir, "", nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if _, err := Authenticate(ctx, db, strings.TrimSpace(string(b))); err != nil {
		t.Fatalf("new admin.token does not authenticate: %v", err)
	}
}
