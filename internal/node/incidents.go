package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/config"
	"easymail/internal/customer"
	"easymail/internal/delivery"
	"easymail/internal/incident"
	"easymail/internal/ippool"
	"easymail/internal/queue"
	"easymail/internal/scan"
	"easymail/internal/sla"
	"easymail/internal/smtperr"
	"easymail/internal/store"
)

// incidents is the incident side of a node: the service and the relay's own monitors.
type incidents struct {
	svc     *incident.Service
	monitor *incident.Monitor
}

// slaTypes converts the configured SLA types.
func slaTypes(cfg config.Config) (map[string]incident.SLAType, error) {
	out := map[string]incident.SLAType{}
	for name, t := range cfg.Incidents.SLATypes {
		loc, err := time.LoadLocation(t.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("incidents.sla_types.%s.timezone: %w", name, err)
		}
		days, open, closeAt, err := t.Window()
		if err != nil {
			return nil, fmt.Errorf("incidents.sla_types.%s.%w", name, err)
		}
		w := sla.Window{Location: loc, Days: days, Open: open, Close: closeAt, Luxembourg: t.Holidays == "luxembourg"}
		for _, d := range t.ExtraHolidays {
			date, err := sla.ParseDate(d)
			if err != nil {
				return nil, fmt.Errorf("incidents.sla_types.%s.extra_holidays: %w", name, err)
			}
			w.Extra = append(w.Extra, date)
		}
		out[name] = incident.SLAType{Window: w, Response: t.Response, Resolution: t.Resolution}
	}
	return out, nil
}

// newIncidents builds the incident service, whose notices are queued through q, and the monitors of the
// configured causes over the pools, the scanners, the queue, the delivery log, the customers' holds and the
// SMTP certificate.
func newIncidents(cfg config.Config, db *store.DB, q *queue.Queue, pools *ippool.Pools, engine *scan.Engine, tlsConf *tls.Config,
	reg prometheus.Registerer, log *slog.Logger, now func() time.Time) (*incidents, error) {
	if now == nil {
		now = time.Now
	}
	types, err := slaTypes(cfg)
	if err != nil {
		return nil, err
	}
	svc, err := incident.New(incident.Options{DB: db, SLATypes: types, DefaultSLA: cfg.Incidents.DefaultSLA, Mailer: q,
		From: cfg.NoticeFrom(), Operator: cfg.OperatorEmail, Service: cfg.Hostname, Address: cfg.IncidentAddress(),
		Now: now, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	m := cfg.Incidents.Monitors
	certs := func() map[string]*x509.Certificate {
		out := map[string]*x509.Certificate{}
		if len(tlsConf.Certificates) > 0 && tlsConf.Certificates[0].Leaf != nil {
			out["smtp"] = tlsConf.Certificates[0].Leaf
		}
		return out
	}
	if c := certs()["smtp"]; c != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "easymail_tls_certificate_expiry_timestamp_seconds",
			Help: "Expiry (not after) of the certificate in use, as a Unix time.", ConstLabels: prometheus.Labels{"name": "smtp"}},
			func() float64 { return float64(c.NotAfter.Unix()) }))
	}
	var probes []incident.Probe
	if m.Enabled {
		if m.IPListed || m.PoolUnusable {
			probes = append(probes, incident.PoolProbe{Pools: pools, DB: db, IPListed: m.IPListed, PoolUnusable: m.PoolUnusable})
		}
		if m.ScannerDown {
			probes = append(probes, incident.ScannerProbe{Status: engine.Status, FailClosed: cfg.Scan.OnFailure == scan.FailTempfail})
		}
		if m.QueueMessages > 0 || m.QueueOldest > 0 {
			name := cfg.NodeID
			if name == "" {
				name = cfg.Hostname
			}
			probes = append(probes, incident.QueueProbe{DB: db, NodeID: cfg.NodeID, Name: name, MaxMessages: m.QueueMessages, MaxOldest: m.QueueOldest, Now: time.Now})
		}
		if m.FailureRate > 0 {
			probes = append(probes, incident.FailureProbe{DB: db, Window: m.FailureWindow, MinAttempts: m.FailureMinAttempts,
				Rate: m.FailureRate, Now: time.Now})
		}
		if m.CustomerHeld {
			probes = append(probes, incident.HeldProbe{DB: db, OperatorReason: customer.OperatorHoldReason})
		}
		if m.CertExpiry > 0 {
			probes = append(probes, incident.CertProbe{Certs: certs, Within: m.CertExpiry, Now: time.Now})
		}
	}
	return &incidents{svc: svc, monitor: incident.NewMonitor(svc, m.Interval, probes...)}, nil
}

