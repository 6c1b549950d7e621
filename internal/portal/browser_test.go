package portal_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromium finds the browser: it skips the test when there is none, unless CI is set, where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI is set and no Chromium is installed (Debian package chromium)")
	}
	t.Skip("no Chromium installed (Debian package chromium); CI fails instead of skipping")
	return ""
}

// TestPortalInChromium drives the portal in headless Chromium: log in as the operator, see the dashboard,
// search a message sent through the node and read its timeline, have a forged cross-site POST refused, and
// check that the browser reports no Content-Security-Policy violation; then customer A's user, whose URLs
// to customer B's message answer 404. Screenshots go to $PORTAL_SCREENSHOTS when it is set.
func TestPortalInChromium(t *testing.T) {
	exe := chromium(t)
	w := newWorld(t)
	w.enablePortal(t, w.a)

	// The attacker's site, on another loopback address: a form posting to the portal.
	evil, err := net.Listen("tcp", "127.0.0.5:0")
	if err != nil {
		t.Fatal(err)
	}
	evilSrv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, `<!doctype html><form method="post" action="%s/messages/%s/delete"><input name="csrf" value="guess">`+
			`<button id="go">win a prize</button></form>`, w.n.APIURL, w.msgA)
	})}
	go evilSrv.Serve(evil)
	t.Cleanup(func() { evilSrv.Close() })

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute) // under -race with the whole suite on 2 cores
	defer cancelT()

	// Every console message, exception and log entry of the pages is kept: a CSP violation is a log entry.
	var console []string
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			for _, a := range e.Args {
				console = append(console, string(a.Value))
			}
		case *runtime.EventExceptionThrown:
			console = append(console, e.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded: // where Chromium reports a CSP violation (source "security")
			console = append(console, e.Entry.Text)
		}
	})
	shots := os.Getenv("PORTAL_SCREENSHOTS")
	shot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			if shots == "" {
				return nil
			}
			var buf []byte
			if err := chromedp.FullScreenshot(&buf, 90).Do(ctx); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".jpg"), buf, 0o644)
		})
	}
	base := w.n.APIURL
	var h1, body string
	err = chromedp.Run(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(`input[name=email]`),
		shot("login"),
		chromedp.SendKeys(`input[name=email]`, "op@ops.test"),
		chromedp.SendKeys(`input[name=password]`, password),
		chromedp.Submit(`form.login`),
		chromedp.WaitVisible(`header nav, p.error`, chromedp.ByQuery),
		chromedp.Text(`h1`, &h1),
		chromedp.Text(`main`, &body),
		shot("dashboard"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if h1 != "Dashboard" || !strings.Contains(body, "Last 7 days") {
		t.Fatalf("after login: h1 %q\n%s", h1, body)
	}
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/messages"),
		chromedp.WaitVisible(`input[name=sender]`),
		chromedp.SendKeys(`input[name=sender]`, "alice@acme.test"),
		chromedp.Submit(`form.search`),
		chromedp.WaitVisible(`a[href="/messages/`+w.msgA+`"]`),
		shot("messages"),
		chromedp.Click(`a[href="/messages/`+w.msgA+`"]`),
		chromedp.WaitVisible(`ol.timeline`),
		chromedp.Text(`ol.timeline`, &body),
		shot("message"),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Received", "Attempt 1 to bob@dest.test: delivered", "MX mx.dest.test", "Finished: delivered"} {
		if !strings.Contains(body, want) {
			t.Errorf("timeline lacks %q:\n%s", want, body)
		}
	}
	for _, path := range []string{"/queue", "/incidents", "/sla", "/customers", "/users", "/account"} {
		if err := chromedp.Run(ctx, chromedp.Navigate(base+path), chromedp.WaitVisible(`h1`), shot(strings.TrimPrefix(path, "/"))); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}

	// A forged POST from another site: refused, the message is untouched.
	err = chromedp.Run(ctx,
		chromedp.Navigate("http://"+evil.Addr().String()+"/"),
		chromedp.WaitVisible(`#go`),
		chromedp.Click(`#go`),
		chromedp.WaitVisible(`p.error`),
		chromedp.Text(`p.error`, &body),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "session has ended") && !strings.Contains(body, "CSRF") {
		t.Fatalf("forged POST answered: %q", body)
	}
	var tr struct{ Status string }
	w.n.API(t, "GET", "/messages/"+w.msgA, nil, 200, &tr)
	if tr.Status != "delivered" {
		t.Fatalf("the forged POST changed the message: %s", tr.Status)
	}

	// The operator logs out; customer A's user logs in: its message, not B's.
	cctx := ctx
	var own, foreign string
	err = chromedp.Run(cctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`form.logout button`),
		chromedp.Click(`form.logout button`),
		chromedp.WaitVisible(`form.login`),
		chromedp.WaitVisible(`input[name=email]`),
		chromedp.SendKeys(`input[name=email]`, "ua@acme.test"),
		chromedp.SendKeys(`input[name=password]`, password),
		chromedp.Submit(`form.login`),
		chromedp.WaitVisible(`svg.chart`),
		chromedp.Navigate(base+"/messages/"+w.msgA),
		chromedp.WaitVisible(`ol.timeline`),
		chromedp.Text(`ol.timeline`, &own),
		chromedp.Navigate(base+"/messages/"+w.msgB),
		chromedp.WaitVisible(`p.error`),
		chromedp.Text(`main`, &foreign),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(own, "bob@dest.test") || !strings.Contains(foreign, "Not found") || strings.Contains(foreign, "carol@dest.test") {
		t.Fatalf("customer A: own %q, B's %q", own, foreign)
	}
	for _, c := range console {
		if strings.Contains(c, "Content Security Policy") || strings.Contains(c, "Refused to") {
			t.Errorf("CSP violation reported by the browser: %s", c)
		}
	}
}
