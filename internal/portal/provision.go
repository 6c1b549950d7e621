package portal

// Provisioning from the console: an operator creates a customer and sets it up on its page
// (/customers/{id}): settings and rate limits, scanning policy, domains with their live DNS checks and the
// records to publish, relay hosts, source IPs, activation, termination and the onboarding link. Everything
// goes through the customer service (and the scanning policies), as the API and the CLI do; experts see the
// page without its forms, and the server refuses their POSTs (operatorOnly).

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"easymail/internal/contentrules"
	"easymail/internal/customer"
	"easymail/internal/fielderr"
	"easymail/internal/scan"
)

// ScanPolicyEditor reads and changes the customers' own scanning policies (*scan.Policies). When the
// portal's ScanPolicies implements it, the customer page shows the policy and operators change it there.
type ScanPolicyEditor interface {
	Get(customerID string) scan.Policy
	Defaults() scan.Policy
	Set(ctx context.Context, customerID string, p scan.Policy) error
}

func init() {
	area([]string{"customer"}, provisionFrench, map[string]string{
		"custcreated":   "The customer was created. Add its domains, relay hosts or source IPs, then send it its onboarding link.",
		"custsaved":     "The customer's settings were saved.",
		"custactivated": "The customer is active.",
		"domadded":      "The domain was added: publish its DNS records shown below.",
		"domremoved":    "The domain was removed.",
		"hostadded":     "The relay host was added.",
		"hostremoved":   "The relay host was removed.",
		"ipadded":       "The source IP range was added.",
		"ipnetwork":     "The source IP range was added, stored as its network address (the address given had host bits set).",
		"ipremoved":     "The source IP range was removed.",
		"termscheduled": "The termination is scheduled: the contacts will be notified before the date.",
		"termcancelled": "The termination is cancelled.",
		"scansaved":     "The scanning policy was saved.",
	})
}

// customerPath is the page of a customer.
func customerPath(id string) string { return "/customers/" + url.PathEscape(id) }

// limitField is one rate limit of the edit form: its form field, label and value ("" for the default).
type limitField struct{ Field, Label, Value string }

// choice is an option of a select.
type choice struct{ Value, Label string }

// scanField is one setting of the scanning policy: the customer's own value ("" when it follows the
// default) and the configured default; Options for a choice, none for a score.
type scanField struct {
	Field, Label, Value, Default string
	Options                      []string
}

// scanView is the scanning policy on the customer page.
type scanView struct {
	Fields []scanField
	// Rules counts the customer's own content rules (changed with the API or the CLI).
	Rules           int
	ReplaceDefaults bool
}

// customerView is the customer page.
type customerView struct {
	C       *customer.Customer
	Domains []domainView
	// SPFInclude is the mechanism each domain's SPF record must hold; SPFExample and DMARCExample are
	// records to start from.
	SPFInclude, SPFExample string
	RelayHost, RelayPort   string
	Limits                 []limitField
	Pools, SLATypes        []string
	TLSPolicies            []choice
	Scan                   *scanView
	// Ended: the customer's service has ended (no onboarding link, no termination to schedule).
	Ended bool
	// CanOnboard: the portal can make onboarding links; Onboarding is the one just made.
	CanOnboard bool
	Onboarding *customer.OnboardingLink
	// Terminable: a termination can be scheduled (pending, active) or moved (terminating).
	Terminable bool
}

// dmarcExample is the least DMARC record to publish for a domain, reports going to the technical contact.
func (v customerView) DMARCExample() string {
	return "v=DMARC1; p=none; rua=mailto:" + v.C.TechnicalEmail
}

