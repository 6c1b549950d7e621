package node

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/bounce"
	"easymail/internal/config"
	"easymail/internal/msglog"
	"easymail/internal/retention"
	"easymail/internal/store"
)

// analysis is the traffic analysis and personal-data side of a node: the suppression list checked at RCPT,
// the queue's state in the metrics, and the retention job.
type analysis struct {
	suppressions *bounce.List
	retention    *retention.Job
}

// newAnalysis builds the suppression list and the retention job from the configuration, and registers the
// queue state collector.
func newAnalysis(cfg config.Config, db *store.DB, reg prometheus.Registerer, log *slog.Logger) *analysis {
	a := &analysis{
		suppressions: bounce.NewList(bounce.ListOptions{DB: db, TTL: cfg.Suppression.TTL, Logger: log, Registerer: reg}),
	}
	a.retention = retention.New(retention.Options{
		DB:           db,
		Log:          cfg.Retention.Log,
		Interval:     cfg.Retention.Interval,
		Batch:        cfg.Retention.Batch,
		Pause:        cfg.Retention.Pause,
		Suppressions: a.suppressions,
		Logger:       log,
		Registerer:   reg,
	})
	reg.MustRegister(msglog.NewCollector(db, cfg.NodeID))
	return a
}
