package dkimsign

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"easymail/internal/config"
	"easymail/internal/secretfile"
	"easymail/internal/store"
)

// MasterKeyEnv is the environment variable that may give the master key instead of dkim.key_file.
const MasterKeyEnv = "EASYMAIL_DKIM_KEY"

// sealedPrefix starts a private key encrypted by a master key: "enc1:<key id>:<base64 nonce+ciphertext>".
const sealedPrefix = "enc1:"

// MasterKey encrypts the DKIM private keys at rest (AES-256-GCM). It is kept outside the database: in a file
// (dkim.key_file, by default <data_dir>/dkim.key, made at first start) or in EASYMAIL_DKIM_KEY. Its text is
// the base64 of 32 random bytes; its id, recorded with every key it encrypts, is derived from it, so that a
// key encrypted by another master key is recognised as such.
type MasterKey struct {
	id     string
	source string
	aead   cipher.AEAD
}

// ErrWrongMasterKey is wrapped by the errors about keys encrypted by another master key.
var ErrWrongMasterKey = errors.New("encrypted with another master key")

// ParseMasterKey reads a master key's text; source names where it came from, for errors.
func ParseMasterKey(text, source string) (*MasterKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("dkim master key %s: not the base64 of 32 bytes (make one with `head -c 32 /dev/urandom | base64`)", source)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("easymail dkim master key\x00"), raw...))
	return &MasterKey{id: hex.EncodeToString(sum[:8]), source: source, aead: aead}, nil
}

// NewMasterKeyText returns the text of a new random master key.
func NewMasterKeyText() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// ID is the master key's id, recorded with the private keys it encrypts.
func (k *MasterKey) ID() string { return k.id }

// Source says where the master key came from: a file's path or MasterKeyEnv.
func (k *MasterKey) Source() string { return k.source }

// aad binds a sealed private key to its row, so that it cannot be moved to another key's row.
func aad(keyID string) []byte { return []byte("easymail dkim private key " + keyID) }

// seal encrypts the PEM of the private key of row keyID.
func (k *MasterKey) seal(keyID, pemText string) (string, error) {
	return k.sealAAD(aad(keyID), pemText)
}

// sealAAD encrypts plaintext bound to ad.
func (k *MasterKey) sealAAD(ad []byte, plaintext string) (string, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := k.aead.Seal(nonce, nonce, []byte(plaintext), ad)
	return sealedPrefix + k.id + ":" + base64.StdEncoding.EncodeToString(ct), nil
}

// open decrypts the stored private key of row keyID. A plain PEM key (stored before encryption) is refused.
func (k *MasterKey) open(keyID, stored string) (string, error) {
	pt, err := k.openAAD(aad(keyID), stored)
	if err != nil {
		return "", fmt.Errorf("dkim: stored private key %w", err)
	}
	return pt, nil
}

// errNotSealed and errMalformed are the errors of openAAD besides a wrong master key.
var (
	errNotSealed = errors.New("is not encrypted")
	errMalformed = errors.New("is malformed")
)

// openAAD decrypts a value sealed by sealAAD with ad; its errors complete "stored ... ".
func (k *MasterKey) openAAD(ad []byte, stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return "", errNotSealed
	}
	id, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return "", errMalformed
	}
	if id != k.id {
		return "", fmt.Errorf("%w %s, not by %s (%s)", ErrWrongMasterKey, id, k.id, k.source)
	}
	ct, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(ct) < k.aead.NonceSize() {
		return "", errMalformed
	}
	n := k.aead.NonceSize()
	pt, err := k.aead.Open(nil, ct[:n], ct[n:], ad)
	if err != nil {
		return "", errors.New("does not decrypt with its master key (altered, or moved from another row)")
	}
	return string(pt), nil
}

// totpAAD binds a sealed TOTP secret to its portal user.
func totpAAD(userID string) []byte { return []byte("easymail portal totp secret " + userID) }

// SealTOTP encrypts the TOTP secret of portal user userID for storage (package portal/account): the same
// master key as the DKIM private keys, so that one key file guards every secret of the database.
func (k *MasterKey) SealTOTP(userID, secret string) (string, error) {
	return k.sealAAD(totpAAD(userID), secret)
}

