package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"easymail/internal/config"
	"easymail/internal/datadir"
	"easymail/internal/dkimsign"
	"easymail/internal/store"
)

// rekeyHelp is dkim rekey's help text.
const rekeyHelp = `Re-encrypts every DKIM private key in the database with the master key in F (made, mode 0600, when F ` +
	`does not exist), in one transaction. Run it with Easymail stopped, on the machine that holds data_dir (it ` +
	`takes the data directory's lock); the current master key is dkim.key_file (or $EASYMAIL_DKIM_KEY). Then set ` +
	`dkim.key_file to F (or put F's content in $EASYMAIL_DKIM_KEY), back F up apart from the database, start ` +
	`Easymail, and destroy the old key.`

// runRekey is `easymail dkim rekey`: it works on the database directly, not through the API, since the
// master keys never leave the machine.
func runRekey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var newFile *string
	cfg, code, done := loadLocal("dkim rekey", args, func(fs *flag.FlagSet) {
		newFile = fs.String("new-key-file", "", "file of the new master key; made when it does not exist")
	}, stdout, stderr)
	if done {
		return code
	}
	if *newFile == "" {
		return report(stderr, "dkim rekey", usagef("--new-key-file is required"))
	}
	n, newKey, err := rekey(ctx, cfg, *newFile)
	if err != nil {
		fmt.Fprintf(stderr, "easymail dkim rekey: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "re-encrypted %d DKIM private keys with master key %s (%s).\n"+
		"Now set dkim.key_file: %s (or put its content in %s), back that file up apart from the database,\n"+
		"and start Easymail; the old master key no longer opens anything once that start succeeded.\n",
		n, newKey.ID(), newKey.Source(), newKey.Source(), dkimsign.MasterKeyEnv)
	return 0
}

func rekey(ctx context.Context, cfg config.Config, newFile string) (int, *dkimsign.MasterKey, error) {
	// A running node keeps its master key in memory and would encrypt the next keys with the old one: hold
	// the data directory's lock, as serve does, for the whole re-encryption.
	lock, err := datadir.Lock(cfg.DataDir)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: stop Easymail before re-encrypting its keys", err)
	}
	defer lock.Close()
	dbPath := filepath.Join(cfg.DataDir, "easymail.db")
	if _, err := os.Stat(dbPath); err != nil {
		return 0, nil, fmt.Errorf("no database: %w", err)
	}
	db, err := store.Open(ctx, dbPath)
	if err != nil {
		return 0, nil, err
	}
	defer db.Close()
	old, err := dkimsign.OpenMasterKey(ctx, db, &cfg, os.Getenv, false)
	if errors.Is(err, fs.ErrNotExist) {
		old = nil // keys stored plain, by a version before encryption at rest; Rekey refuses encrypted ones
	} else if err != nil {
		return 0, nil, fmt.Errorf("current master key: %w", err)
	}
	abs, err := filepath.Abs(newFile)
	if err != nil {
		return 0, nil, err
	}
	newKey, err := dkimsign.ReadMasterKeyFile(abs)
	if errors.Is(err, fs.ErrNotExist) {
		newKey, err = dkimsign.CreateMasterKeyFile(abs)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("new master key: %w", err)
	}
	if old != nil && old.ID() == newKey.ID() {
		return 0, nil, fmt.Errorf("%s holds the current master key %s: give a new one", abs, old.ID())
	}
	n, err := dkimsign.Rekey(ctx, db, old, newKey)
	if err != nil {
		return 0, nil, fmt.Errorf("nothing changed: %w", err)
	}
	return n, newKey, nil
}