func optInt(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

func optFloat(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

func optString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// limitsOf lists the customer's rate limits as the edit form has them.
func limitsOf(rl customer.RateLimits) []limitField {
	return []limitField{
		{"messages_per_minute", "Messages per minute", optInt(rl.MessagesPerMinute)},
		{"messages_per_hour", "Messages per hour", optInt(rl.MessagesPerHour)},
		{"recipients_per_minute", "Recipients per minute", optInt(rl.RecipientsPerMinute)},
		{"recipients_per_hour", "Recipients per hour", optInt(rl.RecipientsPerHour)},
		{"burst", "Burst", optInt(rl.Burst)},
	}
}

// scanEditor is the scanning policies' editor, nil when the portal has none.
func (s *server) scanEditor() ScanPolicyEditor {
	e, _ := s.o.ScanPolicies.(ScanPolicyEditor)
	return e
}

func scanViewOf(own, def scan.Policy) *scanView {
	v := &scanView{ReplaceDefaults: own.ReplaceDefaults, Fields: []scanField{
		{"spam_reject_score", "Spam score refused from", optFloat(own.SpamRejectScore), optFloat(def.SpamRejectScore), nil},
		{"spam_quarantine_score", "Spam score quarantined from", optFloat(own.SpamQuarantineScore), optFloat(def.SpamQuarantineScore), nil},
		{"spam_tag_score", "Spam score tagged from", optFloat(own.SpamTagScore), optFloat(def.SpamTagScore), nil},
		{"virus_action", "Virus found", optString(own.VirusAction), optString(def.VirusAction), []string{contentrules.ActionReject, contentrules.ActionQuarantine}},
		{"on_failure", "Scanner down", optString(own.OnFailure), optString(def.OnFailure), []string{scan.FailTempfail, scan.FailBypass}},
		{"customer_release", "The customer's users may release", optString(own.CustomerRelease), optString(def.CustomerRelease),
			[]string{scan.ReleaseNone, scan.ReleaseExceptVirus, scan.ReleaseAll}},
	}}
	if own.Rules != nil {
		v.Rules = len(*own.Rules)
	}
	return v
}

// customerView builds the page of customer id, checking its domains live.
func (s *server) customerView(ctx context.Context, id string) (*customerView, error) {
	c, err := s.o.Customers.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	cfg := s.o.Config
	v := &customerView{C: c, SPFInclude: "include:" + cfg.SPFDomain(), RelayHost: cfg.Hostname,
		Limits: limitsOf(c.RateLimits), Pools: s.o.Customers.Pools, SLATypes: s.o.Customers.SLATypes,
		TLSPolicies: []choice{{"", "configured default"}, {"may", "may (opportunistic)"}, {"encrypt", "encrypt"}, {"verify", "verify"}},
		Ended:       s.o.Customers.ServiceEnded(c)}
	v.SPFExample = "v=spf1 mx " + v.SPFInclude + " ~all"
	if len(cfg.SMTP.Listen) > 0 {
		if _, port, err := net.SplitHostPort(cfg.SMTP.Listen[0]); err == nil {
			v.RelayPort = port
		}
	}
	v.CanOnboard = s.o.Onboarding != nil && !v.Ended
	switch c.Status {
	case customer.StatusPending, customer.StatusActive:
		v.Terminable = true
	case customer.StatusTerminating:
		v.Terminable = !v.Ended
	}
	if e := s.scanEditor(); e != nil {
		v.Scan = scanViewOf(e.Get(c.ID), e.Defaults())
	}
	v.Domains = s.checkDomains(ctx, c)
	return v, nil
}

// checkDomains checks the customer's domains live and concurrently, each within readinessTimeout.
func (s *server) checkDomains(ctx context.Context, c *customer.Customer) []domainView {
	out := make([]domainView, len(c.Domains))
	var wg sync.WaitGroup
	for i, d := range c.Domains {
		out[i].D = d
		if s.o.Readiness == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, readinessTimeout)
			defer cancel()
			rd, err := s.o.Readiness.Readiness(ctx, c.ID, d.Domain)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Readiness = rd
		}()
	}
	wg.Wait()
	return out
}

type customersView struct {
	List  []customer.Customer
	Pools []string
}

func (s *server) customerPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	v, err := s.customerView(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.render(w, r, rc, http.StatusOK, "customer", "customers", "Customer", v)
}

