package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/cli"
	"easymail/internal/config"
	"easymail/internal/datadir"
	"easymail/internal/node"
	"easymail/internal/store"
	"easymail/internal/testkit"
	"easymail/internal/testkit/testnode"
)

// sendSigned sends one message of acme.test through the node and checks that the fake MX got it with a
// valid DKIM signature of acme.test.
func sendSigned(t *testing.T, e *env, mx *testkit.MX, subject string) {
	t.Helper()
	before := len(mx.Messages())
	if _, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", subject)); err != nil {
		t.Fatal(err)
	}
	got := mx.WaitMessages(t, before+1, 15*time.Second)[before]
	ok := 0
	for _, v := range verifyDKIM(t, e.dns, got.Data) {
		if v.Domain == "acme.test" && v.Err == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%s: %d valid signatures of acme.test, want 1:\n%s", subject, ok, got.Data)
	}
}

// privateKeys returns the private_key column of every DKIM key in the node's database.
func privateKeys(t *testing.T, dataDir string) []string {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(dataDir, "easymail.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.R.Query(`SELECT private_key FROM dkim_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// startFails runs a node on cfg and returns the error it stops with at start (nil if it started).
func startFails(t *testing.T, cfg config.Config) error {
	t.Helper()
	smtpLn, apiLn := testnode.Listen(t), testnode.Listen(t)
	cfg.SMTP.Listen, cfg.API.Listen = []string{smtpLn.Addr().String()}, apiLn.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return node.RunWith(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), cancel,
		node.Hooks{SMTPListeners: []net.Listener{smtpLn}, APIListener: apiLn})
}

// TestDKIMKeysEncryptedAtRest: the database holds no private key in the clear, only under the master key
// made in data_dir at first start; mail is signed and verifies at the MX; `easymail dkim rekey` re-encrypts
// the keys with a new master key, with which the node signs after a restart; with the old key, or none,
// the node refuses to start and says why.
func TestDKIMKeysEncryptedAtRest(t *testing.T) {
	dir := t.TempDir()
	dns := testkit.NewDNS(t)
	mxp := testkit.ReserveMXPort(t)
	start := func(keyFile string) *env {
		n := testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), DataDir: dir, Configure: func(c *config.Config) {
			if keyFile != "" {
				c.DKIM.KeyFile = keyFile
			}
		}})
		return &env{n: n, dns: dns, mxp: mxp}
	}
	e := start("")
	e.custID = e.n.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	e.publishKey(*e.keyIn(t, "active", "rsa"))
	mx := e.mx(t, "dest.test", 11)
	sendSigned(t, e, mx, "first")

	keyPath := filepath.Join(dir, "dkim.key")
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key file %s: %v %v", keyPath, fi, err)
	}
	e.n.Stop(t)
	keys := privateKeys(t, dir)
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "enc1:") || strings.Contains(keys[0], "PRIVATE KEY") {
		t.Fatalf("stored private keys %.80q", keys)
	}
	for _, f := range []string{"easymail.db", "easymail.db-wal"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil && bytes.Contains(b, []byte("PRIVATE KEY")) {
			t.Fatalf("%s holds a PEM private key", f)
		}
	}

	// Rekey (the node is stopped; api.listen port 0 never answers the command's running-node check).
	conf := filepath.Join(t.TempDir(), "easymail.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf("data_dir: %s\napi:\n  listen: 127.0.0.1:0\n", dir)), 0o600)
	newKey := filepath.Join(t.TempDir(), "dkim-2.key")
	var out, errb bytes.Buffer
	if code := cli.Main(context.Background(), []string{"dkim", "rekey", "--new-key-file", newKey, "--config", conf}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "re-encrypted 1 DKIM private keys") {
		t.Fatalf("dkim rekey: %d\n%s%s", code, out.String(), errb.String())
	}
	if fi, err := os.Stat(newKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new master key file: %v %v", fi, err)
	}
	if after := privateKeys(t, dir); len(after) != 1 || after[0] == keys[0] || !strings.HasPrefix(after[0], "enc1:") {
		t.Fatalf("after rekey %.80q", after)
	}

	// The old master key opens nothing now: the start fails, naming the key file and the master keys.
	cfg := e.n.Config
	err := startFails(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "another master key") || !strings.Contains(err.Error(), "acme.test/") {
		t.Fatalf("start with the old master key: %v", err)
	}
	// No key file at all: not a new key and unsigned mail, but an error saying to restore it.
	cfg.DKIM.KeyFile = filepath.Join(t.TempDir(), "missing.key")
	if err := startFails(t, cfg); err == nil || !strings.Contains(err.Error(), "restore that file") {
		t.Fatalf("start without the master key file: %v", err)
	}

	// With the new key: signed mail again.
	e = start(newKey)
	e.custID = e.n.AddCustomer(t, "Beta", "beta.test", "127.0.0.2")
	sendSigned(t, e, mx, "after rekey")
}

// TestDKIMPlainKeysMigratedAtStart: a key stored as plain PEM, as versions before encryption at rest did,
// is encrypted at the next start, leaves no trace in the database files, and signs as before.
func TestDKIMPlainKeysMigratedAtStart(t *testing.T) {
	dir := t.TempDir()
	dns := testkit.NewDNS(t)
	mxp := testkit.ReserveMXPort(t)
	n := testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), DataDir: dir})
	e := &env{n: n, dns: dns, mxp: mxp}
	e.custID = n.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	sel := e.keyIn(t, "active", "rsa").Selector
	n.Stop(t)

	// The old version's row: a plain PKCS#8 PEM key, its record published.
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	plain := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	db, err := store.Open(context.Background(), filepath.Join(dir, "easymail.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE dkim_keys SET private_key = ?, public_key = ? WHERE selector = ?`, plain,
			base64.StdEncoding.EncodeToString(pub), sel)
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	dns.AddTXT(sel+"._domainkey.acme.test", "v=DKIM1; k=rsa; p="+base64.StdEncoding.EncodeToString(pub))

	e.n = testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), DataDir: dir})
	if keys := privateKeys(t, dir); len(keys) != 1 || !strings.HasPrefix(keys[0], "enc1:") {
		t.Fatalf("after the start: %.80q", keys)
	}
	for _, f := range []string{"easymail.db", "easymail.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("PRIVATE KEY")) || bytes.Contains(b, []byte(strings.Split(plain, "\n")[5])) {
			t.Fatalf("%s still holds the plain key", f)
		}
	}
	sendSigned(t, e, e.mx(t, "dest.test", 11), "migrated")
}

// TestDKIMRekeyRefusesRunningNode: the command refuses while a node holds the data directory's lock.
func TestDKIMRekeyRefusesRunningNode(t *testing.T) {
	dir := t.TempDir()
	lock, err := datadir.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conf := filepath.Join(t.TempDir(), "easymail.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf("data_dir: %s\n", dir)), 0o600)
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), []string{"dkim", "rekey", "--new-key-file", filepath.Join(t.TempDir(), "k"), "--config", conf}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "locked") || !strings.Contains(errb.String(), "stop Easymail") {
		t.Fatalf("rekey with a node running: %d %s", code, errb.String())
	}
}
