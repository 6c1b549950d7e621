// Package portal is Easymail's web portal: the console of the operator's staff (operators change, experts
// read) and the customers' self-service pages, server-rendered with html/template, its assets embedded, no
// script at all, in English and French.
//
// Security: users log in with a bcrypt-hashed password and an optional TOTP code (package account), failed
// logins are throttled per account and per client address, the session cookie is HttpOnly, SameSite=Strict
// and Secure (portal.secure_cookies), every POST carries the session's CSRF token (the login form a
// double-submit one) and a cross-site Origin is refused, every response has a strict Content-Security-Policy
// (no inline script or style), and every change is written to the audit log with the user. A customer's user
// sees its own customer only: anything else is answered 404, whatever the URL or form says.
package portal

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/text/message"

	"easymail/internal/audit"
	"easymail/internal/authz"
	"easymail/internal/bounce"
	"easymail/internal/config"
	"easymail/internal/customer"
	"easymail/internal/fielderr"
	"easymail/internal/incident"
	"easymail/internal/ippool"
	"easymail/internal/msglog"
	"easymail/internal/portal/account"
	"easymail/internal/quarantine"
	"easymail/internal/queue"
	"easymail/internal/readiness"
	"easymail/internal/scan"
	"easymail/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CSP is the Content-Security-Policy of every response: everything from the portal itself, no inline script
// or style, no plugin, no framing, forms posted to the portal only.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Cookie names.
const (
	sessionCookie = "easymail_session"
	loginCookie   = "easymail_login"
	langCookie    = "easymail_lang"
)

// Queue is the part of the queue the portal operates (*queue.Queue).
type Queue = queue.Ops

// Quarantine is the quarantine store (*quarantine.Store).
type Quarantine interface {
	List(ctx context.Context, customer string, limit int) ([]quarantine.Entry, error)
	Get(ctx context.Context, id string) (*quarantine.Message, error)
	Customer(ctx context.Context, id string) (string, error)
	Release(ctx context.Context, id string) error
	Delete(ctx context.Context, id string) error
}

// Pools shows the outbound IPs (*ippool's manager).
type Pools interface {
	PoolViews() []ippool.Pool
	IPViews(pool string) ([]ippool.IP, error)
}

// Readiness checks a customer's domain for sending: SPF, DKIM, DMARC (the readiness checker,
// *readiness.Checker).
type Readiness interface {
	Readiness(ctx context.Context, customerID, domain string) (*readiness.Report, error)
}

// Options are the portal's dependencies.
type Options struct {
	// DB and Config are required.
	DB     *store.DB
	Config *config.Config
	// Customers is the customer service; required.
	Customers *customer.Service
	// Queue carries out the queue actions; required.
	Queue Queue
	// Quarantine, Pools, Readiness, Scanners (the scanners' state: name → "" when up, else the last error)
	// and Incidents are optional: without one, its part of the portal is empty.
	Quarantine Quarantine
	// ScanPolicies gives the customers' scanning policies, whose customer_release says what a customer's
	// users may do with its quarantine; without it, only operators release and delete. When it is also a
	// ScanPolicyEditor (*scan.Policies is), the customer page shows the policy and operators change it.
	ScanPolicies scan.PolicySource
	Pools        Pools
	Readiness    Readiness
	Scanners     func() map[string]string
	Incidents    *incident.Service
	// Secrets encrypts the users' TOTP secrets at rest (the DKIM master key, *dkimsign.MasterKey); without
	// it, no second factor can be enabled. Secrets stored plain by an earlier version are sealed by New.
	Secrets account.Sealer
	// Shaping is the provider shaping (*shaping.Shaper, providers.go); optional.
	Shaping Shaping
	// Onboarding makes the customers' onboarding links (the API's signer, same key); optional: without
	// it, the customer page offers none.
	Onboarding *customer.Onboarding
	// OnProvisioningChange is called after a change to a customer; optional.
	OnProvisioningChange func()
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PasswordCost is the bcrypt cost of new passwords; 0 is the default (tests lower it).
	PasswordCost int
}

