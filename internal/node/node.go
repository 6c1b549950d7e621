// Package node is the composition root of `easymail serve`: it opens the store and the spool, builds every
// service from the configuration, runs them together, and shuts them down in order on cancellation: stop
// accepting SMTP and let sessions finish, stop the API, let deliveries in progress finish, close the store.
// The queue survives in the database and the spool for the next start.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"easymail/internal/access"
	"easymail/internal/apiserver"
	"easymail/internal/authz"
	"easymail/internal/config"
	"easymail/internal/datadir"
	"easymail/internal/delivery"
	"easymail/internal/portal"
	"easymail/internal/queue"
	"easymail/internal/resolver"
	"easymail/internal/shaping"
	"easymail/internal/smtpin"
	"easymail/internal/spool"
	"easymail/internal/store"
	"easymail/internal/unsubscribe"
)

// accessRefresh is how often relay host names are re-resolved.
const accessRefresh = 5 * time.Minute

// RunWith is Run with hooks replacing parts of the outside world (tests).
func RunWith(ctx context.Context, cfg config.Config, log *slog.Logger, ready func(), hooks Hooks) error {
	if cfg.Database != "" {
		return errors.New("database: PostgreSQL is not supported by this build yet; leave it empty to use the embedded SQLite")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	// One process per data directory, for the life of the process (package datadir).
	lock, err := datadir.Lock(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	db, err := store.Open(ctx, filepath.Join(cfg.DataDir, "easymail.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := datadir.CheckNodeID(ctx, cfg.DataDir, db, cfg.NodeID); err != nil {
		return err
	}
	if err := authz.Bootstrap(ctx, db, cfg.DataDir, os.Getenv(authz.AdminTokenEnv), log); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	sp, err := spool.Open(filepath.Join(cfg.DataDir, "spool"))
	if err != nil {
		return err
	}
	defer sp.Close()
	res, err := resolver.NewCaching(cfg.DNS.Servers, cfg.DNS.Timeout,
		resolver.CacheOptions{Size: cfg.DNS.CacheSize, MaxTTL: cfg.DNS.CacheMaxTTL})
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerDNSCache(reg, res)

	// Resolved relay host addresses follow the same private-range rule as literal ones (access.Options).
	acc := access.NewWith(access.Options{DB: db, Resolver: res, Logger: log, AllowPrivate: !cfg.Lifecycle.RefusePrivateIPs,
		Registerer: reg})
	if err := acc.Reload(ctx); err != nil {
		return fmt.Errorf("access table: %w", err)
	}
	// The operator's notices about the outbound IPs are queued through Easymail itself (q is set below,
	// before anything runs).
	var q *queue.Queue
	out, err := newOutbound(ctx, cfg, db, res, reg, log, func(ctx context.Context, to, subject, body string) error {
		_, err := q.Submit(ctx, "postmaster@"+cfg.Hostname, to, subject, body)
		return err
	})
	if err != nil {
		return err
	}
	shaper, err := shaping.New(shaping.Options{Providers: cfg.Shaping.Providers, PauseBase: cfg.Shaping.PauseBase,
		PauseMax: cfg.Shaping.PauseMax, Registerer: reg})
	if err != nil {
		return err
	}
	dopts := delivery.Options{
		Shaper:            shaper,
		Resolver:          res,
		Port:              cfg.Delivery.Port,
		ConnectTimeout:    cfg.Delivery.ConnectTimeout,
		CommandTimeout:    cfg.Delivery.CommandTimeout,
		IdleTimeout:       cfg.Delivery.IdleTimeout,
		MaxPerDestination: cfg.Delivery.MaxPerDestination,
		Logger:            log,
	}
	// TLS policies, MTA-STS, DANE and TLS-RPT (tls.go); mailed reports are queued through q, set below.
	otls, err := newOutboundTLS(cfg, db, res, submitRaw(func() *queue.Queue { return q }), log, hooks, &dopts)
	if err != nil {
		return err
	}
	deliverer := delivery.New(dopts)
	defer deliverer.Close()
	ev := newEventing(cfg, db, reg, log) // events.go
	// Messages to the incident mailbox become incidents in the delivery step (incidents.go).
	local := newLocalMail(cfg, db, log)
	q = queue.New(queue.Options{
		Events:      ev.bus,
		DB:          db,
		Spool:       sp,
		Deliverer:   local.deliverer(deliverer),
		Sources:     local.picker(out.pools),
		Observer:    out.pools,
		NodeID:      cfg.NodeID,
		Hostname:    cfg.Hostname,
		Retry:       cfg.Delivery.Retry,
		MaxLifetime: cfg.Delivery.MaxQueueLifetime,
		DelayNotice: cfg.Delivery.DelayNotice,
		Workers:     cfg.Delivery.Workers,
		Logger:      log,
		Registerer:  reg,
	})
	if err := q.Recover(ctx); err != nil {
		return fmt.Errorf("queue recovery: %w", err)
	}
	// Relay host addresses ignored (another customer's): the operator's notices, like the IP notices.
	acc.SetNotify(func(ctx context.Context, subject, body string) {
		if cfg.OperatorEmail == "" {
			return
		}
		if _, err := q.Submit(ctx, "postmaster@"+cfg.Hostname, cfg.OperatorEmail, subject, body); err != nil {
			log.Error("access: operator notice not queued", "err", err)
		}
	})
	// Suppression list, queue state metrics, retention job (analysis.go).
	an := newAnalysis(cfg, db, reg, log)
	// Content scanning and the quarantine (scan.go); scanner alerts go to the operator like the IP notices.
	scn, err := newScanning(ctx, cfg, db, q, sp.Dir(), reg, log, func(ctx context.Context, subject, body string) {
		if cfg.OperatorEmail == "" {
			return
		}
		if _, err := q.Submit(ctx, "postmaster@"+cfg.Hostname, cfg.OperatorEmail, subject, body); err != nil {
			log.Error("scan: operator notice not queued", "err", err)
		}
	})
	if err != nil {
		return err
	}
	an.retention.Also("quarantine", scn.quarantine)

	dk, err := newDKIM(ctx, cfg, db, res, reg, log)
	if err != nil {
		return err
	}
	// Complaint intake (feedback.go), fed to compromise detection.
	fb, err := newComplaints(cfg, db, ev.bus, reg, log, hooks.FeedbackListeners)
	if err != nil {
		return err
	}
	defer fb.close()
	pol, err := newPolicies(ctx, cfg, db, q, fb.intake, log, reg)
	if err != nil {
		return err
	}

	// One-click unsubscription for the customers that delegate it (docs/events.md).
	unsub, err := unsubscribe.New(unsubscribe.Options{DB: db, DataDir: cfg.DataDir, PublicURL: cfg.API.PublicURL,
		Bus: ev.bus, Logger: log})
	if err != nil {
		return err
	}

	tlsConf, err := smtpin.TLSConfig(cfg.SMTP.TLSCert, cfg.SMTP.TLSKey, filepath.Join(cfg.DataDir, "tls"), cfg.Hostname)
	if err != nil {
		return err
	}
	// Incidents and the relay's own monitors (incidents.go).
	inc, err := newIncidents(cfg, db, q, out.pools, scn.engine, tlsConf, reg, log, hooks.Now)
	if err != nil {
		return err
	}
	local.svc = inc.svc
	smtpSrv := smtpin.New(smtpin.Options{
		Hostname:       cfg.Hostname,
		Access:         acc,
		Spool:          sp,
		Queue:          q,
		TLS:            tlsConf,
		MaxMessageSize: cfg.SMTP.MaxMessageSize,
		MaxRecipients:  cfg.SMTP.MaxRecipients,
		MaxReceived:    cfg.SMTP.MaxReceived,
		ReadTimeout:    cfg.SMTP.ReadTimeout,
		WriteTimeout:   cfg.SMTP.WriteTimeout,
		Logger:         log,
		Registerer:     reg,
		DKIM:           signer(cfg, dk),
		Protection:     protection(cfg, pol),
		Suppressions:   an.suppressions,
		Scan:           scn.engine,
		Quarantine:     scn.quarantine,
		Unsubscribe:    unsub,

		MaxHeaderSize:   cfg.SMTP.MaxHeaderSize,
		MaxHeaderFields: cfg.SMTP.MaxHeaderFields,
	})

	// /metrics is on the API port, or on its own listener (metrics.listen) and then not on the API port.
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	apiMetrics := metrics
	if cfg.Metrics.Listen != "" {
		apiMetrics = nil
	}
	provisioningChanged := func() {
		if err := acc.Reload(context.Background()); err != nil {
			log.Error("access: reload after a provisioning change failed", "err", err)
		}
		if err := dk.Load(context.Background()); err != nil {
			log.Error("dkim: key reload after a provisioning change failed", "err", err)
		}
		if err := pol.Reload(context.Background()); err != nil {
			log.Error("abuse: policy reload after a provisioning change failed", "err", err)
		}
	}
	handler, err := apiserver.New(apiserver.Options{
		DB:                   db,
		Config:               &cfg,
		Queue:                q,
		OnProvisioningChange: provisioningChanged,
		DKIM:                 dk,
		Quarantine:           scn.quarantine,
		ScanPolicies:         scn.policies,
		Pools:                out.pools,
		Events:               ev.bus,
		Complaints:           fb.intake,
		Shaping:              shaper,
		Unsubscribe:          unsub,
		IPCheck:              out.monitor,
		Incidents:            inc.svc,
		Spool:                sp,
		Now:                  hooks.Now,
		RefusePrivateIPs:     cfg.Lifecycle.RefusePrivateIPs,
		Metrics:              apiMetrics,
		MetricsToken:         cfg.Metrics.Token,
		Health:               func(ctx context.Context) error { return db.R.PingContext(ctx) },
		Logger:               log,
	})
	if err != nil {
		return err
	}
	// The web portal (portal.go), on the API's listener or its own.
	web, err := newPortal(&cfg, portal.Options{DB: db, Queue: q, Quarantine: scn.quarantine, ScanPolicies: scn.policies, Secrets: dk.MasterKey(), Pools: out.pools, Readiness: dk, Shaping: shaper,
		Scanners: scn.engine.Status, Incidents: inc.svc, OnProvisioningChange: provisioningChanged, Now: hooks.Now}, dk, hooks, log)
	if err != nil {
		return err
	}
	handler = web.mount(handler)

	var smtpListeners []net.Listener
	closeAll := func() {
		for _, l := range smtpListeners {
			l.Close()
		}
		web.close()
	}
	smtpAddrs := cfg.SMTP.Listen
	if len(hooks.SMTPListeners) > 0 {
		smtpListeners, smtpAddrs = append(smtpListeners, hooks.SMTPListeners...), nil
	}
	for _, addr := range smtpAddrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("smtp.listen %s: %w", addr, err)
		}
		smtpListeners = append(smtpListeners, l)
	}
	apiListener := hooks.APIListener
	if apiListener == nil {
		apiListener, err = net.Listen("tcp", cfg.API.Listen)
		if err != nil {
			closeAll()
			return fmt.Errorf("api.listen %s: %w", cfg.API.Listen, err)
		}
	}
	apiListener = limitConnections(apiListener, cfg.API.MaxConnections)
	httpSrv := httpServer(cfg.API, handler, log)
	var metricsListener net.Listener
	var metricsSrv *http.Server
	if cfg.Metrics.Listen != "" {
		metricsListener = hooks.MetricsListener
		if metricsListener == nil {
			if metricsListener, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
				closeAll()
				apiListener.Close()
				return fmt.Errorf("metrics.listen %s: %w", cfg.Metrics.Listen, err)
			}
		}
		metricsListener = limitConnections(metricsListener, cfg.API.MaxConnections)
		metricsSrv = httpServer(cfg.API, apiserver.MetricsHandler(metrics, cfg.Metrics.Token), log)
	}

	qctx, stopQueue := context.WithCancel(context.WithoutCancel(ctx))
	defer stopQueue()
	var wg sync.WaitGroup
	errc := make(chan error, len(smtpListeners)+len(fb.listeners)+4)
	wg.Add(1)
	go func() { defer wg.Done(); q.Run(qctx) }()
	out.run(ctx)
	defer out.shutdown()
	tctx, stopTLSRPT := context.WithCancel(ctx)
	tlsrptDone := otls.run(tctx)
	an.run(ctx)
	defer an.shutdown()
	ev.run(ctx)
	defer ev.shutdown()
	actx, stopAccess := context.WithCancel(ctx)
	defer stopAccess()
	// Every long-lived part is joined (wg) before the store closes.
	wg.Add(4)
	go func() { defer wg.Done(); acc.Run(actx, accessRefresh) }()
	go func() { defer wg.Done(); pol.Run(actx) }()
	lctx, stopLifecycle := context.WithCancel(ctx)
	defer stopLifecycle()
	wg.Add(1)
	go func() { defer wg.Done(); newLifecycle(cfg, db, q, acc, reg, log, hooks.Now).Run(lctx) }() // lifecycle.go
	go func() { defer wg.Done(); scn.run(actx, log) }()
	go func() { defer wg.Done(); inc.run(actx) }()
	dctx, stopDKIM := context.WithCancel(ctx)
	defer stopDKIM()
	wg.Add(1)
	go func() { defer wg.Done(); dk.Run(dctx) }()
	for _, l := range smtpListeners {
		go func() {
			if err := smtpSrv.Serve(l); err != nil {
				errc <- fmt.Errorf("smtp %s: %w", l.Addr(), err)
			}
		}()
	}
	fb.serve(errc)
	go func() {
		if err := httpSrv.Serve(apiListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("api: %w", err)
		}
	}()
	web.serve(errc)
	var metricsAddr string
	if metricsSrv != nil {
		metricsAddr = metricsListener.Addr().String()
		go func() {
			if err := metricsSrv.Serve(metricsListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics: %w", err)
			}
		}()
	}
	addrs := make([]string, len(smtpListeners))
	for i, l := range smtpListeners {
		addrs[i] = l.Addr().String()
	}
	log.Info("easymail ready", "hostname", cfg.Hostname, "smtp", addrs, "api", apiListener.Addr().String(),
		"metrics", metricsAddr, "portal", web.addr(), "data_dir", cfg.DataDir, "access", acc.String())
	if ready != nil {
		ready()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		log.Error("service failed; shutting down", "err", runErr)
	}

	// Shutdown, in phases: stop accepting and drain the SMTP sessions; stop the API and the portal; drain
	// the deliveries; stop the background parts; then the deferred closes (outbound supervision, analysis,
	// events, the deliverer, the spool and last the store).
	log.Info("shutting down: closing SMTP listeners, waiting for sessions")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := smtpSrv.Shutdown(sctx); err != nil {
		log.Warn("smtp sessions still open at shutdown were closed", "err", err)
	}
	fb.shutdown(sctx)
	cancel()
	stopDKIM()
	stopLifecycle()
	ev.bus.CloseAll() // the live streams end, so that they do not hold the API server open
	hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	httpSrv.Shutdown(hctx)
	if metricsSrv != nil {
		metricsSrv.Shutdown(hctx)
	}
	web.shutdown(hctx)
	cancel()
	log.Info("shutting down: waiting for deliveries in progress")
	stopQueue()
	log.Info("shutting down: stopping the background parts")
	stopAccess()
	wg.Wait()
	stopTLSRPT()
	<-tlsrptDone
	out.shutdown()
	log.Info("stopped")
	return runErr
}

// RenameNode is `easymail rename-node`: with no node running on cfg.DataDir (it takes the directory's lock),
// it moves the queue of the data directory to cfg.NodeID and rewrites <data_dir>/node-id, so that the next
// start under that id finds its queue (datadir.RenameNode). It returns the previous ids and the message rows
// moved.
func RenameNode(ctx context.Context, cfg config.Config) (from []string, moved int64, err error) {
	lock, err := datadir.Lock(cfg.DataDir)
	if err != nil {
		return nil, 0, err
	}
	defer lock.Close()
	db, err := store.Open(ctx, filepath.Join(cfg.DataDir, "easymail.db"))
	if err != nil {
		return nil, 0, err
	}
	defer db.Close()
	return datadir.RenameNode(ctx, cfg.DataDir, db, cfg.NodeID)
}
