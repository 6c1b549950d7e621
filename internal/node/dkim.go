package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/config"
	"easymail/internal/dkimsign"
	"easymail/internal/readiness"
	"easymail/internal/resolver"
	"easymail/internal/smtpin"
	"easymail/internal/store"
)

// signer is what the SMTP server signs accepted messages with: the DKIM manager, or nothing when the
// configuration turns signing off (dkim.sign: false).
func signer(cfg config.Config, dk *dkimsign.Manager) smtpin.Authenticator {
	if !cfg.DKIM.Signing() {
		return nil
	}
	return dk
}

// newDKIM builds the mail-authentication manager from the configuration and loads its keys.
func newDKIM(ctx context.Context, cfg config.Config, db *store.DB, res resolver.Resolver, reg prometheus.Registerer,
	log *slog.Logger) (*dkimsign.Manager, error) {
	// The database holds the DKIM private keys: it is made readable by Easymail's user only. SQLite gives
	// the WAL and shared-memory files it creates later the database file's mode.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		p := filepath.Join(cfg.DataDir, "easymail.db"+suffix)
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("dkim: restricting the key store %s: %w", p, err)
		}
	}
	// The private keys are encrypted by a master key kept outside the database; keys stored plain by an
	// earlier version are encrypted now, and a key the master key cannot open stops the start.
	mk, err := dkimsign.OpenMasterKey(ctx, db, &cfg, os.Getenv, true)
	if err != nil {
		return nil, err
	}
	migrated, err := dkimsign.EncryptAtRest(ctx, db, mk)
	if err != nil {
		return nil, err
	}
	if migrated > 0 {
		log.Info("dkim: plain private keys encrypted with the master key", "keys", migrated, "master_key", mk.ID(),
			"source", mk.Source())
	}
	dk, err := dkimsign.New(dkimsign.Options{
		DB:            db,
		Resolver:      res,
		MasterKey:     mk,
		RSABits:       cfg.DKIM.RSABits,
		RotateEvery:   cfg.DKIM.RotateEvery,
		RetireAfter:   cfg.DKIM.RetireAfter,
		CheckInterval: cfg.DKIM.CheckInterval,
		Logger:        log,
		Registerer:    reg,
	})
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	if err := dk.Load(ctx); err != nil {
		return nil, fmt.Errorf("dkim keys: %w", err)
	}
	if cfg.DKIM.RetireAfter < cfg.Delivery.MaxQueueLifetime {
		log.Warn("dkim.retire_after is shorter than delivery.max_queue_lifetime: a message retried after its key "+
			"was retired fails DKIM if the key's record has been removed", "retire_after", cfg.DKIM.RetireAfter,
			"max_queue_lifetime", cfg.Delivery.MaxQueueLifetime)
	}
	return dk, nil
}

// newReadiness builds the bulk-sender readiness check of the customers' domains (the API's readiness
// endpoint, the onboarding page and check, the portal's customer pages): SPF against the configured pools'
// IPs and the operator's SPF domain, DKIM through the manager's keys, DMARC, and the recent traffic.
func newReadiness(cfg config.Config, db *store.DB, res resolver.Resolver, dk *dkimsign.Manager) (*readiness.Checker, error) {
	rc, err := readiness.New(readiness.Options{DB: db, Resolver: res, Keys: dk, SPFDomain: cfg.SPFDomain(), Pools: cfg.Pools})
	if err != nil {
		return nil, fmt.Errorf("readiness: %w", err)
	}
	return rc, nil
}
