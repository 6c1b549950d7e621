package dkimsign

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"easymail/internal/config"
)

// otherMasterKeyText is a second fixed master key.
const otherMasterKeyText = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func otherMasterKey(t testing.TB) *MasterKey {
	t.Helper()
	mk, err := ParseMasterKey(otherMasterKeyText, "other")
	if err != nil {
		t.Fatal(err)
	}
	return mk
}

// storedKeys returns the private_key column of every key, by selector.
func (f *fixture) storedKeys(t testing.TB) map[string]string {
	t.Helper()
	rows, err := f.db.R.Query(`SELECT selector, private_key FROM dkim_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var sel, priv string
		if err := rows.Scan(&sel, &priv); err != nil {
			t.Fatal(err)
		}
		out[sel] = priv
	}
	return out
}

// assertSigns checks that a manager with mk loads acme.test's key and signs verifiably with it.
func (f *fixture) assertSigns(t *testing.T, mk *MasterKey, id string) {
	t.Helper()
	o := f.m.o
	o.MasterKey, o.Registerer = mk, nil
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.m = m
	signed, _ := f.sign(t, id, "alice@acme.test", testMsg)
	if vs := f.verify(t, signed); len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("verifications %+v\n%s", vs, signed)
	}
}

func TestPrivateKeysEncryptedAtRest(t *testing.T) {
	f := newFixture(t, nil)
	id := f.customer(t, "Acme", "acme.test")
	f.publish(f.key(t, "acme.test", StateActive, RSA))
	mk := testMasterKey(t)
	for sel, priv := range f.storedKeys(t) {
		if !strings.HasPrefix(priv, "enc1:"+mk.ID()+":") || strings.Contains(priv, "PRIVATE KEY") {
			t.Fatalf("key %s stored as %.60q", sel, priv)
		}
	}
	if n, err := EncryptAtRest(context.Background(), f.db, mk); err != nil || n != 0 {
		t.Fatalf("EncryptAtRest on encrypted keys: %d %v", n, err)
	}
	f.assertSigns(t, mk, id)
}

// TestEncryptAtRestMigratesPlainKeys: a key stored as plain PEM (before encryption at rest) is encrypted
// at start and signs as before.
func TestEncryptAtRestMigratesPlainKeys(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	id := f.customer(t, "Acme", "acme.test")
	k := f.key(t, "acme.test", StateActive, RSA)
	f.publish(k)
	mk := testMasterKey(t)
	var rowID, sealed string
	if err := f.db.R.QueryRow(`SELECT id, private_key FROM dkim_keys WHERE selector = ?`, k.Selector).Scan(&rowID, &sealed); err != nil {
		t.Fatal(err)
	}
	plain, err := mk.open(rowID, sealed)
	if err != nil {
		t.Fatal(err)
	}
	f.exec(t, `UPDATE dkim_keys SET private_key = ? WHERE id = ?`, plain, rowID)

	n, err := EncryptAtRest(ctx, f.db, mk)
	if err != nil || n != 1 {
		t.Fatalf("EncryptAtRest: %d %v", n, err)
	}
	if priv := f.storedKeys(t)[k.Selector]; !strings.HasPrefix(priv, "enc1:") || strings.Contains(priv, "PRIVATE KEY") {
		t.Fatalf("after migration: %.60q", priv)
	}
	f.assertSigns(t, mk, id)
}

// TestWrongMasterKey: keys encrypted by another master key stop the start with an error naming both keys;
// a ciphertext moved to another key's row does not decrypt.
func TestWrongMasterKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.customer(t, "Acme", "acme.test", "beta.test")
	mk, other := testMasterKey(t), otherMasterKey(t)
	_, err := EncryptAtRest(ctx, f.db, other)
	if err == nil || !strings.Contains(err.Error(), "another master key than "+other.ID()) || !strings.Contains(err.Error(), mk.ID()) ||
		!strings.Contains(err.Error(), "acme.test/") {
		t.Fatalf("EncryptAtRest with another master key: %v", err)
	}
	// Swap two keys' ciphertexts: the AEAD binds each to its row.
	keys := f.storedKeys(t)
	a, b := f.key(t, "acme.test", StateActive, RSA).Selector, f.key(t, "beta.test", StateActive, RSA).Selector
	f.exec(t, `UPDATE dkim_keys SET private_key = ? WHERE domain = 'acme.test' AND selector = ?`, keys[b], a)
	if _, err := EncryptAtRest(ctx, f.db, mk); err == nil || !strings.Contains(err.Error(), "do not decrypt") {
		t.Fatalf("EncryptAtRest with a moved ciphertext: %v", err)
	}
}

func TestRekey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	id := f.customer(t, "Acme", "acme.test")
	f.publish(f.key(t, "acme.test", StateActive, RSA))
	mk, other := testMasterKey(t), otherMasterKey(t)
	if err := f.m.AddEd25519(ctx, "acme.test"); err != nil {
		t.Fatal(err)
	}
	// From the wrong key: refused, nothing changed.
	before := f.storedKeys(t)
	if _, err := Rekey(ctx, f.db, other, mk); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Rekey from the wrong key: %v", err)
	}
	if after := f.storedKeys(t); len(after) != len(before) || after[f.key(t, "acme.test", StateActive, RSA).Selector] !=
		before[f.key(t, "acme.test", StateActive, RSA).Selector] {
		t.Fatal("a failed rekey changed keys")
	}
	// A portal user's TOTP secret, sealed by the same master key, is re-encrypted with the keys.
	sealedTOTP, err := mk.SealTOTP("U1", "JBSWY3DPEHPK3PXP")
	if err != nil {
		t.Fatal(err)
	}
	f.exec(t, `INSERT INTO portal_users (id, email, role, password_hash, totp_secret, created_at, updated_at)
		VALUES ('U1', 'op@x.test', 'operator', 'x', ?, 0, 0)`, sealedTOTP)
	n, err := Rekey(ctx, f.db, mk, other)
	if err != nil || n != 2 {
		t.Fatalf("Rekey: %d %v", n, err)
	}
	var stored string
	if err := f.db.R.QueryRow(`SELECT totp_secret FROM portal_users WHERE id = 'U1'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if secret, err := other.OpenTOTP("U1", stored); err != nil || secret != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("TOTP secret after rekey: %q %v", secret, err)
	}
	for sel, priv := range f.storedKeys(t) {
		if !strings.HasPrefix(priv, "enc1:"+other.ID()+":") {
			t.Fatalf("key %s after rekey: %.40q", sel, priv)
		}
	}
	if _, err := EncryptAtRest(ctx, f.db, mk); !strings.Contains(fmtErr(err), "another master key") {
		t.Fatalf("old master key after rekey: %v", err)
	}
	if _, err := EncryptAtRest(ctx, f.db, other); err != nil {
		t.Fatal(err)
	}
	f.assertSigns(t, other, id)
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestOpenMasterKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	noEnv := func(string) string { return "" }
	// First start: made, mode 0600; the next start reads the same key.
	mk, err := OpenMasterKey(ctx, f.db, &cfg, noEnv, true)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, "dkim.key")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || mk.Source() != path {
		t.Fatalf("key file %v %v, source %s", fi, err, mk.Source())
	}
	again, err := OpenMasterKey(ctx, f.db, &cfg, noEnv, true)
	if err != nil || again.ID() != mk.ID() {
		t.Fatalf("second open: %v %v", again, err)
	}
	// Readable by others: refused.
	os.Chmod(path, 0o644)
	if _, err := OpenMasterKey(ctx, f.db, &cfg, noEnv, true); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("mode 0644: %v", err)
	}
	os.Chmod(path, 0o600)
	// The environment wins over the file.
	env := func(k string) string {
		if k == MasterKeyEnv {
			return otherMasterKeyText
		}
		return ""
	}
	if k, err := OpenMasterKey(ctx, f.db, &cfg, env, true); err != nil || k.ID() != otherMasterKey(t).ID() || k.Source() != MasterKeyEnv {
		t.Fatalf("from %s: %v %v", MasterKeyEnv, k, err)
	}
	if _, err := ParseMasterKey("c2hvcnQ=", "x"); err == nil {
		t.Fatal("a short master key accepted")
	}
	// Keys encrypted, key file gone: no new key is made, the error says to restore it.
	f.customer(t, "Acme", "acme.test")
	os.Remove(path)
	_, err = OpenMasterKey(ctx, f.db, &cfg, noEnv, true)
	if err == nil || !strings.Contains(err.Error(), "restore that file") || !strings.Contains(err.Error(), testMasterKey(t).ID()) {
		t.Fatalf("missing key file with encrypted keys: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a new key file was made over encrypted keys: %v", err)
	}
}
