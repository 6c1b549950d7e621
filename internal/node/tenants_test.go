package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/cli"
	"easymail/internal/config"
	"easymail/internal/testkit"
	"easymail/internal/testkit/testnode"
)

// greeting connects from localIP and returns the server's first reply line.
func greeting(t *testing.T, addr, localIP string) string {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, _ := conn.Read(buf)
	return string(buf[:n])
}

// TestRelayHostNameCannotTakeAnotherCustomersAddress: customer A registers the name of its MTA and points
// it, in DNS, at addresses of customer B (B's IP literal relay host and B's source IP) and at one of its
// own. B keeps its addresses: its mail still relays, its refusals stay in its own message log, A's log has
// nothing of B's, A sends from its own address only; the API shows A which addresses were ignored and why,
// and the operator gets one notice and a metric.
func TestRelayHostNameCannotTakeAnotherCustomersAddress(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.OperatorEmail = "noc@ops.test" })
	mx := e.mx(t, "dest.test", 11)
	noc := e.mx(t, "ops.test", 12)

	// Two customers. Without the rule, a relay host address went to whichever relay host row the access
	// table read last: the table was read in no set order, by row or by customer id. A is the customer whose
	// id sorts last and registers its name after B's literal, so that it would win either way.
	var c1, c2 api.Customer
	e.n.API(t, "POST", "/customers", map[string]string{"name": "Corp 1", "contact_email": "it@one.test", "pool": "default"}, 201, &c1)
	e.n.API(t, "POST", "/customers", map[string]string{"name": "Corp 2", "contact_email": "it@two.test", "pool": "default"}, 201, &c2)
	a, b := c1.ID, c2.ID
	if a < b {
		a, b = b, a
	}
	e.n.API(t, "PATCH", "/customers/"+a, map[string]string{"name": "A Corp"}, 200, nil)
	e.n.API(t, "PATCH", "/customers/"+b, map[string]string{"name": "B Corp"}, 200, nil)
	e.n.API(t, "POST", "/customers/"+b+"/domains", map[string]string{"domain": "b-corp.test"}, 201, nil)
	e.n.API(t, "POST", "/customers/"+b+"/relay-hosts", map[string]string{"host": "127.0.0.6"}, 201, nil)
	e.n.API(t, "POST", "/customers/"+b+"/source-ips", map[string]string{"cidr": "127.0.0.8"}, 201, nil)
	e.n.API(t, "POST", "/customers/"+a+"/domains", map[string]string{"domain": "a-corp.test"}, 201, nil)
	e.dns.AddA("mta.a-corp.test", "127.0.0.6", "127.0.0.7", "127.0.0.8")
	var host api.RelayHost
	e.n.API(t, "POST", "/customers/"+a+"/relay-hosts", map[string]string{"host": "mta.a-corp.test"}, 201, &host)

	// The answer to the registration already tells A what its name stands for; no other customer is named.
	got := map[string]api.RelayHostAddress{}
	for _, ad := range host.Addresses {
		got[ad.Address] = ad
	}
	if host.ResolvedAt == nil || len(got) != 3 || !got["127.0.0.7"].Used ||
		got["127.0.0.6"].Ignored != api.IgnoredRelayHost || got["127.0.0.8"].Ignored != api.IgnoredSourceIP {
		t.Fatalf("relay host as registered: %+v", host)
	}
	if b, _ := json.Marshal(host); bytes.Contains(b, []byte("B Corp")) || bytes.Contains(b, []byte(e.custID)) {
		t.Fatalf("A's relay host tells of another customer: %s", b)
	}

	// The CLI shows the same.
	if code, out := cliRun(t, e.n, "customer", "show", a); code != 0 ||
		!regexp.MustCompile(`mta\.a-corp\.test\s+127\.0\.0\.6\s+ignored \(relay_host\)`).MatchString(out) ||
		!regexp.MustCompile(`mta\.a-corp\.test\s+127\.0\.0\.7\s+used`).MatchString(out) {
		t.Fatalf("customer show: %d %s", code, out)
	}

	// B still relays from both its addresses.
	for _, ip := range []string{"127.0.0.6", "127.0.0.8"} {
		if _, err := send(t, e.n.SMTPAddr, ip, "ann@b-corp.test", []string{"bob@dest.test"},
			message("ann@b-corp.test", "bob@dest.test", "from B at "+ip)); err != nil {
			t.Fatalf("B from %s: %v", ip, err)
		}
	}
	mx.WaitMessages(t, 2, 10*time.Second)
	// B's refusals are B's.
	_, err := send(t, e.n.SMTPAddr, "127.0.0.6", "ann@elsewhere.test", []string{"bob@dest.test"},
		message("ann@elsewhere.test", "bob@dest.test", "not B's domain"))
	wantCode(t, err, 550, "5.7.1")
	// A sends from its own address, and not from B's.
	if _, err := send(t, e.n.SMTPAddr, "127.0.0.7", "zed@a-corp.test", []string{"bob@dest.test"},
		message("zed@a-corp.test", "bob@dest.test", "from A")); err != nil {
		t.Fatalf("A from its own address: %v", err)
	}
	_, err = send(t, e.n.SMTPAddr, "127.0.0.6", "zed@a-corp.test", []string{"bob@dest.test"},
		message("zed@a-corp.test", "bob@dest.test", "A from B's address"))
	wantCode(t, err, 550, "5.7.1")

	var logA, logB []api.MessageSummary
	e.n.API(t, "GET", "/messages?customer="+a, nil, 200, &logA)
	e.n.API(t, "GET", "/messages?customer="+b, nil, 200, &logB)
	if len(logA) != 1 || logA[0].Sender != "zed@a-corp.test" || logA[0].Status == "rejected" {
		t.Errorf("A's log: %+v", logA)
	}
	var rejectedB int
	for _, m := range logB {
		if m.CustomerID != b {
			t.Errorf("B's log holds %+v", m)
		}
		if m.Status == "rejected" {
			rejectedB++
		}
	}
	if len(logB) != 4 || rejectedB != 2 {
		t.Errorf("B's log: %+v", logB)
	}

	// The operator is told once, with both customers named.
	notices := noc.WaitMessages(t, 1, 20*time.Second)
	head, qp, _ := bytes.Cut(notices[0].Data, []byte("\r\n\r\n"))
	text, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(qp)))
	body := string(head) + "\n" + string(text)
	for _, want := range []string{"Subject: [easymail] relay host addresses ignored", "mta.a-corp.test", "A Corp",
		"relay host 127.0.0.6 of customer B Corp", "source IP 127.0.0.8/32 of customer B Corp"} {
		if !strings.Contains(body, want) {
			t.Errorf("notice lacks %q:\n%s", want, body)
		}
	}
	m := metricsText(t, e.n)
	for _, want := range []string{`easymail_access_relay_addresses_ignored{reason="relay_host"} 1`,
		`easymail_access_relay_addresses_ignored{reason="source_ip"} 1`, "easymail_access_notices_total 1"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Another provisioning change reloads the table: the same conflicts raise nothing new.
	e.n.API(t, "PATCH", "/customers/"+a, map[string]string{"name": "A Corp SA"}, 200, nil)
	if m := metricsText(t, e.n); !strings.Contains(m, "easymail_access_notices_total 1") {
		t.Error("a second notice for the same conflicts")
	}

	// When B lets its literal go, A's name gets the address.
	var full api.Customer
	e.n.API(t, "GET", "/customers/"+b, nil, 200, &full)
	e.n.API(t, "DELETE", "/customers/"+b+"/relay-hosts/"+full.RelayHosts[0].ID, nil, 204, nil)
	if _, err := send(t, e.n.SMTPAddr, "127.0.0.6", "zed@a-corp.test", []string{"bob@dest.test"},
		message("zed@a-corp.test", "bob@dest.test", "A from the freed address")); err != nil {
		t.Fatalf("A from the freed address: %v", err)
	}
}

