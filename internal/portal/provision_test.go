package portal_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/config"
	"easymail/internal/testkit"
	"easymail/internal/testkit/testnode"
)

// provWorld is a node for provisioning from the console: customer A (acme.test from 127.0.0.1) with a user,
// an operator and an expert, the fake DNS (to publish a new customer's records) and a fake MX for dest.test.
type provWorld struct {
	*world
	dns *testkit.DNS
	mx  *testkit.MX
}

func newProvWorld(t *testing.T) *provWorld {
	t.Helper()
	dns := testkit.NewDNS(t)
	mxp := testkit.ReserveMXPort(t)
	n := testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), Configure: func(c *config.Config) {
		c.Portal.SecureCookies = false
	}})
	w := &provWorld{world: &world{n: n, users: map[string]api.PortalUser{}}, dns: dns}
	w.a = n.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	w.mx = mxp.NewMX(t, "127.0.0.11")
	dns.AddMX("dest.test", "mx.dest.test", 10)
	dns.AddA("mx.dest.test", "127.0.0.11")
	for _, u := range []api.PortalUserRequest{{Email: "op@ops.test", Role: "operator"}, {Email: "ex@ops.test", Role: "expert"},
		{Email: "ua@acme.test", Role: "customer", CustomerID: w.a}} {
		u.Password = password
		var out api.PortalUser
		n.API(t, "POST", "/users", u, 201, &out)
		w.users[u.Email] = out
	}
	w.enablePortal(t, w.a)
	return w
}

// customer reads a customer through the API.
func (w *world) customer(t *testing.T, id string) api.Customer {
	t.Helper()
	var c api.Customer
	w.n.API(t, "GET", "/customers/"+id, nil, 200, &c)
	return c
}

// staff is a logged-in browser with the CSRF token of its session.
type staff struct {
	*browser
	tok string
}

func (w *world) staffLogin(t *testing.T, email string) *staff {
	t.Helper()
	b := w.browser(t)
	b.mustLogin(email)
	return &staff{browser: b, tok: b.csrf("/customers")}
}

// send posts a form with the session's CSRF token.
func (s *staff) send(path string, kv ...string) page {
	s.t.Helper()
	f := url.Values{"csrf": {s.tok}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Add(kv[i], kv[i+1])
	}
	return s.post(path, f)
}

// done posts a form that must succeed with a redirect to the customer's page with confirmation key.
func (s *staff) done(id, path, key string, kv ...string) {
	s.t.Helper()
	p := s.send(path, kv...)
	if want := "/customers/" + id + "?done=" + key; p.status != http.StatusSeeOther || p.header.Get("Location") != want {
		s.t.Fatalf("POST %s %v: %d %q, want 303 %s\n%s", path, kv, p.status, p.header.Get("Location"), want, p.body)
	}
}

// refused posts a form that must be answered status with an error page containing each of want.
func (s *staff) refused(status int, path string, want []string, kv ...string) {
	s.t.Helper()
	p := s.send(path, kv...)
	if p.status != status {
		s.t.Fatalf("POST %s %v: %d, want %d\n%s", path, kv, p.status, status, p.body)
	}
	for _, w := range want {
		if !strings.Contains(p.body, w) {
			s.t.Fatalf("POST %s %v: the error page lacks %q:\n%s", path, kv, w, p.body)
		}
	}
}

// mustGet gets a page that must answer 200 with the security headers and no inline code.
func (s *staff) mustGet(path string) string {
	s.t.Helper()
	p := s.get(path)
	if p.status != http.StatusOK {
		s.t.Fatalf("GET %s: %d\n%s", path, p.status, p.body)
	}
	checkHTML(s.t, path, p)
	return p.body
}

// mustContain checks that a page has each of want, once its HTML escapes are undone.
func mustContain(t *testing.T, what, body string, want ...string) {
	t.Helper()
	body = html.UnescapeString(body)
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, body)
		}
	}
}

func mustNotContain(t *testing.T, what, body string, bad ...string) {
	t.Helper()
	body = html.UnescapeString(body)
	for _, b := range bad {
		if strings.Contains(body, b) {
			t.Fatalf("%s has %q:\n%s", what, b, body)
		}
	}
}