// run runs the monitors until ctx ends.
func (i *incidents) run(ctx context.Context) { i.monitor.Run(ctx) }

// localMail delivers the messages addressed to the incident mailbox into incidents, in the queue's
// delivery step: its picker lets a message to the mailbox's domain through without an outbound IP, and its
// deliverer hands the mailbox's recipients to the incident service and the others to the real deliverer.
type localMail struct {
	address, domain string
	db              *store.DB
	log             *slog.Logger
	// svc is set once the service exists, before the queue runs.
	svc *incident.Service
}

func newLocalMail(cfg config.Config, db *store.DB, log *slog.Logger) *localMail {
	a := cfg.IncidentAddress()
	return &localMail{address: a, domain: a[strings.LastIndexByte(a, '@')+1:], db: db, log: log}
}

// picker wraps p: when no outbound IP is usable for the mailbox's domain, the delivery goes on without one
// (the mailbox needs none; its other recipients are then deferred).
func (l *localMail) picker(p queue.SourcePicker) queue.SourcePicker { return localPicker{l, p} }

type localPicker struct {
	l *localMail
	p queue.SourcePicker
}

func (lp localPicker) Pick(ctx context.Context, req queue.PickRequest) (delivery.Source, error) {
	src, err := lp.p.Pick(ctx, req)
	if err != nil && strings.EqualFold(req.Domain, lp.l.domain) {
		return delivery.Source{}, nil
	}
	return src, err
}

// deliverer wraps d.
func (l *localMail) deliverer(d queue.Deliverer) queue.Deliverer { return localDeliverer{l, d} }

type localDeliverer struct {
	l *localMail
	d queue.Deliverer
}

func (ld localDeliverer) Deliver(ctx context.Context, j delivery.Job) delivery.Result {
	if !strings.EqualFold(j.Domain, ld.l.domain) {
		return ld.d.Deliver(ctx, j)
	}
	started := time.Now()
	byRcpt := map[string]delivery.RcptResult{}
	var others []string
	for _, r := range j.Recipients {
		if strings.EqualFold(r, ld.l.address) {
			byRcpt[r] = ld.l.intake(ctx, j, r)
		} else {
			others = append(others, r)
		}
	}
	res := delivery.Result{Started: started, RemoteMX: "incidents (local)"}
	if len(others) > 0 {
		if !j.Source.IP.IsValid() {
			for _, r := range others {
				byRcpt[r] = delivery.RcptResult{Rcpt: r, Err: smtperr.New(451, smtperr.TempNetwork, "no usable outbound IP")}
			}
		} else {
			oj := j
			oj.Recipients = others
			res = ld.d.Deliver(ctx, oj)
			for _, rr := range res.Rcpts {
				byRcpt[rr.Rcpt] = rr
			}
		}
	}
	res.Rcpts = res.Rcpts[:0:0]
	for _, r := range j.Recipients {
		res.Rcpts = append(res.Rcpts, byRcpt[r])
	}
	res.Duration = time.Since(started)
	return res
}

// intake turns the message into an incident for the recipient rcpt (the mailbox).
func (l *localMail) intake(ctx context.Context, j delivery.Job, rcpt string) delivery.RcptResult {
	var customerID string
	if err := l.db.R.QueryRowContext(ctx, `SELECT customer_id FROM messages WHERE id = ?`, j.QueueID).Scan(&customerID); err != nil {
		return delivery.RcptResult{Rcpt: rcpt, Err: smtperr.New(451, smtperr.TempSystem, "incident mailbox: %v", err)}
	}
	rc, err := j.Open()
	if err != nil {
		return delivery.RcptResult{Rcpt: rcpt, Err: smtperr.New(451, smtperr.TempSystem, "incident mailbox: %v", err)}
	}
	defer rc.Close()
	inc, err := l.svc.Intake(ctx, customerID, j.QueueID, rc)
	switch {
	case errors.Is(err, incident.ErrRefused):
		l.log.Warn("incident mailbox: message refused", "queue_id", j.QueueID, "customer", customerID, "err", err)
		return delivery.RcptResult{Rcpt: rcpt, Err: smtperr.New(550, smtperr.PermPolicy, "%v", err)}
	case err != nil:
		return delivery.RcptResult{Rcpt: rcpt, Err: smtperr.New(451, smtperr.TempSystem, "incident mailbox: %v", err)}
	}
	return delivery.RcptResult{Rcpt: rcpt, Reply: "250 2.0.0 Ok: " + inc.ID}
}
