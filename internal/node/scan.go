package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/config"
	"easymail/internal/quarantine"
	"easymail/internal/queue"
	"easymail/internal/scan"
	"easymail/internal/store"
)

// policyReload is how often the customers' scanning policies are re-read (changes made through another
// node's API).
const policyReload = time.Minute

// scanning is the content scanning side of a node: the scanners and the policies (the engine), and the
// quarantine.
type scanning struct {
	engine     *scan.Engine
	policies   *scan.Policies
	quarantine *quarantine.Store
}

// newScanning builds the scanners named in the configuration, the policies over the configured defaults,
// and the quarantine. notify queues an operator notice (called only once the node runs). Archives being
// opened by the content rules are kept in spoolDir (in files removed at once).
func newScanning(ctx context.Context, cfg config.Config, db *store.DB, q *queue.Queue, spoolDir string, reg prometheus.Registerer,
	log *slog.Logger, notify func(ctx context.Context, subject, body string)) (*scanning, error) {
	sc := cfg.Scan
	rules := sc.APIRules()
	release := scan.ReleaseNone
	pols, err := scan.NewPolicies(db, scan.Policy{SpamRejectScore: &sc.SpamRejectScore,
		SpamQuarantineScore: &sc.SpamQuarantineScore, SpamTagScore: &sc.SpamTagScore, VirusAction: &sc.VirusAction,
		OnFailure: &sc.OnFailure, CustomerRelease: &release, Rules: &rules})
	if err != nil {
		return nil, err
	}
	if err := pols.Load(ctx); err != nil {
		return nil, err
	}
	var scanners []scan.Scanner
	if sc.Clamd != "" {
		c, err := scan.NewClamd(sc.Clamd, sc.MaxConnections, sc.ConnectTimeout)
		if err != nil {
			return nil, err
		}
		scanners = append(scanners, c)
	}
	if sc.Rspamd != "" {
		r, err := scan.NewRspamd(sc.Rspamd, sc.MaxConnections, sc.ConnectTimeout)
		if err != nil {
			return nil, err
		}
		scanners = append(scanners, r)
	}
	return &scanning{
		engine: scan.New(scan.Options{Scanners: scanners, Policies: pols, Timeout: sc.Timeout, Notify: notify,
			Limits: sc.ContentLimits.RuleLimits(spoolDir), OverLimits: sc.ContentLimits.Action, Logger: log, Registerer: reg}),
		policies:   pols,
		quarantine: &quarantine.Store{DB: db, Queue: q, Retention: sc.QuarantineRetention},
	}, nil
}

// run re-reads the policies periodically until ctx ends.
func (s *scanning) run(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(policyReload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.policies.Load(ctx); err != nil && ctx.Err() == nil {
				log.Error("scan: policy reload failed", "err", err)
			}
		}
	}
}
