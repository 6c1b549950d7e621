package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	mdns "github.com/miekg/dns"

	"easymail/internal/api"
	"easymail/internal/cli"
	"easymail/internal/config"
	"easymail/internal/testkit"
	"easymail/internal/testkit/testnode"
)

// fakeClock is the lifecycle clock of the test nodes.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// lifecycleNode is a node whose lifecycle scheduler runs every few milliseconds on the fake clock.
type lifecycleNode struct {
	n       *testnode.Node
	dns     *testkit.DNS
	mxp     *testkit.MXPort
	dataDir string
	clk     *fakeClock
}

func (l *lifecycleNode) start(t *testing.T) {
	t.Helper()
	l.n = testnode.Start(t, testnode.Options{DNS: l.dns, DeliveryPort: l.mxp.Port(), DataDir: l.dataDir, Now: l.clk.Now,
		Configure: func(c *config.Config) {
			dkimConfig(c)
			c.Lifecycle.Interval = 20 * time.Millisecond
		}})
}

// cli runs an easymail client command against the node and returns its exit status and output.
func (l *lifecycleNode) cli(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--api", l.n.APIURL, "--token", l.n.Token)
	code := cli.Main(context.Background(), args, &out, &errb)
	return code, out.String() + errb.String()
}

// cliJSON runs a command with --json, requires success, and decodes its output into v.
func (l *lifecycleNode) cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	code, out := l.cli(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("easymail %s: exit %d: %s", strings.Join(args, " "), code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("easymail %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// waitFor polls cond until it holds (each poll is a state change to wait for, not a duration to assert).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var runsMetric = regexp.MustCompile(`(?m)^easymail_lifecycle_runs_total (\d+)`)

// waitRuns waits until the scheduler has completed n more runs.
func (l *lifecycleNode) waitRuns(t *testing.T, n int) {
	t.Helper()
	runs := func() int {
		m := runsMetric.FindStringSubmatch(metricsText(t, l.n))
		if m == nil {
			return 0
		}
		v, _ := strconv.Atoi(m[1])
		return v
	}
	start := runs()
	waitFor(t, fmt.Sprintf("%d scheduler runs", n), func() bool { return runs() >= start+n })
}

// noticeCount counts the notices received at the contact MX by recipient and kind.
func noticeCount(mx *testkit.MX) map[string]int {
	out := map[string]int{}
	for _, m := range mx.Messages() {
		kind := "?"
		head, body, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
		text, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		switch s := string(head) + "\n" + string(text); {
		case strings.Contains(s, "in 30 days"):
			kind = "30d"
		case strings.Contains(s, "in 7 days"):
			kind = "7d"
		case strings.Contains(s, "Subject: Your Easymail relay service has ended"):
			kind = "ended"
		}
		for _, to := range m.To {
			out[to+" "+kind]++
		}
	}
	return out
}

// TestCustomerLifecycle drives a customer's whole life through the CLI and the API of a real node, against
// a fake DNS and fake MX hosts: creation, onboarding (SPF include missing, then added; DKIM record wrong,
// then right; activation by the check), mail, a scheduled termination whose notices reach the contact
// domain's MX exactly once each across a restart, refusal from the date, removal after the grace period.
func TestCustomerLifecycle(t *testing.T) {
	clk := &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
	l := &lifecycleNode{dns: testkit.NewDNS(t), mxp: testkit.ReserveMXPort(t), dataDir: t.TempDir(), clk: clk}
	l.start(t)
	d := l.dns
	dest := l.mxp.NewMX(t, "127.0.0.11")
	d.AddMX("dest.test", "mx.dest.test", 10)
	d.AddA("mx.dest.test", "127.0.0.11")
	contactMX := l.mxp.NewMX(t, "127.0.0.12")
	d.AddMX("acme.test", "mx.acme.test", 10)
	d.AddA("mx.acme.test", "127.0.0.12")

	// Provisioning through the CLI.
	var c api.Customer
	l.cliJSON(t, &c, "customer", "add", "--name", "Acme", "--contact", "it@acme.test", "--technical", "noc@acme.test")
	if c.Status != api.StatusPending || c.TechnicalEmail != "noc@acme.test" || c.AdminEmail != "it@acme.test" || c.OnboardingURL == "" {
		t.Fatalf("created %+v", c)
	}
	var dom api.Domain
	l.cliJSON(t, &dom, "customer", "domain", "add", c.ID, "acme.test")
	if dom.DKIM == nil {
		t.Fatalf("domain without a DKIM record: %+v", dom)
	}
	if code, out := l.cli(t, "customer", "source-ip", "add", c.ID, "127.0.0.1"); code != 0 {
		t.Fatalf("source-ip add: %s", out)
	}

	// Onboarding: the include is missing and the DKIM record is not the key's.
	d.AddTXT("acme.test", "v=spf1 mx -all")
	d.AddTXT("_dmarc.acme.test", "v=DMARC1; p=quarantine; rua=mailto:dmarc@acme.test")
	d.AddTXT(dom.DKIM.Name, "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrong")
	code, out := l.cli(t, "customer", "check", c.ID)
	if code != 1 || !strings.Contains(out, "add include:_spf.easymail.test") || !strings.Contains(out, "dkim fail") ||
		!strings.Contains(out, "dmarc pass") || !strings.Contains(out, "relay.easymail.test port") {
		t.Fatalf("check before setup: exit %d:\n%s", code, out)
	}
	// The operator publishes its SPF records as `easymail dns spf` prints them; the customer adds the include.
	code, out = l.cli(t, "dns", "spf")
	if code != 0 || !strings.Contains(out, `_spf.easymail.test. IN TXT "v=spf1 ip4:127.0.0.1 ~all"`) {
		t.Fatalf("dns spf: %s", out)
	}
	var spf api.SPFRecords
	l.cliJSON(t, &spf, "dns", "spf")
	for _, r := range spf.Records {
		d.AddTXT(r.Name, r.Value)
	}
	d.Remove("acme.test", mdns.TypeTXT)
	d.AddTXT("acme.test", "v=spf1 mx include:_spf.easymail.test -all")
	var chk api.CustomerCheck
	l.n.API(t, "GET", "/customers/"+c.ID+"/check", nil, 200, &chk)
	if chk.Verified || chk.Status != api.StatusPending || chk.Domains[0].SPF.Status != "pass" || chk.Domains[0].DKIM.Status != "fail" {
		t.Fatalf("check with the include, wrong DKIM: %+v", chk)
	}
	// Mail is accepted while pending (the operator may let a customer send before DNS is done).
	msg := message("Ann <ann@acme.test>", "bob@dest.test", "hello")
	if _, err := send(t, l.n.SMTPAddr, "127.0.0.1", "ann@acme.test", []string{"bob@dest.test"}, msg); err != nil {
		t.Fatal(err)
	}
	dest.WaitMessages(t, 1, 10*time.Second)
	// The right DKIM record: the check verifies the domain and activates the customer.
	d.Remove(dom.DKIM.Name, mdns.TypeTXT)
	d.AddTXT(dom.DKIM.Name, dom.DKIM.Value)
	l.cliJSON(t, &chk, "customer", "check", c.ID)
	if !chk.Verified || !chk.Activated || chk.Status != api.StatusActive {
		t.Fatalf("check after setup: %+v", chk)
	}

	// A second customer, set up right at once, is activated by a visit of its onboarding page.
	var b api.Customer
	l.n.API(t, "POST", "/customers", map[string]string{"name": "Bolt", "contact_email": "it@bolt.test"}, 201, &b)
	var bd api.Domain
	l.n.API(t, "POST", "/customers/"+b.ID+"/domains", map[string]string{"domain": "bolt.test"}, 201, &bd)
	d.AddTXT("bolt.test", "v=spf1 include:_spf.easymail.test -all")
	d.AddTXT(bd.DKIM.Name, bd.DKIM.Value)
	d.AddTXT("_dmarc.bolt.test", "v=DMARC1; p=reject")
	page := l.n.APIURL + b.OnboardingURL[strings.Index(b.OnboardingURL, "/onboard/"):]
	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "the relay is now active for you") {
		t.Fatalf("onboarding page: %d\n%s", resp.StatusCode, body)
	}
	l.n.API(t, "GET", "/customers/"+b.ID, nil, 200, &b)
	if b.Status != api.StatusActive || b.ActivatedAt == nil {
		t.Fatalf("after the onboarding page: %+v", b)
	}

	// Termination in 40 days (by the lifecycle clock), through the CLI.
	at := clk.Now().Add(40 * 24 * time.Hour)
	l.cliJSON(t, &c, "customer", "terminate", c.ID, "--at", at.Format(time.RFC3339))
	if c.Status != api.StatusTerminating || c.DeactivateAt == nil || !c.DeactivateAt.Equal(at) {
		t.Fatalf("terminate: %+v", c)
	}
	if _, err := send(t, l.n.SMTPAddr, "127.0.0.1", "ann@acme.test", []string{"bob@dest.test"}, msg); err != nil {
		t.Fatalf("mail refused while terminating, before the date: %v", err)
	}
	dest.WaitMessages(t, 2, 10*time.Second)

	clk.Set(at.Add(-30*24*time.Hour + time.Minute))
	contactMX.WaitMessages(t, 2, 20*time.Second)
	l.waitRuns(t, 3)
	// A restart in between: the schedule is in the database and nothing is sent twice.
	l.n.Stop(t)
	l.start(t)
	l.waitRuns(t, 3)
	if got := noticeCount(contactMX); len(got) != 2 || got["it@acme.test 30d"] != 1 || got["noc@acme.test 30d"] != 1 {
		dumpNotices(t, contactMX)
		t.Fatalf("after the 30-day notice and a restart: %v", got)
	}
	clk.Set(at.Add(-7*24*time.Hour + time.Minute))
	contactMX.WaitMessages(t, 4, 20*time.Second)
	clk.Set(at)
	contactMX.WaitMessages(t, 6, 20*time.Second)
	waitFor(t, "deactivation", func() bool {
		l.n.API(t, "GET", "/customers/"+c.ID, nil, 200, &c)
		return c.Status == api.StatusDeactivated
	})
	// The run that deactivated the customer reloads the SMTP access table before it counts as done.
	l.waitRuns(t, 1)
	_, err = send(t, l.n.SMTPAddr, "127.0.0.1", "ann@acme.test", []string{"bob@dest.test"}, msg)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) {
		t.Fatalf("mail after the date: %#v", err)
	}
	// Cancelling is too late now.
	if code, out := l.cli(t, "customer", "terminate-cancel", c.ID); code == 0 || !strings.Contains(out, "409") {
		t.Fatalf("cancel after the date: exit %d: %s", code, out)
	}

	// After the grace period (30 days by default) the hosts, domains and IPs are gone.
	clk.Set(at.Add(30*24*time.Hour + time.Minute))
	waitFor(t, "removal", func() bool {
		l.n.API(t, "GET", "/customers/"+c.ID, nil, 200, &c)
		return c.Status == api.StatusRemoved
	})
	l.waitRuns(t, 1)
	if len(c.Domains)+len(c.RelayHosts)+len(c.SourceIPs) != 0 || c.RemovedAt == nil {
		t.Fatalf("removed customer still has %+v", c)
	}
	_, err = send(t, l.n.SMTPAddr, "127.0.0.1", "ann@acme.test", []string{"bob@dest.test"}, msg)
	if err == nil || !strings.Contains(err.Error(), "554") {
		t.Fatalf("mail after removal: %v", err)
	}

	// Exactly one notice of each kind to each contact, even after more runs.
	l.waitRuns(t, 3)
	got := noticeCount(contactMX)
	for _, to := range []string{"it@acme.test", "noc@acme.test"} {
		for _, kind := range []string{"30d", "7d", "ended"} {
			if got[to+" "+kind] != 1 {
				t.Errorf("%s received %d %s notices", to, got[to+" "+kind], kind)
			}
		}
	}
	if len(got) != 6 {
		t.Errorf("notices %v", got)
	}
	for _, m := range contactMX.Messages() {
		if m.From != "postmaster@relay.easymail.test" {
			t.Errorf("notice from %q", m.From)
		}
	}

	// The audit log tells the story.
	var entries []api.AuditEntry
	l.cliJSON(t, &entries, "audit", "list", "--customer", c.ID)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	joined := strings.Join(actions, "\n")
	for _, want := range []string{"POST /api/v1/customers", "POST /api/v1/customers/{id}/domains", "POST /api/v1/customers/{id}/source-ips",
		"lifecycle activate", "POST /api/v1/customers/{id}/termination", "lifecycle deactivate", "lifecycle remove"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit lacks %q:\n%s", want, joined)
		}
	}
}

// dumpNotices logs the notices received, to explain a failure.
func dumpNotices(t *testing.T, mx *testkit.MX) {
	t.Helper()
	for _, m := range mx.Messages() {
		t.Logf("%q", m.Data)
	}
}