// TestResolvedPrivateAddressRefused: with lifecycle.refuse_private_ips, a relay host name resolving to a
// loopback address does not make that address a relay host, as the literal would be refused.
func TestResolvedPrivateAddressRefused(t *testing.T) {
	dns := testkit.NewDNS(t)
	n := testnode.Start(t, testnode.Options{DNS: dns, Configure: func(c *config.Config) { c.Lifecycle.RefusePrivateIPs = true }})
	id := n.AddCustomer(t, "Acme", "acme.test", "")
	n.API(t, "POST", "/customers/"+id+"/relay-hosts", map[string]string{"host": "127.0.0.5"}, 422, nil)
	dns.AddA("mta.acme.test", "127.0.0.5")
	var h api.RelayHost
	n.API(t, "POST", "/customers/"+id+"/relay-hosts", map[string]string{"host": "mta.acme.test"}, 201, &h)
	if len(h.Addresses) != 1 || h.Addresses[0].Used || h.Addresses[0].Ignored != api.IgnoredRange {
		t.Fatalf("relay host %+v", h)
	}
	if g := greeting(t, n.SMTPAddr, "127.0.0.5"); !strings.HasPrefix(g, "554 5.7.1") {
		t.Fatalf("greeting %q", g)
	}
}

// cliRun runs an easymail client command against the node and returns its exit status and output.
func cliRun(t *testing.T, n *testnode.Node, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--api", n.APIURL, "--token", n.Token)
	code := cli.Main(context.Background(), args, &out, &errb)
	return code, out.String() + errb.String()
}

