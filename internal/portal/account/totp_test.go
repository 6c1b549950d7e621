package account

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"easymail/internal/dkimsign"
)

// masterKey is a new master key, as the node's DKIM one.
func masterKey(t *testing.T) *dkimsign.MasterKey {
	t.Helper()
	text, err := dkimsign.NewMasterKeyText()
	if err != nil {
		t.Fatal(err)
	}
	mk, err := dkimsign.ParseMasterKey(text, "test")
	if err != nil {
		t.Fatal(err)
	}
	return mk
}

func storedSecret(t *testing.T, s *Store, id string) string {
	t.Helper()
	var v string
	if err := s.DB.R.QueryRow(`SELECT totp_secret FROM portal_users WHERE id = ?`, id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestTOTPSecretsEncrypted: an enabled secret is stored encrypted under the master key, bound to its user;
// secrets stored plain by an earlier version keep working and are sealed on first use or by
// SealTOTPSecrets; another master key cannot open them.
func TestTOTPSecretsEncrypted(t *testing.T) {
	ctx := context.Background()
	s, clk := openStore(t)
	const pw = "correct horse battery"
	var ids []string
	for _, e := range []string{"a@x.example", "b@x.example", "c@x.example"} {
		u, err := s.Create(ctx, NewUser{Email: e, Role: "operator", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	secret, _ := NewTOTPSecret()
	code, _ := TOTPCode(secret, clk.now())
	if err := s.EnableTOTP(ctx, ids[0], secret, code); err != nil {
		t.Fatal(err)
	}
	if v := storedSecret(t, s, ids[0]); v == secret || strings.Contains(v, secret) || !strings.HasPrefix(v, "enc1:") {
		t.Fatalf("stored TOTP secret %q (secret %q)", v, secret)
	}
	clk.add(30 * time.Second)
	code, _ = TOTPCode(secret, clk.now())
	if _, err := s.Login(ctx, "a@x.example", pw, code); err != nil {
		t.Fatalf("login with the sealed secret: %v", err)
	}
	// A sealed secret moved to another user's row does not open.
	sealedA := storedSecret(t, s, ids[0])
	setSecret(t, s, ids[2], sealedA)
	if _, err := s.Login(ctx, "c@x.example", pw, code); err == nil || errors.Is(err, ErrCodeRequired) {
		t.Fatalf("a secret moved to another row: %v", err)
	}

	// Plain secrets, as stored before: b's is sealed when b logs in, c's by SealTOTPSecrets.
	plainB, _ := NewTOTPSecret()
	plainC, _ := NewTOTPSecret()
	setSecret(t, s, ids[1], plainB)
	setSecret(t, s, ids[2], plainC)
	clk.add(30 * time.Second)
	codeB, _ := TOTPCode(plainB, clk.now())
	if _, err := s.Login(ctx, "b@x.example", pw, codeB); err != nil {
		t.Fatalf("login with a plain secret: %v", err)
	}
	if v := storedSecret(t, s, ids[1]); strings.Contains(v, plainB) || !strings.HasPrefix(v, "enc1:") {
		t.Fatalf("plain secret not sealed on use: %q", v)
	}
	if n, err := s.SealTOTPSecrets(ctx); n != 1 || err != nil {
		t.Fatalf("SealTOTPSecrets: %d %v", n, err)
	}
	if v := storedSecret(t, s, ids[2]); strings.Contains(v, plainC) || !strings.HasPrefix(v, "enc1:") {
		t.Fatalf("plain secret not sealed: %q", v)
	}
	if n, err := s.SealTOTPSecrets(ctx); n != 0 || err != nil {
		t.Fatalf("SealTOTPSecrets again: %d %v", n, err)
	}
	codeC, _ := TOTPCode(plainC, clk.now())
	if _, err := s.Login(ctx, "c@x.example", pw, codeC); err != nil {
		t.Fatalf("login after sealing: %v", err)
	}

	// Under another master key the secrets do not open: an error, not a login.
	other := *s
	other.Secrets = masterKey(t)
	clk.add(30 * time.Second)
	codeC, _ = TOTPCode(plainC, clk.now())
	if _, err := other.Login(ctx, "c@x.example", pw, codeC); !errors.Is(err, dkimsign.ErrWrongMasterKey) {
		t.Fatalf("login under another master key: %v", err)
	}
}

func setSecret(t *testing.T, s *Store, id, v string) {
	t.Helper()
	if err := s.DB.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE portal_users SET totp_secret = ?, totp_step = 0 WHERE id = ?`, v, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