type server struct {
	o        Options
	cfg      config.Portal
	log      *slog.Logger
	accounts *account.Store
	// acctThrottle and ipThrottle count failed logins per account and per client address.
	acctThrottle, ipThrottle *account.Throttle
	pages                    map[string]map[string]*template.Template // language → page → template
	// snapshot keeps the staff dashboard's figures (dashcache.go).
	snapshot dashSnapshot
	changed  func()
}

// New returns the portal's handler.
func New(o Options) (http.Handler, error) {
	if o.DB == nil || o.Config == nil || o.Customers == nil || o.Queue == nil {
		return nil, errors.New("portal: DB, Config, Customers and Queue are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &server{o: o, cfg: o.Config.Portal, log: o.Logger, changed: o.OnProvisioningChange}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.changed == nil {
		s.changed = func() {}
	}
	s.accounts = &account.Store{DB: o.DB, Cost: o.PasswordCost, Now: o.Now, Secrets: o.Secrets}
	if o.Secrets != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := s.accounts.SealTOTPSecrets(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("portal: encrypting the TOTP secrets: %w", err)
		}
		if n > 0 {
			s.log.Info("portal: plain TOTP secrets encrypted with the master key", "users", n)
		}
	}
	s.acctThrottle = &account.Throttle{Max: s.cfg.LoginAttempts, Window: s.cfg.LoginWindow, Now: o.Now}
	s.ipThrottle = &account.Throttle{Max: s.cfg.IPLoginAttempts, Window: s.cfg.LoginWindow, Now: o.Now}
	var err error
	if s.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	return s.routes(), nil
}

// access is what a page requires of the user.
type access int

const (
	// anyUser: any logged-in user; the handler scopes a customer's user to its customer.
	anyUser access = iota
	// staffOnly: operators and experts.
	staffOnly
	// operatorOnly: operators.
	operatorOnly
)

// reqCtx is what a handler knows of the request beyond it: the session, the language, and what the
// change it makes is to be audited as.
type reqCtx struct {
	sess *account.Session
	lang string
	p    *message.Printer
	// auditCustomer and auditDetail complete the audit record of a change.
	auditCustomer string
	auditDetail   any
}

func (rc *reqCtx) user() account.User { return rc.sess.User }
func (rc *reqCtx) staff() bool {
	return rc.sess.User.Role == account.RoleOperator || rc.sess.User.Role == account.RoleExpert
}
func (rc *reqCtx) operator() bool { return rc.sess.User.Role == account.RoleOperator }

// principal is the user as the services' role checks know it.
func (rc *reqCtx) principal() authz.Principal {
	return authz.Principal{TokenID: "user:" + rc.sess.User.Email, Role: rc.sess.User.Role, CustomerID: rc.sess.User.CustomerID}
}

// scope returns the customer a query is limited to: the user's own for a customer's user (ok false when it
// asked for another), requested for staff.
func (rc *reqCtx) scope(requested string) (string, bool) {
	return scopeOf(rc.principal(), requested)
}

func scopeOf(p authz.Principal, requested string) (string, bool) {
	own, scoped := p.Scoped()
	if !scoped {
		return requested, true
	}
	if requested != "" && requested != own {
		return "", false
	}
	return own, true
}

