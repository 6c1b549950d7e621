package node

import (
	"context"
	"log/slog"
	"sync"

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

	stop context.CancelFunc
	wg   sync.WaitGroup
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

// run starts the dispatcher; shutdown ends the live streams, stops the dispatcher and waits for it.
func (e *eventing) run(ctx context.Context) {
	ctx, e.stop = context.WithCancel(context.WithoutCancel(ctx))
	e.wg.Add(1)
	go func() { defer e.wg.Done(); e.dispatcher.Run(ctx) }()
}

func (e *eventing) shutdown() {
	e.bus.CloseAll()
	if e.stop != nil {
		e.stop()
	}
	e.wg.Wait()
}