// OpenTOTP decrypts the stored TOTP secret of portal user userID, sealed by SealTOTP.
func (k *MasterKey) OpenTOTP(userID, stored string) (string, error) {
	pt, err := k.openAAD(totpAAD(userID), stored)
	if err != nil {
		return "", fmt.Errorf("portal: stored TOTP secret of user %s %w", userID, err)
	}
	return pt, nil
}

// IsSealed reports whether a stored value was encrypted by a master key (SealTOTP), not stored plain.
func (k *MasterKey) IsSealed(stored string) bool { return strings.HasPrefix(stored, sealedPrefix) }

// isPlain reports whether a stored private key is plain PEM, as stored before encryption at rest.
func isPlain(stored string) bool { return strings.HasPrefix(stored, "-----BEGIN") }

// MasterKeyPath is the master key file of the configuration: dkim.key_file against data_dir.
func MasterKeyPath(cfg *config.Config) string { return cfg.Path(cfg.DKIM.KeyFile) }

// OpenMasterKey returns the master key of the configuration: EASYMAIL_DKIM_KEY when getenv gives it, else
// the file dkim.key_file. When that file does not exist and create is true, a new key is written there
// (mode 0600), unless the database already holds keys encrypted by a master key: then the file must be
// restored from a backup, and the error says so. A key file readable by others is refused.
func OpenMasterKey(ctx context.Context, db *store.DB, cfg *config.Config, getenv func(string) string, create bool) (*MasterKey, error) {
	if text := getenv(MasterKeyEnv); text != "" {
		return ParseMasterKey(text, MasterKeyEnv)
	}
	path := MasterKeyPath(cfg)
	mk, err := ReadMasterKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) || !create {
		return mk, err
	}
	var n int
	var sealed string
	if err := db.R.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MIN(private_key), '') FROM dkim_keys WHERE private_key LIKE ?`,
		sealedPrefix+"%").Scan(&n, &sealed); err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, fmt.Errorf("dkim master key file %s does not exist, and the database holds %d DKIM private keys encrypted by master key %s: restore that file from its backup (or set %s), or no message can be signed",
			path, n, sealedKeyID(sealed), MasterKeyEnv)
	}
	return CreateMasterKeyFile(path)
}

// ReadMasterKeyFile reads the master key in the file at path; a file readable by others is refused. A
// missing file is an error wrapping fs.ErrNotExist.
func ReadMasterKeyFile(path string) (*MasterKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dkim master key file: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("dkim master key file %s has mode %v: it must be readable by Easymail's user only (chmod 600)", path, fi.Mode().Perm())
	}
	return ParseMasterKey(string(b), path)
}

// CreateMasterKeyFile writes a new random master key to path (mode 0600), which must not exist.
func CreateMasterKeyFile(path string) (*MasterKey, error) {
	text, err := NewMasterKeyText()
	if err != nil {
		return nil, err
	}
	if err := secretfile.Create(path, []byte(text+"\n")); err != nil {
		return nil, fmt.Errorf("dkim master key file %s: %w", path, err)
	}
	return ParseMasterKey(text, path)
}

// EncryptAtRest prepares the key store for signing with master key mk: the private keys still stored as
// plain PEM (before this version) are encrypted, all in one transaction, and every private key is checked to
// decrypt with mk. A key encrypted by another master key, or one that does not decrypt, is an error naming
// the keys: the node must not start and send unsigned mail. It returns the number of keys encrypted.
func EncryptAtRest(ctx context.Context, db *store.DB, mk *MasterKey) (int, error) {
	var migrated int
	// The plain keys must not survive in freed pages or the WAL: a scrubbing transaction. It writes only when
	// there is something to encrypt (a start with every key encrypted costs one read).
	plain, err := countPlain(ctx, db)
	if err != nil {
		return 0, err
	}
	write := db.Tx
	if plain > 0 {
		write = db.TxScrub
	}
	err = write(ctx, func(tx *sql.Tx) error {
		migrated = 0
		rows, err := readPrivate(ctx, tx)
		if err != nil {
			return err
		}
		var wrong, broken []string
		for _, r := range rows {
			if isPlain(r.private) {
				if _, err := parsePrivate(r.private); err != nil {
					broken = append(broken, r.name())
					continue
				}
				sealed, err := mk.seal(r.id, r.private)
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE dkim_keys SET private_key = ? WHERE id = ?`, sealed, r.id); err != nil {
					return err
				}
				migrated++
				continue
			}
			if _, err := mk.open(r.id, r.private); errors.Is(err, ErrWrongMasterKey) {
				wrong = append(wrong, r.name()+" (master key "+sealedKeyID(r.private)+")")
			} else if err != nil {
				broken = append(broken, r.name())
			}
		}
		switch {
		case len(wrong) > 0:
			return fmt.Errorf("dkim: %d private keys are encrypted by another master key than %s (%s): %s; give the master key they were encrypted with (dkim.key_file or %s), or run `easymail dkim rekey` with it",
				len(wrong), mk.id, mk.source, strings.Join(wrong, ", "), MasterKeyEnv)
		case len(broken) > 0:
			return fmt.Errorf("dkim: %d private keys do not decrypt or parse: %s", len(broken), strings.Join(broken, ", "))
		}
		return nil
	})
	return migrated, err
}

