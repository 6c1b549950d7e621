package node

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/abuse"
	"easymail/internal/config"
	"easymail/internal/queue"
	"easymail/internal/ratelimit"
	"easymail/internal/smtpin"
	"easymail/internal/store"
)

// newPolicies loads the customers' rate limits and hold state, with compromise detection as configured.
func newPolicies(ctx context.Context, cfg config.Config, db *store.DB, q *queue.Queue, complaints abuse.ComplaintRates,
	log *slog.Logger, reg prometheus.Registerer) (*abuse.Policies, error) {
	l := cfg.Limits
	pol := abuse.New(abuse.Options{
		DB: db,
		Defaults: ratelimit.CustomerLimits{MessagesPerMinute: l.MessagesPerMinute, MessagesPerHour: l.MessagesPerHour,
			RecipientsPerMinute: l.RecipientsPerMinute, RecipientsPerHour: l.RecipientsPerHour, Burst: l.Burst},
		Compromise: cfg.Compromise,
		NodeID:     cfg.NodeID,
		Queue:      q,
		Logger:     log,
		Registerer: reg,

		Complaints:      complaints,
		ComplaintWindow: cfg.Complaints.RateWindow,
		ComplaintRate:   cfg.Complaints.RateThreshold,
		ComplaintMin:    cfg.Complaints.RateMin,
	})
	if err := pol.Reload(ctx); err != nil {
		return nil, fmt.Errorf("customer rate limits: %w", err)
	}
	return pol, nil
}

// protection is the SMTP server's burst and abuse protection from the configuration. The configuration is
// validated, so the connection rate parses.
func protection(cfg config.Config, pol *abuse.Policies) smtpin.Protection {
	s := cfg.SMTP
	rate, _ := ratelimit.ParseRule(s.ConnectionRatePerIP)
	return smtpin.Protection{
		MaxConnections:      s.MaxConnections,
		MaxConnectionsPerIP: s.MaxConnectionsPerIP,
		ConnectionRatePerIP: rate,
		PregreetDelay:       s.PregreetDelay,
		SessionTimeout:      s.SessionTimeout,
		DataTimeout:         s.DataTimeout,
		MaxErrors:           s.MaxErrors,
		Limiter:             ratelimit.NewLocal(nil),
		Policies:            pol,
	}
}
