// Package node is the composition root of `easymail serve`: it opens the store and the spool, builds every
// service from the configuration once and hands each to the parts that use it, and runs the long-lived parts
// (each a Component: Run(ctx) error) together. On cancellation, or when a part fails, it stops them in named
// phases (run.go): stop accepting SMTP and drain the sessions; stop key rotation and the lifecycle; stop the
// API and the portal; drain the deliveries in progress; stop the background parts; stop the supervision; and
// last close the store. The queue survives in the database and the spool for the next start.
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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"easymail/internal/access"
	"easymail/internal/apiserver"
	"easymail/internal/authz"
	"easymail/internal/config"
	"easymail/internal/customer"
	"easymail/internal/datadir"
	"easymail/internal/delivery"
	"easymail/internal/events"
	"easymail/internal/portal"
	"easymail/internal/queue"
	"easymail/internal/resolver"
	"easymail/internal/retention"
	"easymail/internal/shaping"
	"easymail/internal/smtpin"
	"easymail/internal/spool"
	"easymail/internal/store"
	"easymail/internal/unsubscribe"
)

const (
	// accessRefresh is how often relay host names are re-resolved.
	accessRefresh = 5 * time.Minute
	// smtpGrace is how long SMTP sessions in progress may go on at shutdown before they are closed.
	smtpGrace = 30 * time.Second
)

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
	rc, err := newReadiness(cfg, db, res, dk)
	if err != nil {
		return err
	}
	// The one provisioning service of the node: the API, the portal and the lifecycle scheduler share it.
	customers := &customer.Service{DB: db, Pools: cfg.PoolNames(), AllowPrivate: !cfg.Lifecycle.RefusePrivateIPs,
		Now: hooks.Now, DKIM: dk, SLATypes: cfg.Incidents.SLATypeNames()}
	webhooks := &events.Webhooks{DB: db, Now: hooks.Now}
	subjects := &retention.Subjects{DB: db, Suppressions: an.suppressions, Logger: log}
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
		Readiness:            rc,
		Quarantine:           scn.quarantine,
		ScanPolicies:         scn.policies,
		Pools:                out.pools,
		Events:               ev.bus,
		Complaints:           fb.intake,
		Shaping:              shaper,
		Unsubscribe:          unsub,
		IPCheck:              out.monitor,
		Incidents:            inc.svc,
		Customers:            customers,
		Suppressions:         an.suppressions,
		Subjects:             subjects,
		Webhooks:             webhooks,
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
	web, err := newPortal(&cfg, portal.Options{DB: db, Customers: customers, Queue: q, Quarantine: scn.quarantine, ScanPolicies: scn.policies, Secrets: dk.MasterKey(), Pools: out.pools, Readiness: rc, Shaping: shaper,
		Scanners: scn.engine.Status, Incidents: inc.svc, OnProvisioningChange: provisioningChanged, Now: hooks.Now}, hooks, log)
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

	// The parts, in the order they stop: every part of a phase is joined before the next phase stops, and the
	// deferred closes (the deliverer, the spool and last the store) run after the last phase.
	smtpPhase := &phase{name: "closing SMTP listeners, waiting for sessions"}
	smtpPhase.add("smtp", &listenerServer{listeners: smtpListeners, serve: smtpSrv.Serve, shutdown: smtpSrv.Shutdown,
		grace: smtpGrace, log: log, name: "smtp"})
	smtpPhase.add("feedback listener", fb.listener(log))
	schedulers := &phase{name: "stopping key rotation and the customer lifecycle"}
	schedulers.add("dkim keys", untilDone(dk.Run))
	schedulers.add("lifecycle", untilDone(newLifecycle(cfg, db, customers, q, acc, reg, log, hooks.Now).Run)) // lifecycle.go
	httpPhase := &phase{name: "stopping the API and the portal"}
	httpPhase.add("api", httpComponent("api", httpSrv, apiListener, log))
	httpPhase.add("metrics", httpComponent("metrics", metricsSrv, metricsListener, log))
	httpPhase.add("portal", web.server(log))
	// The live event streams end, so that they do not hold the API server open.
	httpPhase.add("event streams", untilDone(func(ctx context.Context) { <-ctx.Done(); ev.bus.CloseAll() }))
	deliveries := &phase{name: "waiting for deliveries in progress"}
	deliveries.add("queue", q)
	background := &phase{name: "stopping the background parts"}
	background.add("access", untilDone(func(ctx context.Context) { acc.Run(ctx, accessRefresh) }))
	background.add("abuse policies", untilDone(pol.Run))
	background.add("scan policies", untilDone(func(ctx context.Context) { scn.run(ctx, log) }))
	background.add("incident monitor", untilDone(inc.run))
	background.add("tls reports", otls.reports())
	supervision := &phase{name: "stopping the outbound supervision, the retention job and the event dispatcher"}
	supervision.add("ip pools", out.clock())
	supervision.add("dnsbl monitor", untilDone(out.monitor.Run))
	supervision.add("retention", untilDone(an.retention.Run))
	supervision.add("event dispatcher", untilDone(ev.dispatcher.Run))

	var metricsAddr string
	if metricsListener != nil {
		metricsAddr = metricsListener.Addr().String()
	}
	addrs := make([]string, len(smtpListeners))
	for i, l := range smtpListeners {
		addrs[i] = l.Addr().String()
	}
	return runPhases(ctx, log, []*phase{smtpPhase, schedulers, httpPhase, deliveries, background, supervision}, func() {
		log.Info("easymail ready", "hostname", cfg.Hostname, "smtp", addrs, "api", apiListener.Addr().String(),
			"metrics", metricsAddr, "portal", web.addr(), "data_dir", cfg.DataDir, "access", acc.String())
		if ready != nil {
			ready()
		}
	})
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
