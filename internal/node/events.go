package node

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/config"
	"easymail/internal/events"
	"easymail/internal/store"
)

// eventing is the delivery events side of a node: the bus the queue records events on, and the dispatcher
// that POSTs them to the customers' webhooks.
type eventing struct {
	bus        *events.Bus
	dispatcher *events.Dispatcher
}

func newEventing(cfg config.Config, db *store.DB, reg prometheus.Registerer, log *slog.Logger) *eventing {
	bus := events.NewBus(log, reg)
	e := cfg.Events
	return &eventing{bus: bus, dispatcher: events.NewDispatcher(events.DispatcherOptions{
		DB: db, Bus: bus, Timeout: e.Timeout, MaxResponse: e.MaxResponse, RetryBase: e.RetryBase, RetryMax: e.RetryMax,
		MaxAttempts: e.MaxAttempts, Workers: e.Workers, RefusePrivate: cfg.Lifecycle.RefusePrivateIPs,
		Logger: log, Registerer: reg,
	})}
}
