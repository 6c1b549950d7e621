package portal_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/config"
	"easymail/internal/testkit"
	"easymail/internal/testkit/testnode"
)

// opsWorld is a node for the operator console: pool "default" (127.0.0.1) and pool "bulk" (127.0.0.2, warming
// up), the DNSBL zone bl.test, provider "slowprov" (MX *.slow.test, at a fake MX on 127.0.0.11), customers A
// and B, and an operator, an expert and a user of A.
type opsWorld struct {
	*world
	dns  *testkit.DNS
	slow *testkit.MX
}

func newOpsWorld(t *testing.T) *opsWorld {
	t.Helper()
	dns := testkit.NewDNS(t)
	mxp := testkit.ReserveMXPort(t)
	n := testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), Configure: func(c *config.Config) {
		c.Portal.SecureCookies = false
		c.Pools = append(c.Pools, config.Pool{Name: "bulk", IPs: []config.PoolAddr{{Address: "127.0.0.2", HELO: "out2.easymail.test", Warmup: []int{10, 20}}}})
		c.RBL.Zones = []config.RBLZone{{Zone: "bl.test"}}
		c.RBL.Interval = time.Hour
		c.Shaping.Providers = []config.Provider{{Name: "slowprov", MX: []string{"*.slow.test"}, PerMinute: 100}}
		c.Shaping.PauseBase = time.Hour
		c.Shaping.PauseMax = 4 * time.Hour
	}})
	w := &opsWorld{world: &world{n: n, users: map[string]api.PortalUser{}}, dns: dns}
	w.a = n.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	w.b = n.AddCustomer(t, "Beta", "beta.test", "127.0.0.3")
	w.slow = mxp.NewMX(t, "127.0.0.11")
	dns.AddA("mx1.slow.test", "127.0.0.11")
	dns.AddMX("a.test", "mx1.slow.test", 10)
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

// waitStatus waits for a message to reach status.
func (w *opsWorld) waitStatus(t *testing.T, id, status string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var tr api.Trace
		w.n.API(t, "GET", "/messages/"+id, nil, 200, &tr)
		if tr.Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s is %s, want %s", id, tr.Status, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *opsWorld) ip(t *testing.T, addr string) api.IP {
	t.Helper()
	var ip api.IP
	w.n.API(t, "GET", "/ips/"+addr, nil, 200, &ip)
	return ip
}

func (w *opsWorld) slowPair(t *testing.T) api.ProviderState {
	t.Helper()
	var provs []api.ProviderState
	w.n.API(t, "GET", "/providers", nil, 200, &provs)
	if len(provs) != 1 || provs[0].Name != "slowprov" {
		t.Fatalf("providers %+v", provs)
	}
	return provs[0]
}

