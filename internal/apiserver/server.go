// Package apiserver serves Easymail's REST API under /api/v1 (provisioning, message log, queue operations,
// API tokens), the customers' onboarding pages under /onboard/, /metrics and /healthz.
//
// Every API request carries "Authorization: Bearer <token>". Operators may do everything, experts read
// everything, customers read their own customer's data only; anything of another customer is answered 404,
// as if it did not exist, and any change by a non-operator 403. Errors are JSON {"error", "field"} with 400
// (malformed JSON, wrong types, unknown fields), 401, 403, 404, 409 and 422 (invalid values); a 500 is
// logged and answered with a generic message.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"easymail/internal/bounce"
	"easymail/internal/config"
	"easymail/internal/customer"
	"easymail/internal/events"
	"easymail/internal/incident"
	"easymail/internal/queue"
	"easymail/internal/retention"
	"easymail/internal/spool"
	"easymail/internal/store"
)

// Queue is the part of the queue the API operates (queue.Ops): each method returns an error wrapping
// queue.ErrNotFound for an unknown id and queue.ErrNotQueued for a message with nothing left to deliver.
type Queue = queue.Ops

// Options are the server's dependencies.
type Options struct {
	// DB is the database; required.
	DB *store.DB
	// Config is the running configuration (pools, host name, listeners, public URL, data directory);
	// required.
	Config *config.Config
	// Queue carries out queue operations; required.
	Queue Queue
	// OnProvisioningChange is called after every successful change to customers, domains, relay hosts or
	// source IPs, so that the SMTP access table reloads. Optional.
	OnProvisioningChange func()
	// Metrics is served at GET /metrics, behind MetricsToken when that is set. Optional: without it, /metrics
	// is 404 (the node serves it on its own listener when metrics.listen is set).
	Metrics      http.Handler
	MetricsToken string
	// Health reports the node's health for GET /healthz: nil is 200 "ok", an error 503. Optional.
	Health func(context.Context) error
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
	// DKIM generates the DKIM keys of new domains, shows their records and rotates them. Optional: without
	// it, domains get no key and those endpoints answer 404.
	DKIM DKIM
	// Readiness checks the domains' readiness for bulk sending (the readiness endpoint, the onboarding page
	// and check); the node passes its *readiness.Checker. Optional: without it, or without DKIM, the
	// readiness endpoint answers 404 and the onboarding check verifies no domain.
	Readiness Readiness
	// Pools manages the outbound IP pools (/pools, /ips). Optional: without it, those endpoints answer 404.
	Pools Pools
	// IPCheck runs an outbound IP's DNSBL check on demand (/ips/{address}/check). Optional.
	IPCheck IPChecker
	// Quarantine lists, shows, releases and deletes quarantined messages (/quarantine); ScanPolicies are the
	// customers' scanning policies (/customers/{id}/scan-policy). Optional: without them, those endpoints
	// answer 404 (the quarantine list is empty).
	Quarantine   Quarantine
	ScanPolicies ScanPolicies
	// RefusePrivateIPs refuses private, loopback and link-local addresses as source IPs and relay hosts
	// (RFC 1918, RFC 6598, RFC 4193 and the like). By default they are accepted, as test and lab
	// installations relay from such addresses.
	RefusePrivateIPs bool
	// Events is the event bus: the live stream (/events/stream) and the dispatcher's wake-up after a
	// redelivery. Optional: without it the stream answers 404.
	Events *events.Bus
	// Complaints counts the complaint rates (/complaints). Optional: without it that endpoint answers 404.
	Complaints Complaints
	// Shaping is the provider shaping (/providers). Optional: without it those endpoints answer 404.
	Shaping Shaping
	// Unsubscribe serves the one-click unsubscribe links, /u/TOKEN, without a token (package unsubscribe).
	// Optional: without it, /u/ is 404.
	Unsubscribe http.Handler
	// Now is the clock of provisioning (termination dates must be in the future); nil means time.Now.
	Now func() time.Time
	// Spool is this node's spool, read by GET /queue/{id}/content. Optional: without it that endpoint
	// answers 404.
	Spool *spool.Spool
	// Incidents keeps the incidents and the SLA reports (incidents.go). Optional: without it, those
	// endpoints answer 404.
	Incidents *incident.Service
	// Customers is the provisioning service, the node's one (shared with the portal and the lifecycle, so
	// that the pools, the SLA types, the private-range rule and the DKIM keys of new domains are the same
	// everywhere). Optional for tests: without it, one is built over DB with the configuration's pools and
	// SLA types, RefusePrivateIPs, Now and DKIM.
	Customers *customer.Service
	// Suppressions, Subjects and Webhooks serve /customers/{id}/suppressions, /data-subjects and
	// /customers/{id}/webhooks; the node passes its own. Optional for tests: without them, they are built
	// over DB (the suppressions with suppression.ttl).
	Suppressions Suppressions
	Subjects     Subjects
	Webhooks     Webhooks
}