type handler func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	page := func(pattern string, need access, h handler) { mux.Handle(pattern, s.page(need, h)) }
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("GET /lang/{lang}", s.setLang)
	page("POST /logout", anyUser, s.logout)
	page("POST /logout/all", anyUser, s.logoutAll)

	page("GET /{$}", anyUser, s.dashboard)
	page("GET /messages", anyUser, s.messages)
	page("GET /messages/{id}", anyUser, s.message)
	page("POST /messages/bulk", operatorOnly, s.bulkMessages)
	page("POST /messages/{id}/{action}", operatorOnly, s.messageAction)
	page("GET /queue", anyUser, s.queuePage)
	page("GET /quarantine", anyUser, s.quarantineList)
	page("GET /quarantine/{id}", anyUser, s.quarantineShow)
	page("POST /quarantine/{id}/{action}", anyUser, s.quarantineAction)
	page("GET /suppressions", anyUser, s.suppressions)
	page("POST /suppressions", operatorOnly, s.addSuppression)
	page("POST /suppressions/remove", operatorOnly, s.removeSuppression)
	page("GET /incidents", anyUser, s.incidents)
	page("POST /incidents", anyUser, s.openIncident)
	page("GET /incidents/{id}", anyUser, s.incident)
	page("POST /incidents/{id}/{action}", anyUser, s.incidentAction)
	page("GET /sla", anyUser, s.slaReport)
	page("GET /sla.csv", anyUser, s.slaCSV)
	page("GET /customers", staffOnly, s.customers)
	page("POST /customers", operatorOnly, s.createCustomer) // provision.go
	page("GET /customers/{id}", staffOnly, s.customerPage)
	page("POST /customers/{id}", operatorOnly, s.updateCustomer)
	page("POST /customers/{id}/portal", operatorOnly, s.customerPortal)
	page("POST /customers/{id}/activate", operatorOnly, s.activateCustomer)
	page("POST /customers/{id}/domains", operatorOnly, s.addCustomerDomain)
	page("POST /customers/{id}/domains/{domain}/remove", operatorOnly, s.removeCustomerDomain)
	page("POST /customers/{id}/relay-hosts", operatorOnly, s.addCustomerRelayHost)
	page("POST /customers/{id}/relay-hosts/{hostid}/remove", operatorOnly, s.removeCustomerRelayHost)
	page("POST /customers/{id}/source-ips", operatorOnly, s.addCustomerSourceIP)
	page("POST /customers/{id}/source-ips/{ipid}/remove", operatorOnly, s.removeCustomerSourceIP)
	page("POST /customers/{id}/termination", operatorOnly, s.scheduleTermination)
	page("POST /customers/{id}/termination/cancel", operatorOnly, s.cancelTermination)
	page("POST /customers/{id}/onboarding", operatorOnly, s.createOnboarding)
	page("POST /customers/{id}/scan-policy", operatorOnly, s.setScanPolicy)
	page("GET /domains", anyUser, s.domains)
	page("GET /users", anyUser, s.users)
	page("POST /users", anyUser, s.addUser)
	page("POST /users/{id}/delete", anyUser, s.deleteUser)
	page("GET /pools", staffOnly, s.poolsPage)
	page("POST /pools/ips/{addr}/{action}", operatorOnly, s.poolAction)
	page("GET /providers", staffOnly, s.providersPage)
	page("POST /providers/{name}/ips/{addr}/resume", operatorOnly, s.resumeProvider)
	page("GET /tokens", staffOnly, s.tokensPage)
	page("POST /tokens", operatorOnly, s.createToken)
	page("POST /tokens/{id}/revoke", operatorOnly, s.revokeToken)
	page("GET /audit", staffOnly, s.auditPage)
	page("GET /account", anyUser, s.accountPage)
	page("POST /account/password", anyUser, s.changePassword)
	page("POST /account/totp", anyUser, s.enableTOTP)
	page("POST /account/totp/off", anyUser, s.disableTOTP)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, s.langOf(r), http.StatusNotFound, "Not found")
	})
	return mux
}

// secure sets the security headers of every response.
func secure(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer, browsers send "Origin: null" with the portal's own forms.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// maxForm bounds a form's body.
const maxForm = 1 << 20

// page authenticates the request by its session cookie, checks the role against need and, for a POST, the
// CSRF token and the Origin; it runs h, renders its error, and audits a successful change.
func (s *server) page(need access, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		w.Header().Set("Cache-Control", "no-store")
		lang := s.langOf(r)
		var secret string
		if c, err := r.Cookie(sessionCookie); err == nil {
			secret = c.Value
		}
		sess, err := s.accounts.Session(r.Context(), secret, s.cfg.IdleTimeout)
		if errors.Is(err, account.ErrNoSession) {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			s.errorPage(w, r, lang, http.StatusForbidden, "Your session has ended; log in again.")
			return
		}
		if err != nil {
			s.fail(w, r, lang, err)
			return
		}
		rc := &reqCtx{sess: sess, lang: lang, p: printer(lang)}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				s.errorPage(w, r, lang, http.StatusBadRequest, "Malformed form.")
				return
			}
			if !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRF)) != 1 {
				s.errorPage(w, r, lang, http.StatusForbidden, "Refused: the form's CSRF token is missing or wrong. Reload the page and try again.")
				return
			}
		}
		switch {
		case need == staffOnly && !rc.staff(), need == operatorOnly && !rc.staff():
			// What a customer's user may not see does not exist for it.
			s.errorPage(w, r, lang, http.StatusNotFound, "Not found")
			return
		case need == operatorOnly && !rc.operator():
			s.errorPage(w, r, lang, http.StatusForbidden, "Your role may not change anything.")
			return
		}
		if err := h(w, r, rc); err != nil {
			s.fail(w, r, lang, err)
			return
		}
		if r.Method == http.MethodPost {
			s.audit(r, rc, sess.User, http.StatusSeeOther)
		}
	})
}

