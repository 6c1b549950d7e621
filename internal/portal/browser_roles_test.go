package portal_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/emersion/go-smtp"

	"easymail/internal/api"
	"easymail/internal/store"
	"easymail/internal/testkit"
)

// tab is a headless Chromium tab on the portal, one per test. It keeps what the pages report (console,
// security and exceptions); a Content-Security-Policy violation or a script exception in a portal page fails
// the test when it ends. With $PORTAL_SCREENSHOTS set, shot saves screenshots there.
type tab struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string

	mu      sync.Mutex
	reports []report
}

// report is one message a page gave the browser's console.
type report struct {
	source, url, text string
}

func newTab(t *testing.T, base string) *tab {
	t.Helper()
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	// The browser starts with a context of its own, so that it is closed by cancel, which waits for it
	// (before t.TempDir's removal); the tab's actions get 3 minutes in all, generous under -race on two
	// busy cores.
	if err := chromedp.Run(bctx); err != nil {
		cancel()
		cancelA()
		t.Fatal(err)
	}
	ctx, cancelT := context.WithTimeout(bctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancel(); cancelA() })
	b := &tab{t: t, ctx: ctx, base: base, shots: os.Getenv("PORTAL_SCREENSHOTS")}
	// Cleanups run last first: this one before the browser is closed.
	t.Cleanup(b.checkReports)
	chromedp.ListenTarget(ctx, func(ev any) {
		var r report
		switch e := ev.(type) {
		case *log.EventEntryAdded: // where Chromium reports a CSP violation (source "security")
			r = report{source: string(e.Entry.Source), url: e.Entry.URL, text: e.Entry.Text}
		case *runtime.EventConsoleAPICalled:
			r.source = "console"
			for _, a := range e.Args {
				r.text += string(a.Value) + " "
			}
		case *runtime.EventExceptionThrown:
			r = report{source: "exception", url: e.ExceptionDetails.URL, text: e.ExceptionDetails.Text}
		default:
			return
		}
		b.mu.Lock()
		b.reports = append(b.reports, r)
		b.mu.Unlock()
	})
	if b.shots != "" {
		if err := os.MkdirAll(b.shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b.run(chromedp.EmulateViewport(1280, 900))
	return b
}

// violations returns the CSP violations reported by the pages whose URL starts with prefix.
func (b *tab) violations(prefix string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, r := range b.reports {
		if r.source == "security" && strings.Contains(r.text, "Content Security Policy") && strings.HasPrefix(r.url, prefix) {
			out = append(out, r.url+": "+r.text)
		}
	}
	return out
}

func (b *tab) checkReports() {
	for _, v := range b.violations(b.base) {
		b.t.Errorf("CSP violation reported by the browser: %s", v)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.reports {
		if r.source == "exception" && strings.HasPrefix(r.url, b.base) {
			b.t.Errorf("script exception in %s: %s", r.url, r.text)
		}
	}
}

// actionTimeout bounds one run or load of a tab, so that a selector that never matches fails soon.
const actionTimeout = time.Minute

func (b *tab) run(actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// load runs actions that load a page (a navigation, a click that submits a form) and returns the HTTP status
// of the page loaded (after redirects).
func (b *tab) load(actions ...chromedp.Action) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		b.t.Fatal(err)
	}
	return int(resp.Status)
}

// open navigates to a path of the portal and returns the page's HTTP status.
func (b *tab) open(path string) int {
	b.t.Helper()
	return b.load(chromedp.Navigate(b.base + path))
}

// mustOpen opens a page that must answer 200.
func (b *tab) mustOpen(path string) {
	b.t.Helper()
	if st := b.open(path); st != http.StatusOK {
		b.t.Fatalf("GET %s in Chromium: %d\n%s", path, st, b.text("main"))
	}
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	var s string
	b.run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// url is the path and query of the current page.
func (b *tab) url() string {
	b.t.Helper()
	var s string
	b.run(chromedp.Location(&s))
	return strings.TrimPrefix(s, b.base)
}

// count returns how many elements of the current page match sel, without waiting for any.
func (b *tab) count(sel string) int {
	b.t.Helper()
	var nodes []*cdp.Node
	b.run(chromedp.Nodes(sel, &nodes, chromedp.ByQueryAll, chromedp.AtLeast(0)))
	return len(nodes)
}

func (b *tab) shot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	var buf []byte
	b.run(chromedp.FullScreenshot(&buf, 70))
	if err := os.WriteFile(filepath.Join(b.shots, name+".jpg"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// login logs in through the login form and lands on the dashboard.
func (b *tab) login(email string) {
	b.t.Helper()
	b.run(chromedp.Navigate(b.base+"/login"), chromedp.WaitVisible(`input[name=email]`, chromedp.ByQuery))
	st := b.load(chromedp.SendKeys(`input[name=email]`, email, chromedp.ByQuery),
		chromedp.SendKeys(`input[name=password]`, password, chromedp.ByQuery), chromedp.Submit(`form.login`, chromedp.ByQuery))
	if st != http.StatusOK || b.url() != "/" || b.text("h1") != "Dashboard" {
		b.t.Fatalf("login %s: %d at %s\n%s", email, st, b.url(), b.text("main"))
	}
}

// submitEdited points the form sel of the current page at action, as a user editing the page would, and
// submits it with its own button; it returns the answer's status.
func (b *tab) submitEdited(sel, action string) int {
	b.t.Helper()
	// Marked first: once edited, sel may no longer match.
	b.run(chromedp.SetAttributeValue(sel, "id", "edited", chromedp.ByQuery),
		chromedp.SetAttributeValue(`#edited`, "action", action, chromedp.ByQuery))
	return b.load(chromedp.Click(`#edited button`, chromedp.ByQuery))
}

// forge replaces the form sel of the current page (the logout form when sel is "") with one that posts
// fields and the session's valid CSRF token to action, and submits it: a change the page does not offer,
// sent by the real browser from the page's own origin, with everything a genuine form has. It returns the
// answer's status.
func (b *tab) forge(sel, action string, fields map[string]string) int {
	b.t.Helper()
	if sel == "" {
		sel = `form.logout`
	}
	var tok string
	var nodes []*cdp.Node
	b.run(chromedp.Value(`form.logout input[name=csrf]`, &tok, chromedp.ByQuery), chromedp.Nodes(sel, &nodes, chromedp.ByQuery))
	var html strings.Builder
	fmt.Fprintf(&html, `<form id="forged" method="post" action="%s"><input type="hidden" name="csrf" value="%s">`, action, tok)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&html, `<input type="hidden" name="%s" value="%s">`, k, fields[k])
	}
	html.WriteString(`<button type="submit">go</button></form>`)
	b.run(chromedp.ActionFunc(func(ctx context.Context) error {
		return dom.SetOuterHTML(nodes[0].NodeID, html.String()).Do(ctx)
	}))
	return b.load(chromedp.Click(`#forged button`, chromedp.ByQuery))
}

// sendHTML sends an HTML message and returns its queue id.
func sendHTML(t *testing.T, addr, localIP, from, to, subject, html string) string {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("mail.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		t.Fatal(err)
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(wc, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <html.%d@test>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/html; charset=utf-8\r\n\r\n%s\r\n", from, to, subject, len(subject), html)
	resp, err := wc.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	_, id, ok := strings.Cut(resp.StatusText, "queued as ")
	if !ok {
		t.Fatalf("no queue id in %q", resp.StatusText)
	}
	return strings.TrimSpace(id)
}

// extraMX starts a fake MX host named host for domains, on a loopback address newWorld's MX port does not
// hold (127.0.0.30 to .39), at the node's delivery port.
func extraMX(t *testing.T, w *world, host string, domains ...string) *testkit.MX {
	t.Helper()
	port := strconv.Itoa(w.n.Config.Delivery.Port)
	for i := 30; i < 40; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err != nil {
			continue
		}
		m := testkit.NewMXOn(t, ln)
		w.n.DNS.AddA(host, ip)
		for _, d := range domains {
			w.n.DNS.AddMX(d, host, 10)
		}
		return m
	}
	t.Fatalf("no address of 127.0.0.30-39 free on port %s", port)
	return nil
}

// trace reads a message's trace from the API.
func trace(t *testing.T, w *world, id string) api.Trace {
	t.Helper()
	var tr api.Trace
	w.n.API(t, "GET", "/messages/"+id, nil, 200, &tr)
	return tr
}

// audited returns the audit entries of a portal user's changes (its logins left out).
func audited(t *testing.T, w *world, email string) []api.AuditEntry {
	t.Helper()
	var entries, out []api.AuditEntry
	w.n.API(t, "GET", "/audit?actor="+url.QueryEscape("user:"+email), nil, 200, &entries)
	for _, e := range entries {
		if e.Action != "portal POST /login" {
			out = append(out, e)
		}
	}
	return out
}

func wantAll(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(text, s) {
			t.Errorf("%s lacks %q:\n%s", what, s, text)
		}
	}
}

// TestExpertInChromium: the expert logs in, reads the dashboard, a message search and its timeline, the
// customers, pools and audit pages, and finds no button that changes anything; changes forged from its
// pages (the right origin and its valid CSRF token) are refused with 403 and change nothing.
func TestExpertInChromium(t *testing.T) {
	w := newWorld(t)
	b := newTab(t, w.n.APIURL)
	b.login("ex@ops.test")
	wantAll(t, "the expert's dashboard", b.text("main"), "Last 7 days")
	b.shot("expert-dashboard")

	b.mustOpen("/messages")
	b.run(chromedp.SendKeys(`input[name=recipient]`, "bob@dest.test", chromedp.ByQuery))
	if st := b.load(chromedp.Submit(`form.search`, chromedp.ByQuery)); st != http.StatusOK {
		t.Fatalf("search: %d", st)
	}
	if b.count(`a[href="/messages/`+w.msgA+`"]`) != 1 || b.count(`a[href="/messages/`+w.msgB+`"]`) != 0 {
		t.Fatalf("search by recipient bob@dest.test:\n%s", b.text("main"))
	}
	b.load(chromedp.Click(`a[href="/messages/`+w.msgA+`"]`, chromedp.ByQuery))
	wantAll(t, "the timeline", b.text("ol.timeline"), "Received", "Attempt 1 to bob@dest.test: delivered", "Finished: delivered")
	b.shot("expert-message")

	// No page offers the expert a change: no form that posts, except the logout in the header.
	for _, p := range []struct{ path, want string }{
		{"/", "Last 7 days"}, {"/messages/" + w.msgA, "Timeline"}, {"/customers", "Beta"}, {"/pools", "127.0.0.1"},
		{"/audit", "POST /api/v1/users"}, {"/users", "ub@beta.test"}, {"/tokens", "API tokens"}, {"/incidents", "Incidents"},
		{"/quarantine", "Quarantine"}, {"/queue", "Queue"},
	} {
		b.mustOpen(p.path)
		wantAll(t, p.path, b.text("main"), p.want)
		if n := b.count(`main form[method=post]`); n != 0 {
			t.Errorf("the expert's %s has %d forms that post", p.path, n)
		}
		if p.path == "/pools" || p.path == "/audit" {
			b.shot("expert-" + p.path[1:])
		}
	}

	// Forged from the expert's own pages: 403, nothing done.
	ub := w.users["ub@beta.test"]
	for _, f := range []struct {
		page, action string
		fields       map[string]string
	}{
		{"/messages/" + w.msgA, "/messages/" + w.msgA + "/hold", nil},
		{"/messages/" + w.msgA, "/messages/bulk", map[string]string{"id": w.msgA, "action": "hold", "scope": "ticked"}},
		{"/pools", "/pools/ips/127.0.0.1/pause", map[string]string{"reason": "expert"}},
		{"/customers", "/customers/" + w.b + "/portal", map[string]string{"enabled": "true"}},
		{"/users", "/users/" + ub.ID + "/delete", nil},
		{"/users", "/users", map[string]string{"email": "new@ops.test", "role": "operator"}},
		{"/tokens", "/tokens", map[string]string{"role": "operator", "name": "mine"}},
		{"/incidents", "/incidents", map[string]string{"title": "expert's incident", "priority": "P3"}},
		{"/suppressions", "/suppressions", map[string]string{"customer": w.a, "address": "bob@dest.test"}},
	} {
		b.mustOpen(f.page)
		if st := b.forge("", f.action, f.fields); st != http.StatusForbidden {
			t.Errorf("the expert's forged POST %s: %d\n%s", f.action, st, b.text("main"))
			continue
		}
		wantAll(t, "the answer to the expert's "+f.action, b.text("p.error"), "Your role may not change anything.")
	}
	if tr := trace(t, w, w.msgA); tr.Held || tr.Status != "delivered" {
		t.Errorf("message %s after the expert's forms: %s held %v", w.msgA, tr.Status, tr.Held)
	}
	var ip api.IP
	w.n.API(t, "GET", "/ips/127.0.0.1", nil, 200, &ip)
	if ip.State != "active" {
		t.Errorf("IP 127.0.0.1 after the expert's pause: %s", ip.State)
	}
	var cb api.Customer
	w.n.API(t, "GET", "/customers/"+w.b, nil, 200, &cb)
	if cb.PortalEnabled {
		t.Error("the expert enabled B's portal")
	}
	var users []api.PortalUser
	w.n.API(t, "GET", "/users", nil, 200, &users)
	if len(users) != 4 {
		t.Errorf("users after the expert's forms: %+v", users)
	}
	var incs []api.Incident
	w.n.API(t, "GET", "/incidents?status=all", nil, 200, &incs)
	if len(incs) != 0 {
		t.Errorf("incidents after the expert's forms: %+v", incs)
	}
	if e := audited(t, w, "ex@ops.test"); len(e) != 0 {
		t.Errorf("the expert's changes in the audit log: %+v", e)
	}
}

// TestOperatorInChromium: the operator finds a bounced and a delivered message by searching by recipient and
// by status, reads the bounce's timeline (the remote reply, the DSN sent to the sender, which links back) and
// the delivery's; then previews a quarantined HTML message as text only, releases it and sees it delivered.
func TestOperatorInChromium(t *testing.T) {
	w := newWorld(t)
	mx := extraMX(t, w, "mx.gone.test", "gone.test", "acme.test") // acme.test: the DSNs to alice@acme.test
	const rejection = "<nobody@gone.test>: Recipient address rejected: User unknown"
	mx.Reply("nobody@gone.test", 550, [3]int{5, 1, 1}, rejection)
	w.n.API(t, "PUT", "/customers/"+w.a+"/scan-policy", quarantineRule(""), 200, nil)
	bounced := sendMail(t, w.n.SMTPAddr, "127.0.0.1", "alice@acme.test", "nobody@gone.test", "Hello nobody")
	held := sendHTML(t, w.n.SMTPAddr, "127.0.0.1", "alice@acme.test", "bob@dest.test", "Quarantine me: invoice",
		`<p>Your invoice is <b>attached</b>.</p><img src="http://127.0.0.5:9/pixel.gif"><script>alert("x")</script>`)
	waitStatus(t, w, bounced, "bounced")
	deadline := time.Now().Add(20 * time.Second)
	tr := trace(t, w, bounced)
	for len(tr.DSNs) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		tr = trace(t, w, bounced)
	}
	if len(tr.DSNs) != 1 {
		t.Fatalf("DSNs of the bounce: %v", tr.DSNs)
	}
	dsn := tr.DSNs[0]
	mx.WaitMessages(t, 1, 20*time.Second)
	waitStatus(t, w, dsn, "delivered")
	waitStatus(t, w, held, "quarantined")

	b := newTab(t, w.n.APIURL)
	b.login("op@ops.test")
	results := func() (ids []string) {
		t.Helper()
		var nodes []*cdp.Node
		b.run(chromedp.Nodes(`table.results tbody a[href^="/messages/"]`, &nodes, chromedp.ByQueryAll, chromedp.AtLeast(0)))
		for _, n := range nodes {
			ids = append(ids, strings.TrimPrefix(n.AttributeValue("href"), "/messages/"))
		}
		slices.Sort(ids)
		return ids
	}
	search := func(recipient, status string) []string {
		t.Helper()
		b.mustOpen("/messages")
		if recipient != "" {
			b.run(chromedp.SendKeys(`input[name=recipient]`, recipient, chromedp.ByQuery))
		}
		if status != "" {
			b.run(chromedp.SetValue(`select[name=status]`, status, chromedp.ByQuery))
		}
		if st := b.load(chromedp.Submit(`form.search`, chromedp.ByQuery)); st != http.StatusOK {
			t.Fatalf("search %q %q: %d", recipient, status, st)
		}
		return results()
	}
	if got := search("nobody@gone.test", ""); !slices.Equal(got, []string{bounced}) {
		t.Errorf("search by recipient nobody@gone.test: %v, want [%s]", got, bounced)
	}
	if got := search("", "bounced"); !slices.Equal(got, []string{bounced}) {
		t.Errorf("search by status bounced: %v, want [%s]", got, bounced)
	}
	b.shot("messages-bounced")
	if got := search("", "delivered"); !slices.Contains(got, w.msgA) || !slices.Contains(got, dsn) || slices.Contains(got, bounced) {
		t.Errorf("search by status delivered: %v", got)
	}
	if got := search("bob@dest.test", "delivered"); !slices.Equal(got, []string{w.msgA}) {
		t.Errorf("search by recipient bob@dest.test and status delivered: %v, want [%s]", got, w.msgA)
	}

	// The delivered one's timeline, then the bounce's, reached from the search.
	b.load(chromedp.Click(`a[href="/messages/`+w.msgA+`"]`, chromedp.ByQuery))
	wantAll(t, "the delivered message's timeline", b.text("ol.timeline"), "Attempt 1 to bob@dest.test: delivered", "reply: 250", "Finished: delivered")
	search("nobody@gone.test", "bounced")
	b.load(chromedp.Click(`a[href="/messages/`+bounced+`"]`, chromedp.ByQuery))
	if got := b.text("dd.status-bounced"); got != "bounced" {
		t.Errorf("the bounce's status: %q", got)
	}
	wantAll(t, "the bounce's timeline", b.text("ol.timeline"), "Attempt 1 to nobody@gone.test: bounced", "MX mx.gone.test",
		"reply: 550 5.1.1 "+rejection, "Finished: bounced", "nobody@gone.test: bounced",
		"a delivery status notification (DSN) was sent to <alice@acme.test>: "+dsn)
	wantAll(t, "the bounce's recipients", b.text("main table"), "nobody@gone.test", "550 5.1.1 "+rejection)
	b.shot("bounced")
	// The DSN's own page links back to the bounce.
	b.load(chromedp.Click(`main p a[href="/messages/`+dsn+`"]`, chromedp.ByQuery))
	wantAll(t, "the DSN's page", b.text("main"), "This DSN reports on "+bounced, "alice@acme.test", "Finished: delivered")

	// The quarantine: the message listed, previewed as text, released, delivered.
	b.mustOpen("/quarantine")
	wantAll(t, "the quarantine", b.text("main table"), "Quarantine me: invoice", "alice@acme.test")
	b.shot("quarantine")
	b.load(chromedp.Click(`a[href="/quarantine/`+held+`"]`, chromedp.ByQuery))
	preview := b.text(`main > pre.preview:last-of-type`)
	if !strings.Contains(preview, "Your invoice is attached") || strings.ContainsAny(preview, "<>") || strings.Contains(preview, "alert") {
		t.Errorf("the preview is not the text only: %q", preview)
	}
	if n := b.count(`main img, main script, main iframe, main b, main object`); n != 0 {
		t.Errorf("the preview page has %d elements of the message", n)
	}
	wantAll(t, "the quarantined message", b.text("main"), "Held for review", "Subject: Quarantine me: invoice")
	b.shot("quarantined")
	if st := b.load(chromedp.Click(`form[action="/quarantine/`+held+`/release"] button`, chromedp.ByQuery)); st != http.StatusOK ||
		b.url() != "/messages/"+held+"?done=qrelease" {
		t.Fatalf("release: %d at %s\n%s", st, b.url(), b.text("main"))
	}
	waitStatus(t, w, held, "delivered")
	b.mustOpen("/messages/" + held)
	wantAll(t, "the released message's timeline", b.text("ol.timeline"), "Scanned", "Attempt 1 to bob@dest.test: delivered", "Finished: delivered")
	b.shot("released")
	b.mustOpen("/quarantine")
	if b.count(`a[href="/quarantine/`+held+`"]`) != 0 {
		t.Errorf("the released message is still in the quarantine:\n%s", b.text("main"))
	}
	if e := audited(t, w, "op@ops.test"); len(e) != 1 || e[0].Action != "portal POST /quarantine/{id}/{action}" || e[0].CustomerID != w.a {
		t.Errorf("the operator's audit entries: %+v", e)
	}
}

// TestIsolationInChromium: customer A's user, who edits URLs and forms to reach customer B's messages,
// quarantine, domains, users and incidents, gets 404 (or 403) on every page and every action, and B's data
// is unchanged; its own unedited forms work. The browser also proves it reports CSP violations.
func TestIsolationInChromium(t *testing.T) {
	w := newWorld(t)
	w.enablePortal(t, w.a)
	w.enablePortal(t, w.b)
	// Both customers' users may release and delete their own quarantined messages.
	w.n.API(t, "PUT", "/customers/"+w.a+"/scan-policy", quarantineRule("all"), 200, nil)
	w.n.API(t, "PUT", "/customers/"+w.b+"/scan-policy", quarantineRule("all"), 200, nil)
	qa := sendMail(t, w.n.SMTPAddr, "127.0.0.1", "alice@acme.test", "bob@dest.test", "Quarantine me A")
	qb := sendMail(t, w.n.SMTPAddr, "127.0.0.3", "bea@beta.test", "carol@dest.test", "Quarantine me B")
	waitStatus(t, w, qa, "quarantined")
	waitStatus(t, w, qb, "quarantined")
	var incA, incB api.Incident
	w.n.API(t, "POST", "/incidents", api.IncidentCreate{CustomerID: w.a, Title: "Acme's mail is late", Channel: "phone"}, 201, &incA)
	w.n.API(t, "POST", "/incidents", api.IncidentCreate{CustomerID: w.b, Title: "Beta's mail is late", Channel: "phone"}, 201, &incB)
	ua, ub := w.users["ua@acme.test"], w.users["ub@beta.test"]
	bState := func() string {
		t.Helper()
		var users []api.PortalUser
		w.n.API(t, "GET", "/users?customer="+w.b, nil, 200, &users)
		var inc api.Incident
		w.n.API(t, "GET", "/incidents/"+incB.ID, nil, 200, &inc)
		var c api.Customer
		w.n.API(t, "GET", "/customers/"+w.b, nil, 200, &c)
		var emails, domains []string
		for _, u := range users {
			emails = append(emails, u.Email)
		}
		for _, d := range c.Domains {
			domains = append(domains, d.Domain)
		}
		mb, q := trace(t, w, w.msgB), trace(t, w, qb)
		return fmt.Sprintf("users %v; incident %s, %d events; portal %v, domains %v; %s %s held %v; %s %s", emails, inc.Status,
			len(inc.Events), c.PortalEnabled, domains, w.msgB, mb.Status, mb.Held, qb, q.Status)
	}
	before := bState()

	b := newTab(t, w.n.APIURL)
	// The browser reports a CSP violation where it sees one: an inline script on a page of another origin.
	canary, err := net.Listen("tcp", "127.0.0.5:0")
	if err != nil {
		t.Fatal(err)
	}
	canarySrv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Security-Policy", "script-src 'self'")
		fmt.Fprint(rw, `<!doctype html><p id="x">canary</p><script>document.title = "ran"</script>`)
	})}
	go canarySrv.Serve(canary)
	t.Cleanup(func() { canarySrv.Close() })
	canaryURL := "http://" + canary.Addr().String() + "/"
	b.run(chromedp.Navigate(canaryURL), chromedp.WaitVisible(`#x`, chromedp.ByQuery))
	for deadline := time.Now().Add(10 * time.Second); len(b.violations(canaryURL)) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Chromium reported no CSP violation for an inline script: the check of the portal's pages would see none either")
		}
	}

	b.login("ua@acme.test")
	b.shot("customer-dashboard")
	// Its own: listed, and B's not.
	for _, p := range []struct {
		path      string
		want, not []string
	}{
		{"/messages", []string{w.msgA, qa}, []string{w.msgB, qb, "bea@beta.test"}},
		{"/quarantine", []string{qa}, []string{qb}},
		{"/users", []string{"ua@acme.test"}, []string{"ub@beta.test", "op@ops.test"}},
		{"/domains", []string{"acme.test"}, []string{"beta.test"}},
		{"/incidents?status=all", []string{"Acme's mail is late"}, []string{"Beta"}},
	} {
		b.mustOpen(p.path)
		main := b.text("main")
		wantAll(t, "customer A's "+p.path, main, p.want...)
		for _, s := range p.not {
			if strings.Contains(main, s) {
				t.Errorf("customer A's %s shows B's %q:\n%s", p.path, s, main)
			}
		}
	}
	b.shot("customer-messages")

	// URLs edited to B's: 404, nothing of B's on the page.
	for _, path := range []string{"/messages/" + w.msgB, "/quarantine/" + qb, "/domains?customer=" + w.b, "/users?customer=" + w.b,
		"/messages?customer=" + w.b, "/queue?customer=" + w.b, "/quarantine?customer=" + w.b, "/suppressions?customer=" + w.b,
		"/incidents/" + incB.ID, "/incidents?customer=" + w.b, "/sla?customer=" + w.b, "/sla.csv?customer=" + w.b,
		"/customers", "/pools", "/audit", "/tokens", "/providers"} {
		if st := b.open(path); st != http.StatusNotFound {
			t.Errorf("customer A's GET %s: %d, want 404", path, st)
			continue
		}
		main := b.text("main")
		if !strings.Contains(strings.ToLower(main), "not found") || strings.Contains(strings.ToLower(main), "beta") {
			t.Errorf("customer A's GET %s:\n%s", path, main)
		}
	}
	b.shot("customer-404")

	// A's own forms, edited to act on B's: 404 or 403.
	refused := func(what string, st int) {
		t.Helper()
		if st != http.StatusNotFound && st != http.StatusForbidden {
			t.Errorf("customer A's %s: %d, want 404 or 403\n%s", what, st, b.text("main"))
		}
	}
	b.mustOpen("/quarantine/" + qa)
	refused("release form edited to B's message", b.submitEdited(`form[action="/quarantine/`+qa+`/release"]`, "/quarantine/"+qb+"/release"))
	b.mustOpen("/quarantine/" + qa)
	refused("delete form edited to B's message", b.submitEdited(`form[action="/quarantine/`+qa+`/delete"]`, "/quarantine/"+qb+"/delete"))
	b.mustOpen("/users")
	refused("user delete form edited to B's user", b.submitEdited(`form[action="/users/`+ua.ID+`/delete"]`, "/users/"+ub.ID+"/delete"))
	b.mustOpen("/users")
	refused("new user form with B's customer added", b.forge(`form[action="/users"]`, "/users",
		map[string]string{"email": "intruder@beta.test", "role": "customer", "customer": w.b}))
	b.mustOpen("/incidents/" + incA.ID)
	b.run(chromedp.SendKeys(`form[action="/incidents/`+incA.ID+`/comment"] textarea`, "hello B", chromedp.ByQuery))
	refused("comment form edited to B's incident", b.submitEdited(`form[action="/incidents/`+incA.ID+`/comment"]`, "/incidents/"+incB.ID+"/comment"))
	b.mustOpen("/messages")
	b.run(chromedp.SetAttributeValue(`form.search input[name=sender]`, "name", "customer", chromedp.ByQuery),
		chromedp.SendKeys(`form.search input[name=customer]`, w.b, chromedp.ByQuery))
	refused("message search edited to B's customer", b.load(chromedp.Submit(`form.search`, chromedp.ByQuery)))
	// Changes the pages do not offer, forged from A's message page with the session's valid token.
	for action, fields := range map[string]map[string]string{
		"/messages/" + w.msgB + "/hold":      nil,
		"/messages/bulk":                     {"id": w.msgB, "action": "hold", "scope": "ticked"},
		"/customers/" + w.b + "/portal":      {"enabled": "false"},
		"/suppressions":                      {"customer": w.b, "address": "carol@dest.test"},
		"/incidents/" + incB.ID + "/confirm": nil,
		"/tokens":                            {"role": "customer", "customer": w.b, "name": "mine"},
	} {
		b.mustOpen("/messages/" + w.msgA)
		refused("forged POST "+action, b.forge("", action, fields))
	}
	if after := bState(); after != before {
		t.Errorf("B's data changed:\nbefore %s\nafter  %s", before, after)
	}
	if tr := trace(t, w, qa); tr.Status != "quarantined" {
		t.Errorf("A's quarantined message after the edited forms: %s", tr.Status)
	}

	// The same forms unedited act on A's own.
	b.mustOpen("/quarantine/" + qa)
	if st := b.load(chromedp.Click(`form[action="/quarantine/`+qa+`/release"] button`, chromedp.ByQuery)); st != http.StatusOK ||
		b.url() != "/messages/"+qa+"?done=qrelease" {
		t.Fatalf("customer A releases its own: %d at %s", st, b.url())
	}
	waitStatus(t, w, qa, "delivered")
	if after := bState(); after != before {
		t.Errorf("B's data changed:\nbefore %s\nafter  %s", before, after)
	}
	entries := audited(t, w, "ua@acme.test")
	if len(entries) != 1 || entries[0].CustomerID != w.a {
		t.Errorf("customer A's audit entries: %+v", entries)
	}
}