// maxBody bounds a request body.
const maxBody = 1 << 20

type server struct {
	db      *store.DB
	cfg     *config.Config
	queue   Queue
	changed func()
	metrics http.Handler
	// metricsToken is the bearer token /metrics requires; "" is none.
	metricsToken string
	health       func(context.Context) error
	log          *slog.Logger
	customers    *customer.Service
	onboarding   *customer.Onboarding
	page         *template.Template
	pools        Pools
	ipCheck      IPChecker
	dkim         DKIM
	// checker is Options.Readiness (the method readiness is the endpoint).
	checker Readiness

	quarantine   Quarantine
	scanPolicies ScanPolicies
	events       *events.Bus
	complaints   Complaints
	shaping      Shaping
	incidents    *incident.Service
	suppressions Suppressions
	subjects     Subjects
	webhooks     Webhooks
	// clock is Options.Now; nil is time.Now.
	clock       func() time.Time
	spool       *spool.Spool
	unsubscribe http.Handler
}

// New returns the HTTP handler of the API, the onboarding pages, /metrics and /healthz. It loads (or
// creates) the onboarding signing key in the data directory.
func New(o Options) (http.Handler, error) {
	if o.DB == nil || o.Config == nil || o.Queue == nil {
		return nil, errors.New("apiserver: DB, Config and Queue are required")
	}
	s := &server{db: o.DB, cfg: o.Config, queue: o.Queue, changed: o.OnProvisioningChange, metrics: o.Metrics,
		metricsToken: o.MetricsToken, health: o.Health, log: o.Logger}
	if s.changed == nil {
		s.changed = func() {}
	}
	s.pools, s.ipCheck = o.Pools, o.IPCheck
	s.quarantine, s.scanPolicies = o.Quarantine, o.ScanPolicies
	s.events, s.complaints, s.shaping, s.unsubscribe = o.Events, o.Complaints, o.Shaping, o.Unsubscribe
	s.incidents = o.Incidents
	s.clock, s.spool = o.Now, o.Spool
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.customers = o.Customers
	if s.customers == nil {
		s.customers = &customer.Service{DB: o.DB, Pools: o.Config.PoolNames(), AllowPrivate: !o.RefusePrivateIPs,
			Now: o.Now, SLATypes: o.Config.Incidents.SLATypeNames()}
		if o.DKIM != nil {
			s.customers.DKIM = o.DKIM
		}
	}
	if o.DKIM != nil {
		s.dkim = o.DKIM
	}
	s.checker = o.Readiness
	s.suppressions, s.subjects, s.webhooks = o.Suppressions, o.Subjects, o.Webhooks
	if s.suppressions == nil || s.subjects == nil {
		list := bounce.NewList(bounce.ListOptions{DB: o.DB, TTL: o.Config.Suppression.TTL, Logger: s.log})
		if s.suppressions == nil {
			s.suppressions = list
		}
		if s.subjects == nil {
			s.subjects = &retention.Subjects{DB: o.DB, Suppressions: list, Logger: s.log}
		}
	}
	if s.webhooks == nil {
		s.webhooks = &events.Webhooks{DB: o.DB, Now: s.customers.Now}
	}
	var err error
	if s.onboarding, err = customer.LoadOnboarding(o.Config.DataDir); err != nil {
		return nil, err
	}
	if s.page, err = parsePage(); err != nil {
		return nil, err
	}
	return s.routes(), nil
}

