package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/config"
	"easymail/internal/ippool"
	"easymail/internal/rbl"
	"easymail/internal/resolver"
	"easymail/internal/store"
)

// outbound is the supervision of the outbound IPs: the pools' state machine and the DNSBL monitor.
type outbound struct {
	pools   *ippool.Pools
	monitor *rbl.Monitor
	tick    time.Duration
}

// newOutbound builds the pools from the configuration and the database, and the DNSBL monitor. send queues
// an operator notice (it is called only once run has started).
func newOutbound(ctx context.Context, cfg config.Config, db *store.DB, res resolver.Resolver, reg prometheus.Registerer,
	log *slog.Logger, send func(ctx context.Context, to, subject, body string) error) (*outbound, error) {
	pools, err := ippool.New(ctx, ippool.Options{
		Pools:         cfg.Pools,
		IPPool:        cfg.IPPool,
		Hold:          cfg.RBL.Hold,
		Store:         ippool.DBStore{DB: db},
		Logger:        log,
		Registerer:    reg,
		OperatorEmail: cfg.OperatorEmail,
		Send:          send,
	})
	if err != nil {
		return nil, err
	}
	zones, err := rbl.ParseZones(cfg.RBL.Zones)
	if err != nil {
		return nil, err
	}
	checker := rbl.NewChecker(res, zones, reg)
	// The time-based transitions (end of a hold, of a destination pause) are applied at this resolution.
	tick := min(time.Second, cfg.IPPool.PauseFor/4)
	if cfg.RBL.Hold > 0 {
		tick = min(tick, cfg.RBL.Hold/4)
	}
	tick = max(tick, 10*time.Millisecond)
	return &outbound{pools: pools, monitor: rbl.NewMonitor(checker, pools, cfg.RBL.Interval, nil, log), tick: tick}, nil
}

// clock is the pools' clock: warm-up days, pause expiries, counters.
func (o *outbound) clock() Component {
	return untilDone(func(ctx context.Context) { o.pools.Run(ctx, o.tick) })
}