// TestSenderSubdomains: a domain's subdomains may send (envelope sender and header From) only when the
// domain is registered with include_subdomains, set through the CLI and the API, and off by default.
func TestSenderSubdomains(t *testing.T) {
	e := newEnv(t, nil)
	mx := e.mx(t, "dest.test", 11)
	sendAs := func(envelope, from string) error {
		_, err := send(t, e.n.SMTPAddr, "127.0.0.1", envelope, []string{"bob@dest.test"}, message(from, "bob@dest.test", "x"))
		return err
	}
	// acme.test was registered without its subdomains: only acme.test itself sends.
	if err := sendAs("alice@acme.test", "alice@acme.test"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, sendAs("news@mail.acme.test", "news@mail.acme.test"), 550, "5.7.1")
	wantCode(t, sendAs("alice@acme.test", "news@mail.acme.test"), 550, "5.7.1")

	if code, out := cliRun(t, e.n, "customer", "domain", "update", e.custID, "acme.test", "--include-subdomains=true"); code != 0 ||
		!regexp.MustCompile(`include_subdomains:\s+true`).MatchString(out) {
		t.Fatalf("domain update: %d %s", code, out)
	}
	if err := sendAs("news@mail.acme.test", "news@mail.acme.test"); err != nil {
		t.Fatal(err)
	}
	if err := sendAs("alice@acme.test", "News <news@deep.mail.acme.test>"); err != nil {
		t.Fatal(err)
	}
	mx.WaitMessages(t, 3, 10*time.Second)
	e.n.API(t, "PATCH", "/customers/"+e.custID+"/domains/acme.test", map[string]bool{"include_subdomains": false}, 200, nil)
	wantCode(t, sendAs("news@mail.acme.test", "news@mail.acme.test"), 550, "5.7.1")

	// A new domain with its subdomains, through the CLI; the customer shows which include them.
	if code, out := cliRun(t, e.n, "customer", "domain", "add", e.custID, "acme-mail.test", "--include-subdomains"); code != 0 {
		t.Fatalf("domain add: %d %s", code, out)
	}
	if err := sendAs("x@eu.acme-mail.test", "x@eu.acme-mail.test"); err != nil {
		t.Fatal(err)
	}
	var c api.Customer
	e.n.API(t, "GET", "/customers/"+e.custID, nil, 200, &c)
	inc := map[string]bool{}
	for _, d := range c.Domains {
		inc[d.Domain] = d.IncludeSubdomains
	}
	if len(inc) != 2 || inc["acme.test"] || !inc["acme-mail.test"] {
		t.Fatalf("domains %+v", c.Domains)
	}
	// A public suffix is refused, naming the field.
	code, out := cliRun(t, e.n, "customer", "domain", "add", e.custID, "co.uk")
	if code == 0 || !strings.Contains(out, "public suffix") {
		t.Fatalf("co.uk: %d %s", code, out)
	}
}