// formValue returns the last value of a form field, trimmed, and whether the form has it. A checkbox comes
// after a hidden field of the same name holding "false", so that the last value is the box's when ticked.
func formValue(r *http.Request, name string) (string, bool) {
	vs, ok := r.PostForm[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return strings.TrimSpace(vs[len(vs)-1]), true
}

// formBool reads a checkbox; label names it in the error.
func formBool(r *http.Request, rc *reqCtx, name, label string) (*bool, error) {
	v, ok := formValue(r, name)
	if !ok {
		return nil, nil
	}
	switch v {
	case "true", "on":
		t := true
		return &t, nil
	case "false", "":
		f := false
		return &f, nil
	}
	return nil, rc.inputError("%s: tick the box or leave it empty.", rc.p.Sprintf(label))
}

// inputError is a 422 whose message is already translated.
func (rc *reqCtx) inputError(format string, args ...any) error {
	return &pageError{Status: http.StatusUnprocessableEntity, Message: rc.p.Sprintf(format, args...)}
}

// createCustomer serves POST /customers (operators): the customer is created pending, and its page opened.
func (s *server) createCustomer(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	in := customer.Create{Name: r.PostFormValue("name"), ContactEmail: r.PostFormValue("contact_email"),
		TechnicalEmail: r.PostFormValue("technical_email"), AdminEmail: r.PostFormValue("admin_email"),
		Pool: strings.TrimSpace(r.PostFormValue("pool")), FallbackPool: strings.TrimSpace(r.PostFormValue("fallback_pool"))}
	var err error
	if in.TopologyHiding, err = formBool(r, rc, "topology_hiding", "Topology hiding"); err != nil {
		return err
	}
	if in.AntiSpoofing, err = formBool(r, rc, "anti_spoofing", "Anti-spoofing"); err != nil {
		return err
	}
	c, err := s.o.Customers.Create(r.Context(), in)
	if err != nil {
		return err
	}
	s.changed()
	rc.auditCustomer, rc.auditDetail = c.ID, map[string]string{"customer": c.ID, "name": c.Name, "contact_email": c.ContactEmail, "pool": c.Pool}
	return redirect(w, r, customerPath(c.ID)+"?done=custcreated")
}

// updateCustomer serves POST /customers/{id} (operators): the edit form's fields present in the form change.
func (s *server) updateCustomer(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	var in customer.Update
	for _, f := range []struct {
		name string
		dst  **string
	}{
		{"name", &in.Name}, {"contact_email", &in.ContactEmail}, {"technical_email", &in.TechnicalEmail},
		{"admin_email", &in.AdminEmail}, {"pool", &in.Pool}, {"fallback_pool", &in.FallbackPool},
		{"tls_policy", &in.TLSPolicy}, {"unsubscribe", &in.Unsubscribe}, {"sla_type", &in.SLAType},
	} {
		if v, ok := formValue(r, f.name); ok {
			*f.dst = &v
		}
	}
	var err error
	for _, f := range []struct {
		name, label string
		dst         **bool
	}{
		{"topology_hiding", "Topology hiding", &in.TopologyHiding}, {"anti_spoofing", "Anti-spoofing", &in.AntiSpoofing},
		{"portal_enabled", "Portal open to the customer's users", &in.PortalEnabled},
	} {
		if *f.dst, err = formBool(r, rc, f.name, f.label); err != nil {
			return err
		}
	}
	// The rate limits are replaced as a whole when the form has them: an empty field is the default.
	var rl customer.RateLimits
	dst := map[string]**int{"messages_per_minute": &rl.MessagesPerMinute, "messages_per_hour": &rl.MessagesPerHour,
		"recipients_per_minute": &rl.RecipientsPerMinute, "recipients_per_hour": &rl.RecipientsPerHour, "burst": &rl.Burst}
	for _, f := range limitsOf(customer.RateLimits{}) {
		v, ok := formValue(r, f.Field)
		if !ok {
			continue
		}
		in.RateLimits = &rl
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return rc.inputError("%s: write a whole number (0 for unlimited), or leave it empty for the default.", rc.p.Sprintf(f.Label))
		}
		*dst[f.Field] = &n
	}
	before, err := s.o.Customers.Get(r.Context(), id)
	if err != nil {
		return err
	}
	if _, err := s.o.Customers.Update(r.Context(), id, in); err != nil {
		return err
	}
	s.changed()
	rc.auditCustomer, rc.auditDetail = id, map[string]any{"set": in, "portal_enabled_before": before.PortalEnabled, "name_before": before.Name}
	return redirect(w, r, customerPath(id)+"?done=custsaved")
}

// activateCustomer serves POST /customers/{id}/activate: a pending customer becomes active at once, as
// PATCH {"status": "active"} makes it (an operator forcing the activation before a domain verifies).
func (s *server) activateCustomer(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	c, err := s.o.Customers.Get(r.Context(), id)
	if err != nil {
		return err
	}
	changed, err := s.o.Customers.Activate(r.Context(), id)
	if err != nil {
		return err
	}
	if !changed {
		return &fielderr.Error{Field: "status", Msg: "only a pending customer can be activated; this one is " + string(c.Status), Conflict: true}
	}
	s.changed()
	rc.auditCustomer, rc.auditDetail = id, map[string]string{"status_before": string(c.Status), "status": string(customer.StatusActive)}
	return redirect(w, r, customerPath(id)+"?done=custactivated")
}

