package apiserver

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/customer"
)

//go:embed onboard.html
var pageFS embed.FS

func parsePage() (*template.Template, error) {
	return template.New("onboard.html").Funcs(template.FuncMap{
		"date": func(t time.Time) string { return t.UTC().Format("2 January 2006, 15:04 UTC") },
		"percent": func(f *float64) string {
			if f == nil {
				return "n/a"
			}
			return strconv.FormatFloat(*f*100, 'f', 1, 64) + " %"
		},
	}).ParseFS(pageFS, "onboard.html")
}

// onboardData is what the onboarding page shows.
type onboardData struct {
	Found      bool
	Customer   *api.Customer
	RelayHost  string
	RelayPort  string
	SPFInclude string
	ExpiresAt  time.Time
	// Activated is set when this visit's checks made the customer active.
	Activated bool
	// Checks are the live DNS checks of each domain, in the order of Customer.Domains; empty without DKIM or
	// without the readiness check.
	Checks []domainCheck
	// Message says why the link does not work (Found false).
	Message string
}

// domainCheck is the readiness report of one domain, or why it could not be made.
type domainCheck struct {
	Domain    string
	Readiness *api.Readiness
	Err       string
}

// readinessTimeout bounds the live DNS checks of the onboarding page.
const readinessTimeout = 15 * time.Second

// domainChecks checks the customer's domains concurrently.
func (s *server) domainChecks(ctx context.Context, c *api.Customer) []domainCheck {
	if s.readinessOff() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, readinessTimeout)
	defer cancel()
	out := make([]domainCheck, len(c.Domains))
	var wg sync.WaitGroup
	for i, d := range c.Domains {
		out[i].Domain = d.Domain
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := s.checker.Readiness(ctx, c.ID, d.Domain)
			if err != nil {
				s.log.Warn("onboarding page: readiness check", "customer", c.ID, "domain", d.Domain, "err", err)
				out[i].Err = "the check failed; reload the page to try again"
				return
			}
			out[i].Readiness = rep
		}()
	}
	wg.Wait()
	return out
}

// Messages of the onboarding page when its link does not work.
const (
	onboardInvalid = "This onboarding link is unknown or has expired. Ask your contact for a new one."
	onboardEnded   = "This onboarding link no longer works: the service of this account has ended."
)

// wantsJSON reports whether the client asks for the JSON variant of the onboarding page (Accept:
// application/json, without text/html).
func wantsJSON(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return strings.Contains(a, "application/json") && !strings.Contains(a, "text/html")
}

// onboardPage serves GET /onboard/{token}: the customer's setup instructions, without authentication (the
// signed, expiring token is the credential). With Accept: application/json it answers the customer's
// onboarding check (api.CustomerCheck) instead. A bad or expired token, or a deleted customer, gives a 404;
// a customer whose service has ended (deactivated, removed, or past its termination date) a 410 Gone. Both
// say so in plain words, and show nothing of the customer.
func (s *server) onboardPage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer") // the URL is a credential
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	var d onboardData
	status := http.StatusNotFound
	d.Message = onboardInvalid
	if id, exp, err := s.onboarding.Check(r.PathValue("token")); err == nil {
		d.ExpiresAt = exp
		c, err := s.customers.Get(r.Context(), id)
		switch {
		case err == nil && s.customers.ServiceEnded(c):
			status, d.Message = http.StatusGone, onboardEnded
		case err == nil:
			status, d.Found, d.Customer = http.StatusOK, true, c
		case !errors.Is(err, customer.ErrNotFound):
			s.log.Error("onboarding page", "customer", id, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
	}
	if wantsJSON(r) {
		if !d.Found {
			writeError(w, status, d.Message, "")
			return
		}
		chk, err := s.runCheck(r.Context(), d.Customer, authz.Principal{})
		if err != nil {
			s.log.Error("onboarding check", "customer", d.Customer.ID, "err", err)
			writeError(w, http.StatusInternalServerError, "internal error", "")
			return
		}
		writeJSON(w, http.StatusOK, chk)
		return
	}
	if d.Found {
		d.RelayHost = s.cfg.Hostname
		if len(s.cfg.SMTP.Listen) > 0 {
			if _, port, err := net.SplitHostPort(s.cfg.SMTP.Listen[0]); err == nil {
				d.RelayPort = port
			}
		}
		d.SPFInclude = "include:" + s.cfg.SPFDomain()
		d.Checks = s.domainChecks(r.Context(), d.Customer)
		// The customer becomes active when its first domain verifies, whoever looks (lifecycle.go).
		for _, c := range d.Checks {
			if verifiedReadiness(c.Readiness) && d.Customer.Status == api.StatusPending {
				if err := s.activate(r.Context(), d.Customer, authz.Principal{}); err != nil {
					s.log.Error("onboarding page: activation", "customer", d.Customer.ID, "err", err)
					break
				}
				d.Customer.Status, d.Activated = api.StatusActive, true
			}
		}
	}
	var buf bytes.Buffer
	if err := s.page.Execute(&buf, d); err != nil {
		s.log.Error("onboarding page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// operatorDomain is the operator's domain: the host name without its first label ("relay.example.net"
// gives "example.net"), or the host name itself when it has a single label.
func operatorDomain(hostname string) string {
	h := strings.TrimSuffix(hostname, ".")
	if i := strings.IndexByte(h, '.'); i >= 0 && i < len(h)-1 {
		return h[i+1:]
	}
	return h
}
