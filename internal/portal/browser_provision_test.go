package portal_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"easymail/internal/api"
)

// TestProvisioningInChromium drives the onboarding of a customer from the console alone in headless
// Chromium: the operator logs in, creates the customer, adds a domain, a relay host and a source IP, opens
// its portal, reads the DNS records to publish and makes an onboarding link, which opens the customer's
// setup page. The API then has the customer with those children, and mail from the new source IP for the
// new domain is accepted and delivered. The browser reports no CSP violation. Screenshots go to
// $PORTAL_SCREENSHOTS when it is set.
func TestProvisioningInChromium(t *testing.T) {
	exe := chromium(t)
	w := newWorld(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelT()

	var console []string
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			for _, a := range e.Args {
				console = append(console, string(a.Value))
			}
		case *runtime.EventExceptionThrown:
			console = append(console, e.ExceptionDetails.Text)
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
	// done waits for the answer to a form: the customer page with the confirmation key, fully loaded. The
	// location is polled (an evaluation fails while the form's navigation is under way: it is tried again).
	done := func(key string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			for {
				var loc string
				if err := chromedp.Location(&loc).Do(ctx); err == nil && strings.Contains(loc, "/customers/") &&
					strings.HasSuffix(loc, "?done="+key) {
					return chromedp.WaitReady(`footer`).Do(ctx)
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("waiting for ?done=%s: %w", key, ctx.Err())
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
	base := w.n.APIURL
	var loc, flash string
	err := chromedp.Run(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(`input[name=email]`),
		chromedp.SendKeys(`input[name=email]`, "op@ops.test"),
		chromedp.SendKeys(`input[name=password]`, password),
		chromedp.Submit(`form.login`),
		chromedp.WaitVisible(`header nav`),
		chromedp.Navigate(base+"/customers"),
		chromedp.WaitVisible(`#new-customer`),
		chromedp.SendKeys(`#new-customer input[name=name]`, "Gamma"),
		chromedp.SendKeys(`#new-customer input[name=contact_email]`, "it@gamma.test"),
		shot("customers"),
		chromedp.Click(`#create-customer`),
		done("custcreated"),
		chromedp.WaitVisible(`#customer-name`),
		chromedp.Location(&loc),
		chromedp.Text(`p.flash`, &flash),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(flash, "The customer was created") {
		t.Fatalf("after the creation: %s %q", loc, flash)
	}
	id := strings.TrimPrefix(strings.TrimSuffix(loc, "?done=custcreated"), base+"/customers/")

	var records, relayHosts, sourceIPs, portal, link string
	err = chromedp.Run(ctx,
		chromedp.SendKeys(`#add-domain input[name=domain]`, "gamma.test"),
		chromedp.Click(`#add-domain button`),
		done("domadded"),
		chromedp.WaitVisible(`pre.records`),
		chromedp.Text(`pre.records`, &records),
		chromedp.SendKeys(`#add-relay-host input[name=host]`, "127.0.0.8"),
		chromedp.Click(`#add-relay-host button`),
		done("hostadded"),
		chromedp.Text(`#relay-hosts tbody`, &relayHosts),
		chromedp.SendKeys(`#add-source-ip input[name=cidr]`, "127.0.0.7"),
		chromedp.Click(`#add-source-ip button`),
		done("ipadded"),
		chromedp.Text(`#source-ips tbody`, &sourceIPs),
		chromedp.Click(`#settings input[type=checkbox][name=portal_enabled]`),
		chromedp.Click(`#save-settings`),
		done("custsaved"),
		chromedp.Text(`#customer-portal`, &portal),
		shot("customer"),
		chromedp.Click(`#make-onboarding`),
		chromedp.WaitVisible(`#onboarding-link`),
		chromedp.Text(`#onboarding-link`, &link),
		shot("onboarding-link"),
	)
	if err != nil {
		t.Fatal(err)
	}
	c := w.customer(t, id)
	if len(c.Domains) != 1 || c.Domains[0].DKIM == nil {
		t.Fatalf("the customer through the API: %+v", c)
	}
	dk := c.Domains[0].DKIM
	for _, want := range []string{`gamma.test TXT "v=spf1 mx include:_spf.easymail.test ~all"`, dk.Name + ` TXT "` + dk.Value + `"`,
		`_dmarc.gamma.test TXT "v=DMARC1; p=none; rua=mailto:it@gamma.test"`} {
		if !strings.Contains(records, want) {
			t.Errorf("the records to publish lack %q:\n%s", want, records)
		}
	}
	if !strings.Contains(relayHosts, "127.0.0.8") || !strings.Contains(sourceIPs, "127.0.0.7/32") || strings.TrimSpace(portal) != "enabled" {
		t.Fatalf("the page: relay hosts %q, source IPs %q, portal %q", relayHosts, sourceIPs, portal)
	}
	if !strings.HasPrefix(link, base+"/onboard/") {
		t.Fatalf("onboarding link %q", link)
	}

	// The link opens the customer's setup page.
	var setup string
	// chromedp's element queries do not complete on that page (its own CSP, default-src 'none', is the
	// likely cause): the text is read by an evaluation once the navigation has loaded the page.
	err = chromedp.Run(ctx,
		chromedp.Navigate(link),
		chromedp.Evaluate(`document.body.innerText`, &setup),
		shot("onboarding"),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Easymail setup for Gamma", "127.0.0.8", "127.0.0.7/32", "gamma.test", "include:_spf.easymail.test"} {
		if !strings.Contains(setup, want) {
			t.Errorf("the onboarding page lacks %q:\n%s", want, setup)
		}
	}

	// The API has it all.
	if c.Name != "Gamma" || c.Status != api.StatusPending || !c.PortalEnabled || c.Domains[0].Domain != "gamma.test" ||
		len(c.RelayHosts) != 1 || c.RelayHosts[0].Host != "127.0.0.8" || len(c.SourceIPs) != 1 || c.SourceIPs[0].CIDR != "127.0.0.7/32" {
		t.Fatalf("the customer through the API: %+v", c)
	}
	// Mail from the new source IP for the new domain is accepted, as the new customer's, and delivered.
	qid := sendMail(t, w.n.SMTPAddr, "127.0.0.7", "ann@gamma.test", "bob@dest.test", "Hello from Gamma")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var tr api.Trace
		w.n.API(t, "GET", "/messages/"+qid, nil, 200, &tr)
		if tr.CustomerID != id {
			t.Fatalf("the message from 127.0.0.7 is %+v", tr)
		}
		if tr.Status == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message from 127.0.0.7 is %s", tr.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range console {
		if strings.Contains(c, "Content Security Policy") || strings.Contains(c, "Refused to") {
			t.Errorf("CSP violation reported by the browser: %s", c)
		}
	}
}