func (s *server) addCustomerDomain(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	in := customer.DomainRequest{Domain: strings.TrimSpace(r.PostFormValue("domain"))}
	sub, err := formBool(r, rc, "include_subdomains", "Its subdomains may send too")
	if err != nil {
		return err
	}
	in.IncludeSubdomains = sub != nil && *sub
	d, err := s.o.Customers.AddDomainWith(r.Context(), id, in)
	if err != nil {
		return err
	}
	s.changed()
	rc.auditCustomer, rc.auditDetail = id, map[string]any{"domain": d.Domain, "include_subdomains": d.IncludeSubdomains}
	return redirect(w, r, customerPath(id)+"?done=domadded")
}

func (s *server) removeCustomerDomain(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id, dom := r.PathValue("id"), r.PathValue("domain")
	if err := s.o.Customers.RemoveDomain(r.Context(), id, dom); err != nil {
		return err
	}
	s.changed()
	rc.auditCustomer, rc.auditDetail = id, map[string]string{"domain": dom}
	return redirect(w, r, customerPath(id)+"?done=domremoved")
}

func (s *server) addCustomerRelayHost(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	h, err := s.o.Customers.AddRelayHost(r.Context(), id, r.PostFormValue("host"))
	if err != nil {
		return err
	}
	s.changed()
	rc.auditCustomer, rc.auditDetail = id, map[string]string{"relay_host": h.ID, "host": h.Host}
	return redirect(w, r, customerPath(id)+"?done=hostadded")
}

func (s *server) removeCustomerRelayHost(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id, hid := r.PathValue("id"), r.PathValue("hostid")
	h, err := s.o.Customers.GetRelayHost(r.Context(), id, hid)
	if err != nil {
		return err
	}
	if err := s.o.Customers.RemoveRelayHost(r.Context(), id, hid); err != nil {
		return err
	}
	s.changed()
	rc.auditCustomer, rc.auditDetail = id, map[string]string{"relay_host": h.ID, "host": h.Host}
	return redirect(w, r, customerPath(id)+"?done=hostremoved")
}

func (s *server) addCustomerSourceIP(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	ip, err := s.o.Customers.AddSourceIP(r.Context(), id, r.PostFormValue("cidr"))
	if err != nil {
		return err
	}
	s.changed()
	rc.auditCustomer, rc.auditDetail = id, map[string]string{"source_ip": ip.ID, "cidr": ip.CIDR}
	done := "ipadded"
	if ip.Warning != "" {
		done = "ipnetwork"
	}
	return redirect(w, r, customerPath(id)+"?done="+done)
}

func (s *server) removeCustomerSourceIP(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id, ipid := r.PathValue("id"), r.PathValue("ipid")
	c, err := s.o.Customers.Get(r.Context(), id)
	if err != nil {
		return err
	}
	cidr := ""
	for _, p := range c.SourceIPs {
		if p.ID == ipid {
			cidr = p.CIDR
		}
	}
	if cidr == "" {
		return errNotFound
	}
	if err := s.o.Customers.RemoveSourceIP(r.Context(), id, ipid); err != nil {
		return err
	}
	s.changed()
	rc.auditCustomer, rc.auditDetail = id, map[string]string{"source_ip": ipid, "cidr": cidr}
	return redirect(w, r, customerPath(id)+"?done=ipremoved")
}

// terminationLayouts are the forms of a deactivation date the termination form accepts, in UTC: the
// browser's datetime-local and date inputs, and RFC 3339.
var terminationLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02", time.RFC3339}

