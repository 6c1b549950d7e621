package node

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/access"
	"easymail/internal/config"
	"easymail/internal/customer"
	"easymail/internal/lifecycle"
	"easymail/internal/queue"
	"easymail/internal/store"
)

// Hooks replace parts of the outside world for tests. The zero value is the real world.
type Hooks struct {
	// Now is the clock of the customer lifecycle (termination dates, notices, deactivation, removal); nil
	// means time.Now.
	Now func() time.Time
	// SMTPListeners, when not empty, are accepted on instead of opening cfg.SMTP.Listen, and APIListener, when
	// not nil, instead of cfg.API.Listen: tests bind port 0 themselves and pass the listeners in, so that no
	// port is chosen free and bound later. RunWith closes them once it has served; if it fails before, the
	// caller does.
	SMTPListeners []net.Listener
	APIListener   net.Listener
	// FeedbackListeners, when not empty, are the feedback listener's (complaints.listen) instead.
	FeedbackListeners []net.Listener
	// MetricsListener, when not nil, is used instead of opening metrics.listen (which must then be set).
	MetricsListener net.Listener
	// MTASTSDial, when not nil, opens the connections of MTA-STS policy fetches ("mta-sts.example.com:443")
	// instead of a net.Dialer: tests point it at a loopback HTTPS server (testkit.STS).
	MTASTSDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSRPTNow, when not nil, is the clock of TLS-RPT (the UTC day sessions are counted in, and which days
	// are over and reported): tests move it past midnight instead of waiting.
	TLSRPTNow func() time.Time
	// PortalListener, when not nil, is used instead of opening portal.listen (which must then be set).
	PortalListener net.Listener
}

// Run starts Easymail with cfg and blocks until ctx ends and everything has shut down, or until a service
// fails to start. ready, if not nil, is called once every listener is open.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, ready func()) error {
	return RunWith(ctx, cfg, log, ready, Hooks{})
}

// newLifecycle builds the termination scheduler: notices are queued through q from lifecycle.notice_from,
// and every deactivation or removal reloads the SMTP access table.
func newLifecycle(cfg config.Config, db *store.DB, customers *customer.Service, q *queue.Queue, acc *access.Access, reg prometheus.Registerer,
	log *slog.Logger, now func() time.Time) *lifecycle.Scheduler {
	return lifecycle.New(lifecycle.Options{
		DB:         db,
		Customers:  customers,
		Mailer:     q,
		From:       cfg.NoticeFrom(),
		Notices:    cfg.Lifecycle.Notices,
		Grace:      cfg.Lifecycle.Grace,
		Interval:   cfg.Lifecycle.Interval,
		Service:    cfg.Hostname,
		SPFInclude: "include:" + cfg.SPFDomain(),
		Now:        now,
		OnChange: func() {
			if err := acc.Reload(context.Background()); err != nil {
				log.Error("access: reload after a lifecycle change failed", "err", err)
			}
		},
		Logger:     log,
		Registerer: reg,
	})
}