// TestPortalSessionExpiry: a session idle for the idle timeout (1 h by default), or past its lifetime however
// active, has ended: its pages send to the login page and its changes answer 403 even with its CSRF token;
// the user's other sessions go on.
func TestPortalSessionExpiry(t *testing.T) {
	w := newWorld(t)
	idle, old, other := w.browser(t), w.browser(t), w.browser(t)
	for _, b := range []*browser{idle, old, other} {
		b.mustLogin("op@ops.test")
	}
	idleTok, oldTok := idle.csrf("/messages/"+w.msgA), old.csrf("/messages/"+w.msgA)
	// The sessions' stored ids are hashes of the cookies' secrets: find them by what sets them apart, their CSRF.
	db, err := store.Open(context.Background(), filepath.Join(w.n.Config.DataDir, "easymail.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		if _, err := tx.Exec(`UPDATE portal_sessions SET last_seen = ? WHERE csrf = ?`, store.Millis(now.Add(-time.Hour-time.Minute)), idleTok); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE portal_sessions SET expires_at = ? WHERE csrf = ?`, store.Millis(now.Add(-time.Second)), oldTok)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for name, c := range map[string]struct {
		b   *browser
		tok string
	}{"idle": {idle, idleTok}, "expired": {old, oldTok}} {
		if p := c.b.get("/messages"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
			t.Errorf("%s session: GET /messages %d %s", name, p.status, p.header.Get("Location"))
		}
		p := c.b.post("/messages/"+w.msgA+"/hold", url.Values{"csrf": {c.tok}})
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "Your session has ended") {
			t.Errorf("%s session: POST hold %d\n%s", name, p.status, p.body)
		}
	}
	if tr := trace(t, w, w.msgA); tr.Held {
		t.Error("an ended session held a message")
	}
	if p := other.get("/messages"); p.status != http.StatusOK {
		t.Errorf("the user's other session: %d", p.status)
	}
	// Logging in again starts a new session.
	idle.mustLogin("op@ops.test")
	if p := idle.get("/messages"); p.status != http.StatusOK {
		t.Errorf("after logging in again: %d", p.status)
	}
}