// apiStatus calls the API with a bearer token and returns the status.
func apiStatus(t *testing.T, base, token, path string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1"+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

var (
	secretShown = regexp.MustCompile(`<code class="secret">(em_[a-z2-7]+)</code>`)
	auditRowID  = regexp.MustCompile(`<tr id="audit-([^"]+)">`)
)

// TestOperatorConsolePages: the pools, provider shaping, API token and audit pages. Operators pause, drain
// and resume an IP and a provider pair, create and revoke a token whose secret is shown once and then works
// against the API; experts see the same pages without a form, and are refused the changes; a customer's user
// finds none of it; every change is in the audit page, which filters and pages.
func TestOperatorConsolePages(t *testing.T) {
	w := newOpsWorld(t)
	op, ex, ua := w.browser(t), w.browser(t), w.browser(t)
	op.mustLogin("op@ops.test")
	ex.mustLogin("ex@ops.test")
	ua.mustLogin("ua@acme.test")
	opTok, exTok, uaTok := op.csrf("/"), ex.csrf("/"), ua.csrf("/")
	pages := []string{"/pools", "/providers", "/tokens", "/audit"}
	for _, path := range pages {
		for who, b := range map[string]*browser{"operator": op, "expert": ex} {
			p := b.get(path)
			if p.status != http.StatusOK {
				t.Fatalf("%s GET %s: %d\n%s", who, path, p.status, p.body)
			}
			checkHTML(t, path, p)
			if !strings.Contains(p.body, `href="`+path+`" aria-current="page"`) {
				t.Errorf("%s GET %s: no current nav link", who, path)
			}
		}
		// What a customer's user may not see does not exist for it, and is not in its menu.
		if p := ua.get(path); p.status != http.StatusNotFound {
			t.Errorf("customer user GET %s: %d, want 404", path, p.status)
		}
		if strings.Contains(ua.get("/").body, `href="`+path+`"`) {
			t.Errorf("customer user's menu links %s", path)
		}
	}

	// Provider shaping: slowprov answers 421, the pair 127.0.0.1 × slowprov is paused.
	w.slow.FailNext(1, 421, [3]int{4, 7, 0}, "Try again later, too many messages from your IP")
	msg := sendMail(t, w.n.SMTPAddr, "127.0.0.1", "alice@acme.test", "ann@a.test", "To a slow provider")
	w.waitStatus(t, msg, "deferred")
	if pr := w.slowPair(t); len(pr.IPs) != 1 || !pr.IPs[0].Paused {
		t.Fatalf("slowprov after a 421: %+v", pr)
	}
	resumeForm := `action="/providers/slowprov/ips/127.0.0.1/resume"`
	pp := op.get("/providers").body
	for _, want := range []string{"slowprov", "*.slow.test", "paused until", "Try again later, too many messages", resumeForm, "100 / unlimited"} {
		if !strings.Contains(pp, want) {
			t.Errorf("operator's providers page lacks %q:\n%s", want, pp)
		}
	}
	if p := ex.get("/providers").body; !strings.Contains(p, "paused until") || strings.Contains(p, "/resume") {
		t.Errorf("expert's providers page: pause not shown, or a resume form:\n%s", p)
	}
	if p := ex.post("/providers/slowprov/ips/127.0.0.1/resume", url.Values{"csrf": {exTok}}); p.status != http.StatusForbidden {
		t.Fatalf("expert's provider resume: %d", p.status)
	}
	if p := ua.post("/providers/slowprov/ips/127.0.0.1/resume", url.Values{"csrf": {uaTok}}); p.status != http.StatusNotFound {
		t.Fatalf("customer user's provider resume: %d", p.status)
	}
	if pr := w.slowPair(t); !pr.IPs[0].Paused {
		t.Fatal("a refused resume resumed the pair")
	}
	if p := op.post("/providers/nosuch/ips/127.0.0.1/resume", url.Values{"csrf": {opTok}}); p.status != http.StatusNotFound {
		t.Fatalf("resume of an unknown provider: %d", p.status)
	}
	p := op.post("/providers/slowprov/ips/127.0.0.1/resume", url.Values{"csrf": {opTok}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/providers?done=provresume" {
		t.Fatalf("operator's provider resume: %d %v", p.status, p.header)
	}
	if pr := w.slowPair(t); pr.IPs[0].Paused || pr.IPs[0].Share != 1 {
		t.Fatalf("slowprov after the resume: %+v", pr)
	}
	// The deferred message goes now; the page says the pair sends.
	w.waitStatus(t, msg, "delivered")
	if p := op.get("/providers?done=provresume").body; !strings.Contains(p, "The pause for this provider has ended.") ||
		!strings.Contains(p, "sending") || strings.Contains(p, "paused until") {
		t.Errorf("providers page after the resume:\n%s", p)
	}

	// Pools and IPs: states, warm-up progress, a DNSBL listing with since-when.
	w.dns.AddA("2.0.0.127.bl.test", "127.0.0.2")
	w.dns.AddTXT("2.0.0.127.bl.test", "Listed for testing")
	w.n.API(t, "POST", "/ips/127.0.0.2/check", nil, 200, nil)
	listed := w.ip(t, "127.0.0.2")
	if listed.State != "listed" || len(listed.Listings) != 1 {
		t.Fatalf("127.0.0.2 after the check: %+v", listed)
	}
	pools := op.get("/pools").body
	for _, want := range []string{"Pool default: 1 IPs, 1 in rotation", "Pool bulk: 1 IPs, 0 in rotation", "out1.easymail.test",
		"bl.test", "Listed for testing", "since " + listed.Listings[0].Since.Format("2006-01-02 15:04:05Z"),
		"day 1 of 2: 0 of 10 today", `action="/pools/ips/127.0.0.1/pause"`, `action="/pools/ips/127.0.0.1/drain"`, `name="reason"`} {
		if !strings.Contains(pools, want) {
			t.Errorf("operator's pools page lacks %q:\n%s", want, pools)
		}
	}
	if p := ex.get("/pools").body; !strings.Contains(p, "bl.test") || strings.Contains(p, "/pools/ips/") {
		t.Errorf("expert's pools page: listing not shown, or forms:\n%s", p)
	}
	for _, action := range []string{"pause", "drain", "resume"} {
		path := "/pools/ips/127.0.0.1/" + action
		if p := ex.post(path, url.Values{"csrf": {exTok}, "reason": {"expert"}}); p.status != http.StatusForbidden {
			t.Errorf("expert POST %s: %d, want 403", path, p.status)
		}
		if p := ua.post(path, url.Values{"csrf": {uaTok}}); p.status != http.StatusNotFound {
			t.Errorf("customer user POST %s: %d, want 404", path, p.status)
		}
	}
	if ip := w.ip(t, "127.0.0.1"); ip.State != "active" {
		t.Fatalf("127.0.0.1 after refused changes: %s", ip.State)
	}
	for path, want := range map[string]int{"/pools/ips/203.0.113.9/pause": 404, "/pools/ips/not-an-ip/pause": 422, "/pools/ips/127.0.0.1/reboot": 404} {
		if p := op.post(path, url.Values{"csrf": {opTok}}); p.status != want {
			t.Errorf("operator POST %s: %d, want %d", path, p.status, want)
		}
	}
	if p := op.post("/pools/ips/127.0.0.1/pause", url.Values{"csrf": {opTok}, "reason": {strings.Repeat("x", 301)}}); p.status != http.StatusUnprocessableEntity ||
		!strings.Contains(p.body, "reason") {
		t.Errorf("a 301-byte reason: %d", p.status)
	}
	p = op.post("/pools/ips/127.0.0.1/pause", url.Values{"csrf": {opTok}, "reason": {"maintenance window"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/pools?done=ippause" {
		t.Fatalf("operator's pause: %d %v %s", p.status, p.header, p.body)
	}
	if ip := w.ip(t, "127.0.0.1"); ip.State != "paused" || !strings.Contains(ip.Reason, "maintenance window") {
		t.Fatalf("127.0.0.1 after the pause: %s %q", ip.State, ip.Reason)
	}
	pools = op.get("/pools?done=ippause").body
	for _, want := range []string{"The IP is paused.", "Pool default: 1 IPs, 0 in rotation", "maintenance window", `action="/pools/ips/127.0.0.1/resume"`} {
		if !strings.Contains(pools, want) {
			t.Errorf("pools page after the pause lacks %q", want)
		}
	}
	if p := op.post("/pools/ips/127.0.0.1/drain", url.Values{"csrf": {opTok}}); p.status != http.StatusSeeOther || w.ip(t, "127.0.0.1").State != "draining" {
		t.Fatalf("operator's drain: %d", p.status)
	}
	if p := op.post("/pools/ips/127.0.0.1/resume", url.Values{"csrf": {opTok}}); p.status != http.StatusSeeOther || w.ip(t, "127.0.0.1").State != "active" {
		t.Fatalf("operator's resume: %d", p.status)
	}
	op.lang = "fr"
	if p := op.get("/pools").body; !strings.Contains(p, "Pools et IP") || !strings.Contains(p, "jour 1 sur 2") {
		t.Errorf("French pools page:\n%s", p)
	}
	op.lang = ""

	// API tokens: the secret is shown once, works, and is gone from every page after.
	if p := ex.get("/tokens").body; strings.Contains(p, `action="/tokens`) {
		t.Errorf("expert's tokens page has forms:\n%s", p)
	}
	if p := ex.post("/tokens", url.Values{"csrf": {exTok}, "role": {"operator"}, "name": {"mine"}}); p.status != http.StatusForbidden {
		t.Fatalf("expert creates a token: %d", p.status)
	}
	if p := ua.post("/tokens", url.Values{"csrf": {uaTok}, "role": {"customer"}, "customer": {w.a}}); p.status != http.StatusNotFound {
		t.Fatalf("customer user creates a token: %d", p.status)
	}
	if p := op.post("/tokens", url.Values{"csrf": {opTok}, "role": {"customer"}, "name": {"no customer"}}); p.status != http.StatusUnprocessableEntity {
		t.Fatalf("customer token without a customer: %d", p.status)
	}
	p = op.post("/tokens", url.Values{"csrf": {opTok}, "role": {"customer"}, "customer": {w.a}, "name": {"acme ci"}})
	m := secretShown.FindStringSubmatch(p.body)
	if p.status != http.StatusCreated || m == nil || p.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("operator creates a token: %d %v\n%s", p.status, p.header, p.body)
	}
	secret := m[1]
	var tokens []api.Token
	w.n.API(t, "GET", "/tokens", nil, 200, &tokens)
	var tok api.Token
	for _, x := range tokens {
		if x.Name == "acme ci" {
			tok = x
		}
	}
	if tok.ID == "" || tok.Role != "customer" || tok.CustomerID != w.a || !strings.Contains(p.body, tok.ID) {
		t.Fatalf("tokens %+v", tokens)
	}
	if s := apiStatus(t, w.n.APIURL, secret, "/customers/"+w.a); s != http.StatusOK {
		t.Fatalf("the new token on its customer: %d", s)
	}
	if s := apiStatus(t, w.n.APIURL, secret, "/customers/"+w.b); s != http.StatusNotFound && s != http.StatusForbidden {
		t.Fatalf("the new token on another customer: %d", s)
	}
	for _, b := range []*browser{op, ex} {
		if p := b.get("/tokens"); strings.Contains(p.body, secret) || !strings.Contains(p.body, "acme ci") {
			t.Fatalf("the tokens page again: secret shown, or token missing")
		}
	}
	if p := ex.post("/tokens/"+tok.ID+"/revoke", url.Values{"csrf": {exTok}}); p.status != http.StatusForbidden {
		t.Fatalf("expert revokes: %d", p.status)
	}
	if p := ua.post("/tokens/"+tok.ID+"/revoke", url.Values{"csrf": {uaTok}}); p.status != http.StatusNotFound {
		t.Fatalf("customer user revokes: %d", p.status)
	}
	if s := apiStatus(t, w.n.APIURL, secret, "/customers/"+w.a); s != http.StatusOK {
		t.Fatalf("the token after refused revocations: %d", s)
	}
	if p := op.post("/tokens/nosuch/revoke", url.Values{"csrf": {opTok}}); p.status != http.StatusNotFound {
		t.Fatalf("revoke of an unknown token: %d", p.status)
	}
	if p := op.post("/tokens/"+tok.ID+"/revoke", url.Values{"csrf": {opTok}}); p.status != http.StatusSeeOther {
		t.Fatalf("operator revokes: %d %s", p.status, p.body)
	}
	if s := apiStatus(t, w.n.APIURL, secret, "/customers/"+w.a); s != http.StatusUnauthorized {
		t.Fatalf("the revoked token: %d", s)
	}
	if p := op.get("/tokens").body; strings.Contains(p, `action="/tokens/`+tok.ID+`/revoke"`) {
		t.Error("a revoked token still has a revoke button")
	}

	// The audit page: every change above with its user, never a secret; filters by customer, actor, action
	// and time; pages without repeating or losing an entry.
	all := op.get("/audit?actor=user:op@ops.test&size=200").body
	for _, want := range []string{"portal POST /providers/{name}/ips/{addr}/resume", "portal POST /pools/ips/{addr}/{action}",
		"/pools/ips/127.0.0.1/pause", "maintenance window", "portal POST /tokens/{id}/revoke", tok.ID} {
		if !strings.Contains(all, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
	var entries []api.AuditEntry
	w.n.API(t, "GET", "/audit?action=portal+POST+/tokens", nil, 200, &entries)
	for _, e := range entries {
		if strings.Contains(string(e.After), secret) || strings.Contains(string(e.Before), secret) {
			t.Fatalf("the secret is in the audit log: %+v", e)
		}
	}
	if len(entries) != 2 {
		t.Fatalf("token audit entries: %+v", entries)
	}
	byA := op.get("/audit?customer=" + w.a).body
	if !strings.Contains(byA, "portal POST /tokens") || strings.Contains(byA, "/pools/ips/") || strings.Contains(byA, "/providers/") {
		t.Errorf("audit filtered by customer A:\n%s", byA)
	}
	if p := ex.get("/audit?action=" + url.QueryEscape("POST /pools") + "&until=2000-01-01"); !strings.Contains(p.body, "No entry matches.") {
		t.Errorf("audit before 2000:\n%s", p.body)
	}
	if p := ex.get("/audit?since=yesterday"); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "since") {
		t.Errorf("a bad since: %d", p.status)
	}
	for _, q := range []string{"size=0", "size=201", "before=x", "actor=" + strings.Repeat("a", 201)} {
		if p := ex.get("/audit?" + q); p.status != http.StatusUnprocessableEntity {
			t.Errorf("audit?%s: %d, want 422", q, p.status)
		}
	}
	want := auditRowID.FindAllStringSubmatch(all, -1)
	// The login, the provider resume, the pause, drain and resume, the token's creation and revocation.
	if len(want) != 7 {
		t.Fatalf("%d audit rows, want 7:\n%s", len(want), all)
	}
	next, seen, pageNo := "/audit?actor=user:op@ops.test&size=3", 0, 0
	for next != "" {
		p := op.get(next)
		pageNo++
		if hasNewest := strings.Contains(p.body, "Newest entries"); hasNewest != (pageNo > 1) {
			t.Fatalf("page %d: link to the newest entries %v", pageNo, hasNewest)
		}
		rows := auditRowID.FindAllStringSubmatch(p.body, -1)
		for _, r := range rows {
			if seen >= len(want) || r[1] != want[seen][1] {
				t.Fatalf("page %s: entry %d is %s, want the list's order", next, seen, r[1])
			}
			seen++
		}
		next = ""
		if m := regexp.MustCompile(`href="(/audit\?[^"]*before=[^"]*)">Older entries`).FindStringSubmatch(p.body); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
			if len(rows) != 3 {
				t.Fatalf("page %d is not the last and has %d rows", pageNo, len(rows))
			}
		}
	}
	if seen != len(want) || pageNo != 3 {
		t.Fatalf("paging showed %d entries of %d on %d pages", seen, len(want), pageNo)
	}
	var raw json.RawMessage
	w.n.API(t, "GET", "/audit?actor=user:ex@ops.test", nil, 200, &raw)
	if strings.Contains(string(raw), "/pools/ips/") || strings.Contains(string(raw), "/tokens") {
		t.Fatalf("a refused change is audited as made: %s", raw)
	}
}