// sameOrigin refuses a request whose Origin (sent by browsers with every POST) is another site.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") != "cross-site"
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// audit records a change by u.
func (s *server) audit(r *http.Request, rc *reqCtx, u account.User, status int) {
	e := audit.Entry{ActorToken: "user:" + u.Email, ActorRole: u.Role, ActorCustomer: u.CustomerID,
		Action: "portal " + r.Pattern, Target: r.URL.Path, Status: status}
	if rc != nil {
		e.CustomerID = rc.auditCustomer
		if rc.auditDetail != nil {
			if b, err := json.Marshal(rc.auditDetail); err == nil {
				e.After = b
			}
		}
	}
	if e.CustomerID == "" {
		e.CustomerID = u.CustomerID
	}
	if err := audit.Record(context.WithoutCancel(r.Context()), s.o.DB, e); err != nil {
		s.log.Error("portal: could not record a change in the audit log", "action", e.Action, "err", err)
	}
}

// pageError is an error shown to the user as it is, with the HTTP status of its page; Field names the
// form field at fault, when one is.
type pageError struct {
	Status  int
	Message string
	Field   string
}

func (e *pageError) Error() string { return e.Message }

// notFound is what a user may not see, as well as what does not exist.
var errNotFound = &pageError{Status: http.StatusNotFound, Message: "Not found"}

// fail maps err to a status and renders it.
func (s *server) fail(w http.ResponseWriter, r *http.Request, lang string, err error) {
	var (
		ae *pageError
		fe *fielderr.Error
		se *queue.StateError
	)
	switch {
	case errors.As(err, &ae):
		s.errorPage(w, r, lang, ae.Status, ae.Message)
	case errors.As(err, &fe) && fe.Conflict:
		s.errorPage(w, r, lang, http.StatusConflict, fe.Error())
	case errors.As(err, &fe):
		s.errorPage(w, r, lang, http.StatusUnprocessableEntity, fe.Error())
	case errors.As(err, &se), errors.Is(err, queue.ErrNotQueued):
		s.errorPage(w, r, lang, http.StatusConflict, err.Error())
	case errors.Is(err, customer.ErrNotFound), errors.Is(err, msglog.ErrNotFound), errors.Is(err, queue.ErrNotFound),
		errors.Is(err, quarantine.ErrNotFound), errors.Is(err, account.ErrNotFound), errors.Is(err, bounce.ErrNotFound), errors.Is(err, incident.ErrNotFound):
		s.errorPage(w, r, lang, http.StatusNotFound, "Not found")
	default:
		if r.Context().Err() == nil {
			s.log.Error("portal: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		s.errorPage(w, r, lang, http.StatusInternalServerError, "Internal error; see the server log.")
	}
}

// clientIP is the address of the request's peer.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// redirect answers a change with 303 to target.
func redirect(w http.ResponseWriter, r *http.Request, target string) error {
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// localPath returns p when it is a path of this site ("/x", not "//host" nor a URL), else "/".
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}

func (s *server) setLang(w http.ResponseWriter, r *http.Request) {
	secure(w)
	lang := r.PathValue("lang")
	if _, ok := languages[lang]; !ok {
		s.errorPage(w, r, s.langOf(r), http.StatusNotFound, "Not found")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 86400, HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}

// errorf is a user-facing error with a status.
func errorf(status int, format string, args ...any) error {
	return &pageError{Status: status, Message: fmt.Sprintf(format, args...)}
}