// Rekey re-encrypts every private key with master key to, in one transaction: those encrypted by from (or
// stored plain) decrypt, and are sealed again under to. from may be nil when every key is stored plain. It returns the number of keys re-encrypted; on any
// error nothing is changed.
func Rekey(ctx context.Context, db *store.DB, from, to *MasterKey) (int, error) {
	var n int
	// The old ciphertexts must not survive in freed pages or the WAL (the old master key may be compromised).
	err := db.TxScrub(ctx, func(tx *sql.Tx) error {
		n = 0
		rows, err := readPrivate(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			pemText := r.private
			if !isPlain(pemText) {
				if from == nil {
					return fmt.Errorf("%s is encrypted by master key %s, and no current master key was given", r.name(), sealedKeyID(pemText))
				}
				if pemText, err = from.open(r.id, r.private); err != nil {
					return fmt.Errorf("%s: %w", r.name(), err)
				}
			}
			sealed, err := to.seal(r.id, pemText)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE dkim_keys SET private_key = ? WHERE id = ?`, sealed, r.id); err != nil {
				return err
			}
			n++
		}
		return rekeyTOTP(ctx, tx, from, to)
	})
	return n, err
}

// rekeyTOTP re-encrypts the portal users' sealed TOTP secrets with to (plain ones are left for the portal
// to seal when it starts).
func rekeyTOTP(ctx context.Context, tx *sql.Tx, from, to *MasterKey) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, totp_secret FROM portal_users WHERE totp_secret LIKE ?`, sealedPrefix+"%")
	if err != nil {
		return err
	}
	type row struct{ id, stored string }
	var list []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.stored); err != nil {
			rows.Close()
			return err
		}
		list = append(list, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range list {
		if from == nil {
			return fmt.Errorf("the TOTP secret of portal user %s is encrypted by master key %s, and no current master key was given", r.id, sealedKeyID(r.stored))
		}
		secret, err := from.OpenTOTP(r.id, r.stored)
		if err != nil {
			return err
		}
		sealed, err := to.SealTOTP(r.id, secret)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE portal_users SET totp_secret = ? WHERE id = ?`, sealed, r.id); err != nil {
			return err
		}
	}
	return nil
}

// countPlain counts the private keys stored as plain PEM.
func countPlain(ctx context.Context, db *store.DB) (int, error) {
	var n int
	err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM dkim_keys WHERE private_key LIKE '-----BEGIN%'`).Scan(&n)
	return n, err
}

// privateRow is a stored private key (retired keys, whose private key is erased, excepted).
type privateRow struct{ id, domain, selector, private string }

func (r privateRow) name() string { return r.domain + "/" + r.selector }

func readPrivate(ctx context.Context, tx *sql.Tx) ([]privateRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, domain, selector, private_key FROM dkim_keys WHERE private_key <> '' ORDER BY domain, selector`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []privateRow
	for rows.Next() {
		var r privateRow
		if err := rows.Scan(&r.id, &r.domain, &r.selector, &r.private); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// sealedKeyID is the master key id recorded in a sealed private key.
func sealedKeyID(stored string) string {
	id, _, _ := strings.Cut(strings.TrimPrefix(stored, sealedPrefix), ":")
	return id
}