func parseTerminationDate(v string) (time.Time, bool) {
	for _, l := range terminationLayouts {
		if t, err := time.ParseInLocation(l, v, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// scheduleTermination serves POST /customers/{id}/termination: deactivation at a date (UTC), or moved.
func (s *server) scheduleTermination(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	v := strings.TrimSpace(r.PostFormValue("deactivate_at"))
	var at time.Time
	if v != "" {
		var ok bool
		if at, ok = parseTerminationDate(v); !ok {
			return rc.inputError("Deactivation date: write it as YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC).")
		}
	}
	before, err := s.o.Customers.Get(r.Context(), id)
	if err != nil {
		return err
	}
	c, err := s.o.Customers.ScheduleTermination(r.Context(), id, at)
	if err != nil {
		return err
	}
	s.changed()
	detail := map[string]any{"status_before": before.Status, "deactivate_at": c.DeactivateAt}
	if before.DeactivateAt != nil {
		detail["deactivate_at_before"] = before.DeactivateAt
	}
	rc.auditCustomer, rc.auditDetail = id, detail
	return redirect(w, r, customerPath(id)+"?done=termscheduled")
}

func (s *server) cancelTermination(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	before, err := s.o.Customers.Get(r.Context(), id)
	if err != nil {
		return err
	}
	c, err := s.o.Customers.CancelTermination(r.Context(), id)
	if err != nil {
		return err
	}
	s.changed()
	rc.auditCustomer, rc.auditDetail = id, map[string]any{"deactivate_at_before": before.DeactivateAt, "status": c.Status}
	return redirect(w, r, customerPath(id)+"?done=termcancelled")
}

// createOnboarding serves POST /customers/{id}/onboarding: a fresh signed link to the customer's
// onboarding page, shown in this answer (the customer page) only. The audit record has its expiry, never
// the link, which is a credential.
func (s *server) createOnboarding(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if s.o.Onboarding == nil {
		return errorf(http.StatusNotFound, "Onboarding links are not available on this server.")
	}
	id := r.PathValue("id")
	v, err := s.customerView(r.Context(), id)
	if err != nil {
		return err
	}
	if v.Ended {
		return &fielderr.Error{Field: "status", Msg: "the customer's service has ended (" + string(v.C.Status) + "): an onboarding link would not work", Conflict: true}
	}
	link := s.o.Onboarding.Link(s.o.Config.API.PublicURL, v.C.ID)
	v.Onboarding = &link
	rc.auditCustomer, rc.auditDetail = id, map[string]any{"onboarding_link_expires_at": link.ExpiresAt}
	// The page is the customer's: its language links come back to it, not to this POST's path.
	page := *r
	u := *r.URL
	u.Path, u.RawPath, u.RawQuery = customerPath(id), "", ""
	page.URL = &u
	return s.render(w, &page, rc, http.StatusOK, "customer", "customers", "Customer", v)
}

// setScanPolicy serves POST /customers/{id}/scan-policy: the policy's settings; its content rules are
// kept (the API and the CLI change them).
func (s *server) setScanPolicy(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	e := s.scanEditor()
	if e == nil {
		return errorf(http.StatusNotFound, "Scanning policies are not available on this server.")
	}
	id := r.PathValue("id")
	if _, err := s.o.Customers.Get(r.Context(), id); err != nil {
		return err
	}
	before := e.Get(id)
	p := before
	for _, f := range scanViewOf(scan.Policy{}, scan.Policy{}).Fields {
		v, ok := formValue(r, f.Field)
		if !ok {
			continue
		}
		if f.Options != nil {
			var sp *string
			if v != "" {
				sp = &v
			}
			switch f.Field {
			case "virus_action":
				p.VirusAction = sp
			case "on_failure":
				p.OnFailure = sp
			case "customer_release":
				p.CustomerRelease = sp
			}
			continue
		}
		var fp *float64
		if v != "" {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return rc.inputError("%s: write a number (0 for never), or leave it empty for the default.", rc.p.Sprintf(f.Label))
			}
			fp = &n
		}
		switch f.Field {
		case "spam_reject_score":
			p.SpamRejectScore = fp
		case "spam_quarantine_score":
			p.SpamQuarantineScore = fp
		case "spam_tag_score":
			p.SpamTagScore = fp
		}
	}
	if err := e.Set(r.Context(), id, p); err != nil {
		var pe *fielderr.Error
		if errors.As(err, &pe) {
			return &pageError{Status: http.StatusUnprocessableEntity, Message: pe.Error(), Field: pe.Field}
		}
		return err
	}
	rc.auditCustomer, rc.auditDetail = id, map[string]any{"before": before, "after": p}
	return redirect(w, r, customerPath(id)+"?done=scansaved")
}
