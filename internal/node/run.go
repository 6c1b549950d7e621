package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/sync/errgroup"
)

// A Component is a long-lived part of a node. Run works until ctx is cancelled, then stops (its goroutines
// joined, its last writes done) and returns nil; it returns an error only when it fails on its own, and that
// shuts the whole node down.
type Component interface {
	Run(ctx context.Context) error
}

// Func makes a function a Component.
type Func func(ctx context.Context) error

// Run calls f.
func (f Func) Run(ctx context.Context) error { return f(ctx) }

// untilDone makes a Component of a loop that returns once ctx ends and has no error of its own.
func untilDone(run func(ctx context.Context)) Component {
	return Func(func(ctx context.Context) error { run(ctx); return nil })
}

// part is a Component with the name its failure is reported under.
type part struct {
	name string
	c    Component
}

// A phase is a step of the shutdown: the parts stopped together, every one of them joined before the next
// phase stops. Its name is what the log says is being stopped.
type phase struct {
	name  string
	parts []part
}

// add appends a part to the phase; a nil Component is skipped (a part the configuration leaves out).
func (p *phase) add(name string, c Component) {
	if c != nil {
		p.parts = append(p.parts, part{name, c})
	}
}

// runPhases starts every part of phases, each phase under its own context (which keeps ctx's values but not
// its cancellation), calls ready, and waits until ctx ends or a part fails. Then it stops the phases in
// their order, logging each one's name. It returns the failure that stopped the node, nil if ctx did.
func runPhases(ctx context.Context, log *slog.Logger, phases []*phase, ready func()) error {
	failed := make(chan error, 1)
	base := context.WithoutCancel(ctx)
	type running struct {
		cancel context.CancelFunc
		g      errgroup.Group
	}
	runs := make([]*running, len(phases))
	for i, ph := range phases {
		pctx, cancel := context.WithCancel(base)
		r := &running{cancel: cancel}
		runs[i] = r
		for _, p := range ph.parts {
			r.g.Go(func() error {
				err := p.c.Run(pctx)
				if err == nil {
					return nil
				}
				err = fmt.Errorf("%s: %w", p.name, err)
				select {
				case failed <- err:
				default:
				}
				return err
			})
		}
	}
	if ready != nil {
		ready()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-failed:
		log.Error("service failed; shutting down", "err", runErr)
	}
	for i, ph := range phases {
		log.Info("shutting down: " + ph.name)
		runs[i].cancel()
		if err := runs[i].g.Wait(); err != nil && !errors.Is(err, runErr) {
			log.Error("shutting down: a part failed", "phase", ph.name, "err", err)
		}
	}
	log.Info("stopped")
	return runErr
}

// listenerServer is a Component serving listeners until ctx ends, then shutting down gracefully: it stops
// accepting at once and lets what is in progress finish for up to grace, then closes it.
type listenerServer struct {
	listeners []net.Listener
	serve     func(net.Listener) error
	shutdown  func(context.Context) error
	grace     time.Duration
	log       *slog.Logger
	name      string
}

// Run serves until ctx ends or a listener fails, then shuts down and joins every Serve.
func (s *listenerServer) Run(ctx context.Context) error {
	if len(s.listeners) == 0 {
		return nil
	}
	done := make(chan error, len(s.listeners))
	for _, l := range s.listeners {
		go func() {
			err := s.serve(l)
			if err != nil && !closed(err) {
				err = fmt.Errorf("%s: %w", l.Addr(), err)
			} else {
				err = nil
			}
			done <- err
		}()
	}
	var err error
	pending := len(s.listeners)
	select {
	case <-ctx.Done():
	case err = <-done:
		pending--
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	if serr := s.shutdown(sctx); serr != nil && !closed(serr) {
		s.log.Warn(s.name+": connections still open at shutdown were closed", "err", serr)
	}
	for ; pending > 0; pending-- {
		if e := <-done; err == nil {
			err = e
		}
	}
	return err
}

// closed reports whether err only says that the server or its listener was closed.
func closed(err error) bool {
	return errors.Is(err, http.ErrServerClosed) || errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed)
}

// httpComponent serves srv on l (none when l is nil) until ctx ends.
func httpComponent(name string, srv *http.Server, l net.Listener, log *slog.Logger) Component {
	if srv == nil || l == nil {
		return nil
	}
	return &listenerServer{listeners: []net.Listener{l}, serve: srv.Serve, shutdown: srv.Shutdown,
		grace: 10 * time.Second, log: log, name: name}
}