func (s *server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	api := func(pattern string, need access, h apiHandler) {
		mux.Handle(pattern, s.endpoint(need, h))
	}
	api("POST /api/v1/customers", operatorOnly, s.createCustomer)
	api("GET /api/v1/customers", anyRole, s.listCustomers)
	api("GET /api/v1/customers/{id}", anyRole, s.getCustomer)
	api("PATCH /api/v1/customers/{id}", operatorOnly, s.updateCustomer)
	api("DELETE /api/v1/customers/{id}", operatorOnly, s.deleteCustomer)
	api("POST /api/v1/customers/{id}/onboarding", operatorOnly, s.createOnboarding)
	api("POST /api/v1/customers/{id}/domains", operatorOnly, s.addDomain)
	api("DELETE /api/v1/customers/{id}/domains/{domain}", operatorOnly, s.removeDomain)
	api("PATCH /api/v1/customers/{id}/domains/{domain}", operatorOnly, s.updateDomain)
	api("POST /api/v1/customers/{id}/relay-hosts", operatorOnly, s.addRelayHost)
	api("DELETE /api/v1/customers/{id}/relay-hosts/{hostid}", operatorOnly, s.removeRelayHost)
	api("POST /api/v1/customers/{id}/source-ips", operatorOnly, s.addSourceIP)
	api("DELETE /api/v1/customers/{id}/source-ips/{ipid}", operatorOnly, s.removeSourceIP)
	api("POST /api/v1/customers/{id}/release-held", operatorOnly, s.releaseHeld)
	api("POST /api/v1/customers/{id}/purge-held", operatorOnly, s.purgeHeld)
	api("GET /api/v1/customers/{id}/domains/{domain}/dkim", anyRole, s.domainDKIM)
	api("POST /api/v1/customers/{id}/domains/{domain}/dkim/rotate", operatorOnly, s.rotateDKIM)
	api("POST /api/v1/customers/{id}/domains/{domain}/dkim/ed25519", operatorOnly, s.addEd25519)
	api("POST /api/v1/customers/{id}/domains/{domain}/dkim/check", operatorOnly, s.checkDKIM)
	api("GET /api/v1/customers/{id}/domains/{domain}/readiness", anyRole, s.readiness)
	api("POST /api/v1/customers/{id}/termination", operatorOnly, s.scheduleTermination)
	api("DELETE /api/v1/customers/{id}/termination", operatorOnly, s.cancelTermination)
	api("GET /api/v1/customers/{id}/check", anyRole, s.checkCustomer)
	api("GET /api/v1/dns/spf", anyRole, staffOnly(s.spfRecords))
	api("GET /api/v1/audit", anyRole, staffOnly(s.listAudit))

	api("GET /api/v1/messages", anyRole, s.searchMessages)
	api("GET /api/v1/messages/{id}", anyRole, s.traceMessage)
	api("GET /api/v1/messages.csv", anyRole, s.exportMessages)
	api("GET /api/v1/stats", anyRole, s.stats)
	api("GET /api/v1/customers/{id}/suppressions", anyRole, s.listSuppressions)
	api("POST /api/v1/customers/{id}/suppressions", operatorOnly, s.addSuppression)
	api("DELETE /api/v1/customers/{id}/suppressions/{address}", operatorOnly, s.removeSuppression)
	// Customers manage their own webhooks (webhooks.go): the endpoints check the role themselves.
	api("POST /api/v1/customers/{id}/webhooks", anyRole, s.createWebhook)
	api("GET /api/v1/customers/{id}/webhooks", anyRole, s.listWebhooks)
	api("DELETE /api/v1/customers/{id}/webhooks/{wid}", anyRole, s.deleteWebhook)
	api("GET /api/v1/customers/{id}/webhooks/dead", anyRole, s.deadWebhookDeliveries)
	api("POST /api/v1/customers/{id}/webhooks/dead/{did}/redeliver", anyRole, s.redeliverWebhook)
	api("GET /api/v1/events/stream", operatorOnly, s.streamEvents)
	api("GET /api/v1/complaints", anyRole, s.complaintRates)          // complaints.go
	api("GET /api/v1/providers", anyRole, staffOnly(s.listProviders)) // shaping.go
	api("POST /api/v1/providers/{name}/ips/{address}/resume", operatorOnly, s.resumeProvider)
	api("GET /api/v1/mta-sts/policies", anyRole, staffOnly(s.listMTASTSPolicies)) // tls.go
	api("GET /api/v1/tls-reports", anyRole, staffOnly(s.listTLSReports))
	api("GET /api/v1/data-subjects/{address}", operatorOnly, s.exportSubject)
	api("DELETE /api/v1/data-subjects/{address}", operatorOnly, s.eraseSubject)
	api("GET /api/v1/quarantine", anyRole, s.listQuarantine)
	api("GET /api/v1/quarantine/{id}", anyRole, s.showQuarantined)
	api("POST /api/v1/quarantine/{id}/release", operatorOnly, s.releaseQuarantined)
	api("DELETE /api/v1/quarantine/{id}", operatorOnly, s.deleteQuarantined)
	api("GET /api/v1/customers/{id}/scan-policy", anyRole, s.getScanPolicy)
	api("PUT /api/v1/customers/{id}/scan-policy", operatorOnly, s.setScanPolicy)
	api("GET /api/v1/queue", anyRole, s.listQueue) // queue.go
	api("POST /api/v1/queue/bulk", operatorOnly, s.bulkQueue)
	api("GET /api/v1/queue/{id}/content", anyRole, staffOnly(s.messageContent))
	api("POST /api/v1/queue/{id}/retry", operatorOnly, s.queueAction("retry", s.queue.Retry))
	api("POST /api/v1/queue/{id}/hold", operatorOnly, s.queueAction("hold", s.queue.Hold))
	api("POST /api/v1/queue/{id}/release", operatorOnly, s.queueAction("release", s.queue.Release))
	api("DELETE /api/v1/queue/{id}", operatorOnly, s.deleteQueued)

	api("GET /api/v1/pools", anyRole, staff(s.listPools))
	api("POST /api/v1/pools/{pool}/ips", operatorOnly, s.addIP)
	api("DELETE /api/v1/pools/{pool}/ips/{address}", operatorOnly, s.removeIP)
	api("GET /api/v1/ips", anyRole, staff(s.listIPs))
	api("GET /api/v1/ips/{address}", anyRole, staff(s.getIP))
	api("POST /api/v1/ips/{address}/drain", operatorOnly, s.ipAction("drain"))
	api("POST /api/v1/ips/{address}/pause", operatorOnly, s.ipAction("pause"))
	api("POST /api/v1/ips/{address}/resume", operatorOnly, s.ipAction("resume"))
	api("POST /api/v1/ips/{address}/check", operatorOnly, s.ipAction("check"))

	api("POST /api/v1/tokens", operatorOnly, s.createToken)
	api("GET /api/v1/tokens", operatorOnly, s.listTokens)
	api("DELETE /api/v1/tokens/{id}", operatorOnly, s.revokeToken)

	s.debugRoutes(api)    // debug.go
	s.incidentRoutes(api) // incidents.go
	s.userRoutes(api)     // users.go

	// The catch-all of /api/ would answer every method of a known path; it answers 405 with Allow for a
	// path another method serves, as the mux does without a catch-all.
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not a method of %s: use %s", r.Method, r.URL.Path,
				strings.Join(allow, " or ")), "")
			return
		}
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path, "")
	})
	mux.HandleFunc("GET /healthz", s.healthz)
	if s.metrics != nil {
		mux.Handle("GET /metrics", MetricsHandler(s.metrics, s.metricsToken))
	}
	mux.HandleFunc("GET /onboard/{token}", s.onboardPage)
	if s.unsubscribe != nil {
		mux.Handle("/u/", s.unsubscribe) // every method: the handler answers 405 itself
	}
	mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	return mux
}

// allowed returns the methods with which mux serves r's path by another pattern than the /api/ catch-all.
func allowed(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/api/" {
			out = append(out, m)
		}
	}
	return out
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.health != nil {
		if err := s.health(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, err.Error()+"\n")
			return
		}
	}
	io.WriteString(w, "ok\n")
}
