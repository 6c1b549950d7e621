package portal_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"easymail/internal/api"
	"easymail/internal/portal"
)

// inlineCode finds what a strict CSP would block or what must never be in a page: inline scripts, inline
// event handlers, inline styles and javascript: URLs.
var inlineCode = regexp.MustCompile(`(?i)<script|\son[a-z]+\s*=|\sstyle\s*=|<style|javascript:`)

// checkHTML checks the security headers of an HTML answer and that it holds no inline code.
func checkHTML(t *testing.T, path string, p page) {
	t.Helper()
	if got := p.header.Get("Content-Security-Policy"); got != portal.CSP || !strings.Contains(got, "default-src 'self'") {
		t.Errorf("%s: Content-Security-Policy %q", path, got)
	}
	if p.header.Get("X-Frame-Options") != "DENY" || p.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: security headers %v", path, p.header)
	}
	if loc := inlineCode.FindStringIndex(p.body); loc != nil {
		t.Errorf("%s: inline code %q", path, p.body[loc[0]:min(loc[1]+40, len(p.body))])
	}
}

func TestPortalOverHTTP(t *testing.T) {
	w := newWorld(t)
	var incB api.Incident
	w.n.API(t, "POST", "/incidents", api.IncidentCreate{CustomerID: w.b, Title: "Beta's mail is late", Channel: "phone"}, 201, &incB)

	// The login page: a form with email, password and a hidden CSRF field, its headers, in English and French.
	anon := w.browser(t)
	lp := anon.get("/login")
	checkHTML(t, "/login", lp)
	for _, want := range []string{`name="email"`, `name="password"`, `type="hidden" name="csrf"`, "Password"} {
		if !strings.Contains(lp.body, want) {
			t.Fatalf("login page lacks %q:\n%s", want, lp.body)
		}
	}
	anon.lang = "fr-LU, fr;q=0.9, en;q=0.5"
	if p := anon.get("/login"); !strings.Contains(p.body, "Mot de passe") || !strings.Contains(p.body, `lang="fr"`) {
		t.Fatalf("Accept-Language fr: %s", p.body)
	}
	anon.lang = ""
	if p := anon.get("/messages"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Fatalf("anonymous /messages: %d %v", p.status, p.header)
	}
	// A login POST without the cookie's token is refused, even with the right password.
	if p := w.browser(t).post("/login", url.Values{"csrf": {"forged"}, "email": {"op@ops.test"}, "password": {password}}); p.status != http.StatusForbidden {
		t.Fatalf("login without CSRF cookie: %d", p.status)
	}

	// The operator logs in: a session cookie, HttpOnly and SameSite=Strict, and the dashboard.
	op := w.browser(t)
	lr := op.login("op@ops.test", password)
	if lr.status != http.StatusSeeOther || lr.header.Get("Location") != "/" {
		t.Fatalf("login: %d %v %s", lr.status, lr.header, lr.body)
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: lr.header}).Cookies() {
		if c.Name == "easymail_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.MaxAge <= 0 {
		t.Fatalf("session cookie %+v", cookie)
	}
	pages := []string{"/", "/messages", "/messages?sender=alice%40acme.test", "/messages/" + w.msgA, "/queue", "/quarantine",
		"/suppressions?customer=" + w.a, "/incidents", "/incidents/" + incB.ID, "/sla", "/customers", "/domains?customer=" + w.a,
		"/users", "/account", "/no/such/page"}
	for _, path := range pages {
		p := op.get(path)
		want := http.StatusOK
		if path == "/no/such/page" {
			want = http.StatusNotFound
		}
		if p.status != want {
			t.Errorf("operator GET %s: %d, want %d\n%s", path, p.status, want, p.body)
		}
		checkHTML(t, path, p)
	}
	if p := op.get("/static/portal.css"); p.status != 200 || !strings.Contains(p.header.Get("Content-Type"), "text/css") {
		t.Fatalf("stylesheet: %d %v", p.status, p.header)
	}
	dash := op.get("/").body
	for _, want := range []string{"<svg", "This hour", "Last 7 days", "Scanners", "Beta&#39;s mail is late"} {
		if !strings.Contains(dash, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}

	// Message search and the timeline.
	if p := op.get("/messages?sender=alice%40acme.test"); !strings.Contains(p.body, w.msgA) || strings.Contains(p.body, w.msgB) {
		t.Fatalf("search by sender:\n%s", p.body)
	}
	tl := op.get("/messages/" + w.msgA).body
	for _, want := range []string{"Received", "Attempt 1 to bob@dest.test: delivered", "MX mx.dest.test", "reply: 250", "Finished: delivered",
		`action="/messages/` + w.msgA + `/retry"`} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %q:\n%s", want, tl)
		}
	}

	// CSRF: a change without the token, with another session's, or from another origin is refused.
	tok := op.csrf("/messages/" + w.msgA)
	other := w.browser(t)
	other.mustLogin("op@ops.test")
	otherTok := other.csrf("/")
	for name, f := range map[string]url.Values{"no token": {}, "another session's token": {"csrf": {otherTok}}} {
		if p := op.post("/messages/"+w.msgA+"/hold", f); p.status != http.StatusForbidden || !strings.Contains(p.body, "CSRF") {
			t.Errorf("POST with %s: %d", name, p.status)
		}
	}
	if p := op.do("POST", "/messages/"+w.msgA+"/hold", url.Values{"csrf": {tok}}, map[string]string{"Origin": "http://evil.test"}); p.status != http.StatusForbidden {
		t.Errorf("cross-origin POST: %d", p.status)
	}
	// With the token the action runs: the message is delivered, so the queue refuses it (409), it is no 403.
	if p := op.post("/messages/"+w.msgA+"/retry", url.Values{"csrf": {tok}}); p.status != http.StatusConflict {
		t.Errorf("retry of a delivered message: %d\n%s", p.status, p.body)
	}

	// The expert reads everything and changes nothing.
	ex := w.browser(t)
	ex.mustLogin("ex@ops.test")
	if p := ex.get("/messages/" + w.msgB); p.status != 200 || strings.Contains(p.body, "/retry") {
		t.Fatalf("expert's message page: %d (buttons shown?)", p.status)
	}
	if p := ex.post("/messages/"+w.msgB+"/hold", url.Values{"csrf": {ex.csrf("/")}}); p.status != http.StatusForbidden {
		t.Fatalf("expert's hold: %d", p.status)
	}

	// A customer's user cannot log in until the operator enables its customer's portal, in the portal.
	ua := w.browser(t)
	if p := ua.login("ua@acme.test", password); p.status != http.StatusForbidden {
		t.Fatalf("login with the portal disabled: %d", p.status)
	}
	if p := op.post("/customers/"+w.a+"/portal", url.Values{"csrf": {tok}, "enabled": {"true"}}); p.status != http.StatusSeeOther {
		t.Fatalf("enable the portal: %d %s", p.status, p.body)
	}
	var ca api.Customer
	w.n.API(t, "GET", "/customers/"+w.a, nil, 200, &ca)
	if !ca.PortalEnabled {
		t.Fatal("portal_enabled not set")
	}
	w.enablePortal(t, w.b)
	ua.mustLogin("ua@acme.test")

	// Tenant walls: customer A sees its own and nothing of B's, whatever the URL or the form says.
	if p := ua.get("/messages/" + w.msgA); p.status != 200 || !strings.Contains(p.body, "Attempt 1 to bob@dest.test") {
		t.Fatalf("own message: %d", p.status)
	}
	if p := ua.get("/messages"); !strings.Contains(p.body, w.msgA) || strings.Contains(p.body, w.msgB) {
		t.Fatalf("customer's message list shows another customer's:\n%s", p.body)
	}
	uaTok := ua.csrf("/")
	for _, path := range []string{"/messages/" + w.msgB, "/messages?customer=" + w.b, "/queue?customer=" + w.b,
		"/quarantine?customer=" + w.b, "/quarantine/" + w.msgB, "/suppressions?customer=" + w.b, "/incidents/" + incB.ID,
		"/incidents?customer=" + w.b, "/sla?customer=" + w.b, "/sla.csv?customer=" + w.b, "/domains?customer=" + w.b, "/customers"} {
		if p := ua.get(path); p.status != http.StatusNotFound {
			t.Errorf("customer A GET %s: %d, want 404", path, p.status)
		}
	}
	for path, f := range map[string]url.Values{
		"/messages/" + w.msgB + "/hold":                    {},
		"/messages/" + w.msgA + "/hold":                    {},
		"/quarantine/" + w.msgB + "/release":               {},
		"/incidents/" + incB.ID + "/comment":               {"text": {"hello"}},
		"/incidents/" + incB.ID + "/confirm":               {},
		"/users/" + w.users["ub@beta.test"].ID + "/delete": {},
		"/users":                        {"email": {"x@beta.test"}, "role": {"customer"}, "customer": {w.b}},
		"/customers/" + w.b + "/portal": {"enabled": {"false"}},
		"/suppressions":                 {"customer": {w.b}, "address": {"x@dest.test"}},
	} {
		f.Set("csrf", uaTok)
		if p := ua.post(path, f); p.status != http.StatusNotFound && p.status != http.StatusForbidden {
			t.Errorf("customer A POST %s: %d, want 404 or 403", path, p.status)
		}
	}
	users := ua.get("/users").body
	if !strings.Contains(users, "ua@acme.test") || strings.Contains(users, "ub@beta.test") || strings.Contains(users, "op@ops.test") {
		t.Fatalf("customer's users page:\n%s", users)
	}
	// ... and manages its own users: the new one gets a one-time password, and is A's.
	p := ua.post("/users", url.Values{"csrf": {uaTok}, "email": {"second@acme.test"}, "role": {"customer"}})
	if p.status != http.StatusCreated || !strings.Contains(p.body, "second@acme.test") {
		t.Fatalf("customer adds a user: %d\n%s", p.status, p.body)
	}
	var list []api.PortalUser
	w.n.API(t, "GET", "/users?customer="+w.a, nil, 200, &list)
	if len(list) != 2 {
		t.Fatalf("A's users: %+v", list)
	}
	// Its own incident: reported in the portal, listed, B's is not.
	if p := ua.post("/incidents", url.Values{"csrf": {uaTok}, "title": {"Mail to dest.test is slow"}, "priority": {"P3"}}); p.status != http.StatusSeeOther {
		t.Fatalf("customer reports an incident: %d %s", p.status, p.body)
	}
	if p := ua.get("/incidents?status=all"); !strings.Contains(p.body, "Mail to dest.test is slow") || strings.Contains(p.body, "Beta") {
		t.Fatalf("customer's incidents:\n%s", p.body)
	}

	// Every change is in the audit log with the user.
	var entries []api.AuditEntry
	w.n.API(t, "GET", "/audit?actor=user:op@ops.test", nil, 200, &entries)
	found := false
	for _, e := range entries {
		if e.Action == "portal POST /customers/{id}/portal" && e.CustomerID == w.a && e.ActorRole == "operator" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit entry of the portal change: %+v", entries)
	}

	// Log out everywhere ends the operator's other session too.
	if p := op.post("/logout/all", url.Values{"csrf": {op.csrf("/account")}}); p.status != http.StatusSeeOther {
		t.Fatalf("logout everywhere: %d", p.status)
	}
	for _, b := range []*browser{op, other} {
		if p := b.get("/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
			t.Fatalf("session after logout everywhere: %d", p.status)
		}
	}
}

func TestPortalLoginThrottle(t *testing.T) {
	w := newWorld(t)
	b := w.browser(t)
	for i := range 5 {
		if p := b.login("ex@ops.test", "wrong password, sorry"); p.status != http.StatusUnauthorized {
			t.Fatalf("bad login %d: %d", i, p.status)
		}
	}
	// The account is locked for the window, even with the right password; another account is not.
	if p := b.login("ex@ops.test", password); p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("login after 5 failures: %d %v", p.status, p.header)
	}
	b.mustLogin("op@ops.test")
	// Per client address: 20 failures over many accounts lock the address out.
	c := w.browser(t)
	for i := range 15 {
		c.login("nobody"+string(rune('a'+i))+"@ops.test", "wrong password, sorry")
	}
	if p := c.login("op@ops.test", password); p.status != http.StatusTooManyRequests {
		t.Fatalf("login from an address with 20 failures: %d", p.status)
	}
}