// publishSPF publishes the operator's SPF records as GET /dns/spf gives them.
func (w *provWorld) publishSPF(t *testing.T) {
	t.Helper()
	var spf api.SPFRecords
	w.n.API(t, "GET", "/dns/spf", nil, 200, &spf)
	for _, r := range spf.Records {
		w.dns.AddTXT(r.Name, r.Value)
	}
}

// TestProvisioningOverHTTP: an operator creates a customer in the console and sets it up on its page —
// settings and limits, domains with their DNS records to publish and live checks (failing, then passing once
// published), relay hosts, source IPs, scanning policy, activation, termination scheduled and cancelled, an
// onboarding link that works — each change audited, bad input answered with an error naming the field (in
// French too); mail from the new source IP for the new domain is accepted. An expert sees the page without
// a form and is refused every change (403); a customer's user gets 404.
func TestProvisioningOverHTTP(t *testing.T) {
	w := newProvWorld(t)
	op := w.staffLogin(t, "op@ops.test")

	body := op.mustGet("/customers")
	mustContain(t, "the customers page", body, `id="new-customer"`, `name="contact_email"`, `<option>default</option>`, `href="/customers/`+w.a+`"`)

	// Creation: bad input is refused with the field named, nothing is created.
	op.refused(http.StatusUnprocessableEntity, "/customers", []string{"name: is required"}, "name", " ", "contact_email", "it@gamma.test")
	op.refused(http.StatusUnprocessableEntity, "/customers", []string{"contact_email", "is not an e-mail address"}, "name", "Gamma", "contact_email", "nope")
	op.refused(http.StatusUnprocessableEntity, "/customers", []string{"pool"}, "name", "Gamma", "contact_email", "it@gamma.test", "pool", "nosuchpool")
	// An error quoting the input shows it as it is: a "%" in it is no format verb.
	op.refused(http.StatusUnprocessableEntity, "/customers", []string{"no%dpool&#34; is not a configured pool"}, "name", "Gamma",
		"contact_email", "it@gamma.test", "pool", "no%dpool")
	var list []api.Customer
	w.n.API(t, "GET", "/customers", nil, 200, &list)
	if len(list) != 1 {
		t.Fatalf("a refused creation created a customer: %+v", list)
	}
	p := op.send("/customers", "name", "Gamma", "contact_email", "it@gamma.test", "technical_email", "noc@gamma.test", "pool", "default",
		"fallback_pool", "", "topology_hiding", "false", "topology_hiding", "true", "anti_spoofing", "false")
	loc := p.header.Get("Location")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/customers/") || !strings.HasSuffix(loc, "?done=custcreated") {
		t.Fatalf("create: %d %q\n%s", p.status, loc, p.body)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(loc, "/customers/"), "?done=custcreated")
	page := "/customers/" + id
	c := w.customer(t, id)
	if c.Name != "Gamma" || c.Status != api.StatusPending || c.ContactEmail != "it@gamma.test" || c.TechnicalEmail != "noc@gamma.test" ||
		c.AdminEmail != "it@gamma.test" || !c.TopologyHiding || c.AntiSpoofing || c.PortalEnabled {
		t.Fatalf("created %+v", c)
	}
	body = op.mustGet(loc)
	mustContain(t, "the new customer's page", body, "The customer was created.", `<h2 id="customer-name">Gamma</h2>`, "pending",
		`id="settings"`, `id="add-domain"`, `id="add-relay-host"`, `id="add-source-ip"`, `id="schedule-termination"`, `id="make-onboarding"`,
		`id="activate"`, `id="scan-form"`, "relay.easymail.test", "No domain.", "No relay host.", "No source IP.", "No termination is scheduled.")

	// Settings and limits.
	settings := []string{"name", "Gamma Ltd", "contact_email", "it@gamma.test", "technical_email", "noc@gamma.test", "admin_email", "",
		"pool", "default", "fallback_pool", "", "tls_policy", "encrypt", "unsubscribe", "delegated", "sla_type", "",
		"topology_hiding", "false", "topology_hiding", "true", "anti_spoofing", "false", "anti_spoofing", "true",
		"portal_enabled", "false", "portal_enabled", "true",
		"messages_per_minute", "30", "messages_per_hour", "", "recipients_per_minute", "", "recipients_per_hour", "1000", "burst", ""}
	op.done(id, page, "custsaved", settings...)
	c = w.customer(t, id)
	rl := c.RateLimits
	if c.Name != "Gamma Ltd" || c.TLSPolicy != "encrypt" || c.Unsubscribe != "delegated" || !c.AntiSpoofing || !c.PortalEnabled ||
		c.AdminEmail != "it@gamma.test" || rl.MessagesPerMinute == nil || *rl.MessagesPerMinute != 30 || rl.RecipientsPerHour == nil ||
		*rl.RecipientsPerHour != 1000 || rl.MessagesPerHour != nil || rl.Burst != nil {
		t.Fatalf("after the settings: %+v %+v", c, rl)
	}
	body = op.mustGet(page + "?done=custsaved")
	mustContain(t, "the page after the settings", body, "The customer's settings were saved.", "Gamma Ltd", `name="messages_per_minute" value="30"`,
		`<option value="encrypt" selected>`, `name="portal_enabled" value="true" checked`)
	op.refused(http.StatusUnprocessableEntity, page, []string{"Messages per minute: write a whole number"}, "messages_per_minute", "lots")
	op.refused(http.StatusUnprocessableEntity, page, []string{"rate_limits.burst"}, "burst", "-3")
	op.refused(http.StatusUnprocessableEntity, page, []string{"tls_policy"}, "tls_policy", "bogus")
	op.refused(http.StatusUnprocessableEntity, page, []string{"name: is required"}, "name", "")
	op.refused(http.StatusUnprocessableEntity, page, []string{"sla_type"}, "sla_type", "platinum")
	op.lang = "fr"
	op.refused(http.StatusUnprocessableEntity, page, []string{"Messages par minute : écrivez un nombre entier"}, "messages_per_minute", "lots")
	op.lang = ""
	if c2 := w.customer(t, id); c2.Name != "Gamma Ltd" || *c2.RateLimits.MessagesPerMinute != 30 {
		t.Fatalf("a refused change changed the customer: %+v", c2)
	}

	// Domains: the records to publish and the live checks.
	op.refused(http.StatusUnprocessableEntity, page+"/domains", []string{"domain"}, "domain", "not a domain")
	op.refused(http.StatusConflict, page+"/domains", []string{"domain", "acme.test"}, "domain", "acme.test")
	op.done(id, page+"/domains", "domadded", "domain", "gamma.test")
	op.done(id, page+"/domains", "domadded", "domain", "gamma-old.test", "include_subdomains", "false", "include_subdomains", "true")
	c = w.customer(t, id)
	if len(c.Domains) != 2 || c.Domains[0].Domain != "gamma-old.test" || !c.Domains[0].IncludeSubdomains || c.Domains[1].DKIM == nil {
		t.Fatalf("domains: %+v", c.Domains)
	}
	dkim := c.Domains[1].DKIM
	body = op.mustGet(page + "?done=domadded")
	mustContain(t, "the page with domains", body, "The domain was added", "<h3>gamma.test</h3>", "include:_spf.easymail.test",
		`gamma.test TXT "v=spf1 mx include:_spf.easymail.test ~all"`, dkim.Name+` TXT "`+dkim.Value+`"`,
		`_dmarc.gamma.test TXT "v=DMARC1; p=none; rua=mailto:noc@gamma.test"`, "SPF: fail", "DKIM: fail", "Not ready yet", "and its subdomains")
	w.publishSPF(t)
	w.dns.AddTXT("gamma.test", "v=spf1 include:_spf.easymail.test -all")
	w.dns.AddTXT(dkim.Name, dkim.Value)
	w.dns.AddTXT("_dmarc.gamma.test", "v=DMARC1; p=reject")
	body = op.mustGet(page)
	i := strings.Index(body, "<h3>gamma.test</h3>")
	if i < 0 {
		t.Fatalf("no gamma.test section:\n%s", body)
	}
	mustContain(t, "gamma.test once published", body[i:], "SPF: pass", "DKIM: pass", "DMARC: pass", "Ready to send")
	op.done(id, page+"/domains/gamma-old.test/remove", "domremoved")
	if c = w.customer(t, id); len(c.Domains) != 1 || c.Domains[0].Domain != "gamma.test" {
		t.Fatalf("after the removal: %+v", c.Domains)
	}
	op.refused(http.StatusNotFound, page+"/domains/gamma-old.test/remove", []string{"Not found"})

	// Relay hosts: a name, resolved by the reload after the change.
	w.dns.AddA("mta.gamma.test", "127.0.0.8")
	op.refused(http.StatusUnprocessableEntity, page+"/relay-hosts", []string{"host"}, "host", "bad host!")
	op.done(id, page+"/relay-hosts", "hostadded", "host", "mta.gamma.test")
	op.done(id, page+"/relay-hosts", "hostadded", "host", "127.0.0.9")
	op.refused(http.StatusConflict, page+"/relay-hosts", []string{"already a relay host"}, "host", "mta.gamma.test")
	c = w.customer(t, id)
	if len(c.RelayHosts) != 2 || c.RelayHosts[0].Host != "mta.gamma.test" {
		t.Fatalf("relay hosts: %+v", c.RelayHosts)
	}
	body = op.mustGet(page)
	mustContain(t, "the relay hosts", body, "<code>mta.gamma.test</code>", "127.0.0.8", "<code>127.0.0.9</code>")
	op.done(id, page+"/relay-hosts/"+c.RelayHosts[1].ID+"/remove", "hostremoved")
	if c = w.customer(t, id); len(c.RelayHosts) != 1 {
		t.Fatalf("after the removal: %+v", c.RelayHosts)
	}

	// Source IPs.
	op.refused(http.StatusUnprocessableEntity, page+"/source-ips", []string{"cidr"}, "cidr", "garbage")
	op.refused(http.StatusConflict, page+"/source-ips", []string{"cidr"}, "cidr", "127.0.0.1")
	op.done(id, page+"/source-ips", "ipadded", "cidr", "127.0.0.7")
	op.done(id, page+"/source-ips", "ipnetwork", "cidr", "127.0.9.5/24")
	c = w.customer(t, id)
	if len(c.SourceIPs) != 2 || c.SourceIPs[0].CIDR != "127.0.0.7/32" || c.SourceIPs[1].CIDR != "127.0.9.0/24" {
		t.Fatalf("source IPs: %+v", c.SourceIPs)
	}
	mustContain(t, "the source IPs", op.mustGet(page+"?done=ipnetwork"), "stored as its network address", "<code>127.0.9.0/24</code>")
	op.done(id, page+"/source-ips/"+c.SourceIPs[1].ID+"/remove", "ipremoved")
	op.refused(http.StatusNotFound, page+"/source-ips/"+c.SourceIPs[1].ID+"/remove", []string{"Not found"})

	// Mail from the new source IP for the new domain is accepted.
	qid := sendMail(t, w.n.SMTPAddr, "127.0.0.7", "ann@gamma.test", "bob@dest.test", "Hello from Gamma")
	var tr api.Trace
	w.n.API(t, "GET", "/messages/"+qid, nil, 200, &tr)
	if tr.CustomerID != id {
		t.Fatalf("the message from 127.0.0.7 is %+v", tr)
	}

	// Scanning policy.
	op.refused(http.StatusUnprocessableEntity, page+"/scan-policy", []string{"Spam score refused from: write a number"}, "spam_reject_score", "high")
	op.refused(http.StatusUnprocessableEntity, page+"/scan-policy", []string{"customer_release"}, "customer_release", "everything")
	op.done(id, page+"/scan-policy", "scansaved", "spam_reject_score", "15", "spam_quarantine_score", "", "spam_tag_score", "",
		"virus_action", "quarantine", "on_failure", "", "customer_release", "except_virus")
	var sp api.CustomerScanPolicy
	w.n.API(t, "GET", "/customers/"+id+"/scan-policy", nil, 200, &sp)
	if p := sp.Policy; p.SpamRejectScore == nil || *p.SpamRejectScore != 15 || p.SpamQuarantineScore != nil || p.VirusAction == nil ||
		*p.VirusAction != "quarantine" || p.CustomerRelease == nil || *p.CustomerRelease != "except_virus" || p.OnFailure != nil {
		t.Fatalf("scan policy: %+v", sp.Policy)
	}
	mustContain(t, "the scanning policy", op.mustGet(page), `name="spam_reject_score" value="15"`, `<option value="except_virus" selected>`)

	// Activation.
	op.done(id, page+"/activate", "custactivated")
	if c = w.customer(t, id); c.Status != api.StatusActive || c.ActivatedAt == nil {
		t.Fatalf("after the activation: %+v", c)
	}
	op.refused(http.StatusConflict, page+"/activate", []string{"only a pending customer"})

	// Termination: scheduled, moved, cancelled.
	at := time.Now().UTC().AddDate(0, 2, 0).Truncate(time.Minute)
	op.refused(http.StatusUnprocessableEntity, page+"/termination", []string{"Deactivation date: write it as"}, "deactivate_at", "soon")
	op.refused(http.StatusUnprocessableEntity, page+"/termination", []string{"deactivate_at", "not in the future"}, "deactivate_at", "2001-01-01")
	op.refused(http.StatusUnprocessableEntity, page+"/termination", []string{"deactivate_at", "is required"}, "deactivate_at", "")
	op.refused(http.StatusConflict, page+"/termination/cancel", []string{"no termination to cancel"})
	op.done(id, page+"/termination", "termscheduled", "deactivate_at", at.Format("2006-01-02T15:04"))
	if c = w.customer(t, id); c.Status != api.StatusTerminating || c.DeactivateAt == nil || !c.DeactivateAt.Equal(at) {
		t.Fatalf("after scheduling: %+v", c)
	}
	body = op.mustGet(page)
	mustContain(t, "the terminating customer", body, "terminating", "The service ends on "+at.Format("2006-01-02 15:04:05Z"),
		`id="cancel-termination"`, "Move the date")
	at = at.AddDate(0, 0, 7)
	op.done(id, page+"/termination", "termscheduled", "deactivate_at", at.Format("2006-01-02"))
	if c = w.customer(t, id); !c.DeactivateAt.Equal(time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after moving the date: %+v", c)
	}
	op.done(id, page+"/termination/cancel", "termcancelled")
	if c = w.customer(t, id); c.Status != api.StatusActive || c.DeactivateAt != nil {
		t.Fatalf("after the cancellation: %+v", c)
	}

	// The onboarding link: shown in the answer, and it works.
	p = op.send(page + "/onboarding")
	if p.status != http.StatusOK {
		t.Fatalf("onboarding: %d\n%s", p.status, p.body)
	}
	checkHTML(t, page+"/onboarding", p)
	i = strings.Index(p.body, `id="onboarding-link" href="`)
	if i < 0 {
		t.Fatalf("no onboarding link:\n%s", p.body)
	}
	link := p.body[i+len(`id="onboarding-link" href="`):]
	link = link[:strings.IndexByte(link, '"')]
	if !strings.HasPrefix(link, w.n.APIURL+"/onboard/") {
		t.Fatalf("onboarding link %q", link)
	}
	mustContain(t, "the onboarding answer", p.body, "Onboarding link, valid until", "/lang/fr?back=%2Fcustomers%2F"+id+`"`)
	anon := w.browser(t)
	anon.base = ""
	if op := anon.get(link); op.status != http.StatusOK || !strings.Contains(op.body, "Easymail setup for Gamma Ltd") ||
		!strings.Contains(op.body, "mta.gamma.test") {
		t.Fatalf("the onboarding link answers %d:\n%s", op.status, op.body)
	}

	// Every change is audited with the user and the customer; the link itself is not in the log.
	var entries []api.AuditEntry
	w.n.API(t, "GET", "/audit?customer="+id+"&limit=200", nil, 200, &entries)
	actions := map[string]int{}
	for _, e := range entries {
		if e.ActorToken == "user:op@ops.test" {
			actions[e.Action]++
		}
		if strings.Contains(string(e.After), "/onboard/") {
			t.Fatalf("the onboarding link is in the audit log: %s", e.After)
		}
	}
	for action, n := range map[string]int{"portal POST /customers": 1, "portal POST /customers/{id}": 1, "portal POST /customers/{id}/domains": 2,
		"portal POST /customers/{id}/domains/{domain}/remove": 1, "portal POST /customers/{id}/relay-hosts": 2,
		"portal POST /customers/{id}/relay-hosts/{hostid}/remove": 1, "portal POST /customers/{id}/source-ips": 2,
		"portal POST /customers/{id}/source-ips/{ipid}/remove": 1, "portal POST /customers/{id}/scan-policy": 1,
		"portal POST /customers/{id}/activate": 1, "portal POST /customers/{id}/termination": 2,
		"portal POST /customers/{id}/termination/cancel": 1, "portal POST /customers/{id}/onboarding": 1} {
		if actions[action] != n {
			t.Errorf("audit: %d entries %q, want %d (all: %v)", actions[action], action, n, actions)
		}
	}

	// An unknown customer is 404 for the operator.
	if p := op.get("/customers/nosuch"); p.status != http.StatusNotFound {
		t.Fatalf("unknown customer: %d", p.status)
	}
	op.refused(http.StatusNotFound, "/customers/nosuch/domains", []string{"Not found"}, "domain", "x.test")
	op.refused(http.StatusNotFound, "/customers/nosuch", []string{"Not found"}, "name", "X")

	// The expert sees everything, no form, and every change is refused.
	ex := w.staffLogin(t, "ex@ops.test")
	body = ex.mustGet("/customers")
	mustNotContain(t, "the expert's customers page", body, `id="new-customer"`, `action="/customers`)
	body = ex.mustGet(page)
	mustContain(t, "the expert's customer page", body, "Gamma Ltd", "<h3>gamma.test</h3>", dkim.Name+" TXT", "SPF: pass", "DKIM: pass",
		"<code>mta.gamma.test</code>", "<code>127.0.0.7/32</code>", "Scanning policy", "No termination is scheduled.")
	mustNotContain(t, "the expert's customer page", body, `action="/customers`, `id="make-onboarding"`, `id="activate"`)
	if n := strings.Count(body, "<form"); n != 1 {
		t.Fatalf("the expert's customer page has %d forms, want the logout form only:\n%s", n, body)
	}
	hid := c.RelayHosts[0].ID
	for _, path := range []string{"/customers", page, page + "/activate", page + "/domains", page + "/domains/gamma.test/remove",
		page + "/relay-hosts", page + "/relay-hosts/" + hid + "/remove", page + "/source-ips", page + "/source-ips/" + c.SourceIPs[0].ID + "/remove",
		page + "/termination", page + "/termination/cancel", page + "/onboarding", page + "/scan-policy", page + "/portal"} {
		ex.refused(http.StatusForbidden, path, []string{"Your role may not change anything."}, "name", "Hacked", "domain", "evil.test",
			"host", "127.0.0.20", "cidr", "127.0.0.21", "deactivate_at", "2099-01-01", "spam_reject_score", "1", "enabled", "false")
	}
	if after := w.customer(t, id); after.Name != "Gamma Ltd" || len(after.Domains) != 1 || len(after.RelayHosts) != 1 || len(after.SourceIPs) != 1 ||
		after.Status != api.StatusActive || !after.PortalEnabled {
		t.Fatalf("the expert's POSTs changed the customer: %+v", after)
	}

	// A customer's user: neither this customer nor its own exists on these paths.
	ua := w.browser(t)
	ua.mustLogin("ua@acme.test")
	tok := ua.csrf("/account")
	for _, path := range []string{page, "/customers/" + w.a} {
		if p := ua.get(path); p.status != http.StatusNotFound {
			t.Fatalf("customer user GET %s: %d", path, p.status)
		}
	}
	for _, path := range []string{"/customers", page, "/customers/" + w.a + "/domains", page + "/source-ips", "/customers/" + w.a + "/onboarding"} {
		if p := ua.post(path, url.Values{"csrf": {tok}, "name": {"X"}, "contact_email": {"x@x.test"}, "domain": {"ua.test"}, "cidr": {"127.0.0.22"}}); p.status != http.StatusNotFound {
			t.Fatalf("customer user POST %s: %d", path, p.status)
		}
	}
	if a := w.customer(t, w.a); len(a.Domains) != 1 || len(a.SourceIPs) != 1 {
		t.Fatalf("the customer user's POSTs changed its customer: %+v", a)
	}
	w.n.API(t, "GET", "/customers", nil, 200, &list)
	if len(list) != 2 {
		t.Fatalf("customers: %+v", list)
	}
}