// onboardGet fetches an onboarding link as a browser (HTML) or as a program (JSON).
func onboardGet(t *testing.T, url string, asJSON bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if asJSON {
		req.Header.Set("Accept", "application/json")
	} else {
		req.Header.Set("Accept", "text/html")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	ct := resp.Header.Get("Content-Type")
	if asJSON != strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s (json %v): content type %q", url, asJSON, ct)
	}
	return resp.StatusCode, string(b)
}

// TestOnboardingLinkEndsWithTheService: a customer's onboarding links work while it is pending, active or
// terminating; from the termination date on (before the scheduler runs too), once deactivated and once
// removed they answer 410 Gone, and for a deleted customer 404, as a page and as JSON, showing nothing of
// the customer.
func TestOnboardingLinkEndsWithTheService(t *testing.T) {
	clk := &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
	l := &lifecycleNode{dns: testkit.NewDNS(t), mxp: testkit.ReserveMXPort(t), dataDir: t.TempDir(), clk: clk}
	l.start(t)
	var c api.Customer
	l.n.API(t, "POST", "/customers", map[string]string{"name": "Gone Corp", "contact_email": "it@gone.test"}, 201, &c)
	l.n.API(t, "POST", "/customers/"+c.ID+"/domains", map[string]string{"domain": "gone.test"}, 201, nil)
	link := c.OnboardingURL
	if strings.HasPrefix(link, "/") { // no api.public_url configured: relative to the API
		link = l.n.APIURL + link
	}
	check := func(what string, want int, text string) {
		t.Helper()
		for _, asJSON := range []bool{false, true} {
			st, body := onboardGet(t, link, asJSON)
			if st != want || !strings.Contains(body, text) {
				t.Fatalf("%s (json %v): %d, want %d with %q: %s", what, asJSON, st, want, text, body)
			}
			if want != 200 && (strings.Contains(body, "Gone Corp") || strings.Contains(body, "gone.test")) {
				t.Fatalf("%s (json %v): a dead link shows the customer: %s", what, asJSON, body)
			}
		}
	}
	check("pending", 200, "gone.test")
	at := clk.Now().Add(48 * time.Hour)
	l.n.API(t, "POST", "/customers/"+c.ID+"/termination", map[string]string{"deactivate_at": at.Format(time.RFC3339)}, 200, nil)
	check("terminating", 200, "gone.test")

	// The date passes: dead at once, then deactivated by the scheduler, then removed after the grace period.
	clk.Set(at)
	check("past the date", 410, "service of this account has ended")
	waitFor(t, "deactivation", func() bool {
		var got api.Customer
		l.n.API(t, "GET", "/customers/"+c.ID, nil, 200, &got)
		return got.Status == api.StatusDeactivated
	})
	check("deactivated", 410, "service of this account has ended")
	l.n.API(t, "POST", "/customers/"+c.ID+"/onboarding", nil, 409, nil)
	clk.Set(at.Add(l.n.Config.Lifecycle.Grace + time.Hour))
	waitFor(t, "removal", func() bool {
		var got api.Customer
		l.n.API(t, "GET", "/customers/"+c.ID, nil, 200, &got)
		return got.Status == api.StatusRemoved
	})
	check("removed", 410, "service of this account has ended")
	l.n.API(t, "DELETE", "/customers/"+c.ID, nil, 204, nil)
	check("deleted", 404, "unknown or has expired")
}
