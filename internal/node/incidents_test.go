package node_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"easymail/internal/api"
	"easymail/internal/config"
	"easymail/internal/testkit"
	"easymail/internal/testkit/testnode"
)

// fastMonitors makes the incident monitors check every 50 ms.
func fastMonitors(c *config.Config) {
	c.Incidents.Monitors.Interval = 50 * time.Millisecond
	c.OperatorEmail = "noc@ops.test"
}

// incidents returns the node's incidents (status open or all) by cause.
func incidents(t *testing.T, n *testnode.Node, status string) map[string]api.Incident {
	t.Helper()
	var list []api.Incident
	n.API(t, "GET", "/incidents?status="+status, nil, 200, &list)
	out := map[string]api.Incident{}
	for _, i := range list {
		if _, dup := out[i.Cause]; dup && i.Cause != "" && status == "open" {
			t.Fatalf("two open incidents for the cause %s", i.Cause)
		}
		if _, seen := out[i.Cause]; !seen {
			out[i.Cause] = i
		}
	}
	return out
}

// waitIncident polls the open (or all) incidents until ok holds for the incident of cause.
func waitIncident(t *testing.T, n *testnode.Node, status, cause, what string, ok func(api.Incident, bool) bool) api.Incident {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		i, found := incidents(t, n, status)[cause]
		if ok(i, found) {
			return i
		}
		if time.Now().After(deadline) {
			t.Fatalf("incident %s: not %s: %+v", cause, what, i)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func isOpen(i api.Incident, found bool) bool { return found && i.Status == api.IncidentNew }

// resolved waits for the cause's incident to be resolved by its monitor.
func resolved(t *testing.T, n *testnode.Node, cause string) api.Incident {
	t.Helper()
	waitIncident(t, n, "open", cause, "resolved", func(_ api.Incident, found bool) bool { return !found })
	i := incidents(t, n, "all")[cause]
	if i.Status != api.IncidentResolved || i.ResolvedAt == nil {
		t.Fatalf("incident %s after its cause cleared: %+v", cause, i)
	}
	return i
}

// TestIncidentsIPListedAndPoolOut: a fake DNSBL lists the pool's IPs one after the other: P3 for the first,
// then P2 for both and P1 for the pool (linked to its customer), mailed to the operator and the customer's
// technical contact; delisted, every incident is resolved by the monitor.
func TestIncidentsIPListedAndPoolOut(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Pools = []config.Pool{{Name: "default", IPs: []config.PoolAddr{addr("127.0.0.2", "out2.easymail.test"), addr("127.0.0.3", "out3.easymail.test")}}}
		c.RBL.Zones = []config.RBLZone{{Zone: "bl.test"}}
		c.RBL.Interval = 100 * time.Millisecond
		c.RBL.Hold = 200 * time.Millisecond
		fastMonitors(c)
	})
	ops := e.mx(t, "ops.test", 12)
	acme := e.mx(t, "acme.test", 13)
	e.n.API(t, "PATCH", "/customers/"+e.custID, map[string]string{"technical_email": "tech@acme.test"}, 200, nil)

	e.dns.AddA("2.0.0.127.bl.test", "127.0.0.2")
	i := waitIncident(t, e.n, "open", "ip-listed:127.0.0.2", "opened", isOpen)
	if i.Priority != "P3" || i.Channel != "monitor" || i.CustomerID != "" || !strings.Contains(i.Title, "127.0.0.2") ||
		i.SLA.ResponseDueAt.IsZero() {
		t.Fatalf("listed IP incident: %+v", i)
	}
	notice := ops.WaitMessages(t, 2, 20*time.Second) // the IP notice of ippool, and the incident's
	if !anyContains(notice, "Subject: [easymail] [P3] "+i.ID+" opened") {
		t.Fatalf("no incident notice to the operator among %d messages", len(notice))
	}

	e.dns.AddA("3.0.0.127.bl.test", "127.0.0.3")
	pool := waitIncident(t, e.n, "open", "pool-unusable:default", "opened", isOpen)
	if pool.Priority != "P1" || !hasLink(pool, "customer", e.custID) {
		t.Fatalf("pool incident: %+v", pool)
	}
	waitIncident(t, e.n, "open", "ip-listed:127.0.0.2", "raised to P2", func(i api.Incident, f bool) bool { return f && i.Priority == "P2" })
	if got := incidents(t, e.n, "open"); len(got) != 3 || got["ip-listed:127.0.0.3"].Priority != "P2" || got["ip-listed:127.0.0.2"].ID != i.ID {
		t.Fatalf("open incidents with the pool out: %+v", got)
	}
	// The customer's token shows the pool incident; the IP incidents are the operator's.
	var tok api.NewToken
	e.n.API(t, "POST", "/tokens", api.TokenRequest{Role: "customer", CustomerID: e.custID}, 201, &tok)
	var mine []api.Incident
	apiAs(t, e.n.APIURL, tok.Secret, "GET", "/incidents", nil, 200, &mine)
	if len(mine) != 1 || mine[0].ID != pool.ID {
		t.Fatalf("the customer sees %+v", mine)
	}

	for _, z := range []string{"2.0.0.127.bl.test", "3.0.0.127.bl.test"} {
		e.dns.Remove(z, dns.TypeA)
	}
	for _, c := range []string{"ip-listed:127.0.0.2", "ip-listed:127.0.0.3", "pool-unusable:default"} {
		resolved(t, e.n, c)
	}
	// The customer's technical contact hears of the pool incident and of its resolution: with the pool out,
	// the notices (sent through the relay itself) wait in the queue until an IP is back.
	tech := acme.WaitMessages(t, 2, 20*time.Second)
	if !anyContains(tech, pool.ID+" opened") || !anyContains(tech, pool.ID+" resolved") || anyContains(tech, "Cause: pool-unusable") {
		t.Fatalf("customer notices:\n%s", tech[0].Data)
	}
}

func hasLink(i api.Incident, kind, value string) bool {
	for _, l := range i.Links {
		if l.Kind == kind && l.Value == value {
			return true
		}
	}
	return false
}

func anyContains(msgs []testkit.Received, s string) bool {
	for _, m := range msgs {
		if strings.Contains(string(m.Data), s) {
			return true
		}
	}
	return false
}

// fakeClamd is a clamd on loopback that answers INSTREAM "stream: OK" while up and closes every
// connection at once while down.
type fakeClamd struct {
	ln   net.Listener
	down atomic.Bool
}

func startFakeClamd(t *testing.T) *fakeClamd {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &fakeClamd{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeClamd) serve(c net.Conn) {
	defer c.Close()
	if f.down.Load() {
		return
	}
	r := bufio.NewReader(c)
	for n := 1; ; n++ {
		cmd, err := r.ReadString(0)
		if err != nil {
			return
		}
		if cmd == "zIDSESSION\x00" {
			n--
			continue
		}
		for {
			var size uint32
			if err := binary.Read(r, binary.BigEndian, &size); err != nil {
				return
			}
			if size == 0 {
				break
			}
			if _, err := io.CopyN(io.Discard, r, int64(size)); err != nil {
				return
			}
		}
		if f.down.Load() {
			return
		}
		fmt.Fprintf(c, "%d: stream: OK\x00", n)
	}
}

// TestIncidentsScannerDownFailClosed: clamd down with the default fail-closed mode: 451 4.7.1 and a P2
// incident; back up, the next message passes and the incident is resolved.
func TestIncidentsScannerDownFailClosed(t *testing.T) {
	clamd := startFakeClamd(t)
	clamd.down.Store(true)
	e := newEnv(t, func(c *config.Config) {
		c.Scan.Clamd = "tcp://" + clamd.ln.Addr().String()
		fastMonitors(c)
	})
	mx := e.mx(t, "dest.test", 11)
	_, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"}, message("alice@acme.test", "bob@dest.test", "down"))
	wantCode(t, err, 451, "4.7.1")
	i := waitIncident(t, e.n, "open", "scanner-down:clamd", "opened", isOpen)
	if i.Priority != "P2" || !strings.Contains(i.Title, "fail-closed") || !hasLink(i, "scanner", "clamd") {
		t.Fatalf("scanner incident: %+v", i)
	}
	clamd.down.Store(false)
	if _, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"}, message("alice@acme.test", "bob@dest.test", "up")); err != nil {
		t.Fatal(err)
	}
	mx.WaitMessages(t, 1, 20*time.Second)
	resolved(t, e.n, "scanner-down:clamd")
}

// TestIncidentsBacklogFailuresAndHeldCustomer: messages to a destination that refuses connections pile up
// deferred: a queue backlog (P2) and a delivery failure rate (P3); once they are deleted the backlog clears.
// A volume spike holds the customer (P2, for it); released, its incident is resolved.
func TestIncidentsBacklogFailuresAndHeldCustomer(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Delivery.Retry = []time.Duration{100 * time.Millisecond}
		c.Incidents.Monitors.QueueMessages = 2
		c.Incidents.Monitors.FailureMinAttempts = 3
		c.Incidents.Monitors.FailureWindow = time.Hour
		c.Compromise.Floor = 6
		c.Compromise.Factor = 1
		c.Compromise.Interval = 50 * time.Millisecond
		fastMonitors(c)
	})
	e.mx(t, "ops.test", 12) // the operator's notices are delivered, not queued
	// down.test has an MX on an address where nothing listens: every attempt is deferred.
	e.dns.AddMX("down.test", "mx.down.test", 10)
	e.dns.AddA("mx.down.test", "127.0.0.44")
	ids := sendN(t, e, 3, "bob@down.test", "stuck")
	backlog := waitIncident(t, e.n, "open", "queue-backlog:relay.easymail.test", "opened", isOpen)
	if backlog.Priority != "P2" || !strings.Contains(backlog.Description, "messages waiting (threshold 2)") {
		t.Fatalf("backlog incident: %+v", backlog)
	}
	fail := waitIncident(t, e.n, "open", "delivery-failures:down.test", "opened", isOpen)
	if fail.Priority != "P3" || !hasLink(fail, "destination", "down.test") {
		t.Fatalf("failure incident: %+v", fail)
	}
	for _, id := range ids {
		e.n.API(t, "DELETE", "/queue/"+id, nil, 204, nil)
	}
	resolved(t, e.n, "queue-backlog:relay.easymail.test")

	// A spike over the floor: the customer is held.
	sendN(t, e, 8, "carol@down.test", "spike")
	held := waitIncident(t, e.n, "open", "customer-held:"+e.custID, "opened", isOpen)
	if held.Priority != "P2" || held.CustomerID != e.custID {
		t.Fatalf("held incident: %+v", held)
	}
	e.n.API(t, "POST", "/customers/"+e.custID+"/purge-held", nil, 200, nil)
	resolved(t, e.n, "customer-held:"+e.custID)
}

// writeCert writes a self-signed certificate for relay.easymail.test valid until notAfter.
func writeCert(t *testing.T, dir string, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.easymail.test"},
		DNSNames: []string{"relay.easymail.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestIncidentsCertificateExpiry: the SMTP certificate expires in 10 days: P4; the node restarted with a
// renewed one resolves it.
func TestIncidentsCertificateExpiry(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	cert, key := writeCert(t, dir, time.Now().Add(10*24*time.Hour))
	dnsSrv := testkit.NewDNS(t)
	configure := func(c *config.Config) {
		c.SMTP.TLSCert, c.SMTP.TLSKey = cert, key
		fastMonitors(c)
	}
	n := testnode.Start(t, testnode.Options{DNS: dnsSrv, DataDir: data, Configure: configure})
	i := waitIncident(t, n, "open", "cert-expiry:smtp", "opened", isOpen)
	if i.Priority != "P4" || !strings.Contains(i.Title, "expires in") {
		t.Fatalf("certificate incident: %+v", i)
	}
	if m := metricsText(t, n); !strings.Contains(m, `easymail_tls_certificate_expiry_timestamp_seconds{name="smtp"}`) ||
		!strings.Contains(m, `easymail_incidents_open{priority="P4"} 1`) {
		t.Fatalf("metrics:\n%s", m)
	}
	n.Stop(t)
	writeCert(t, dir, time.Now().Add(90*24*time.Hour))
	n = testnode.Start(t, testnode.Options{DNS: dnsSrv, DataDir: data, Configure: configure})
	resolved(t, n, "cert-expiry:smtp")
}

// TestIncidentReportedByEmail: the customer's server relays a report to incidents@<hostname>: it becomes an
// incident of that customer (channel email, [P2] in the subject), the reporter gets an acknowledgement, the
// customer sees it and comments and confirms it through the API, and another customer gets 404 for it.
func TestIncidentReportedByEmail(t *testing.T) {
	e := newEnv(t, fastMonitors)
	acme := e.mx(t, "acme.test", 13)
	// The contract names its SLA type: a configured one only.
	e.n.API(t, "PATCH", "/customers/"+e.custID, map[string]string{"sla_type": "platinum"}, 422, nil)
	var c api.Customer
	e.n.API(t, "PATCH", "/customers/"+e.custID, map[string]string{"sla_type": "standard"}, 200, &c)
	if c.SLAType != "standard" {
		t.Fatalf("sla_type after PATCH: %+v", c)
	}
	msg := message("alice@acme.test", "incidents@relay.easymail.test", "[P2] Mail to example.org bounces")
	if _, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"incidents@relay.easymail.test"}, msg); err != nil {
		t.Fatal(err)
	}
	var list []api.Incident
	deadline := time.Now().Add(20 * time.Second)
	for len(list) == 0 && time.Now().Before(deadline) {
		e.n.API(t, "GET", "/incidents?customer="+e.custID, nil, 200, &list)
		time.Sleep(25 * time.Millisecond)
	}
	if len(list) != 1 {
		t.Fatalf("incidents: %+v", list)
	}
	inc := list[0]
	if inc.Channel != "email" || inc.Priority != "P2" || inc.Title != "Mail to example.org bounces" || inc.CustomerID != e.custID ||
		inc.Reporter != "alice@acme.test" || inc.SLA.ResponseTarget != 1800 || !strings.Contains(inc.Description, "this line starts with a dot") {
		t.Fatalf("incident from e-mail: %+v", inc)
	}
	got := acme.WaitMessages(t, 2, 20*time.Second) // the acknowledgement to alice, the notice to the contact
	if !anyContains(got, "Subject: [easymail] [P2] "+inc.ID+" received") || !anyContains(got, inc.ID+" opened") {
		t.Fatalf("acknowledgement and notice: %d messages", len(got))
	}

	var tok, otherTok api.NewToken
	e.n.API(t, "POST", "/tokens", api.TokenRequest{Role: "customer", CustomerID: e.custID}, 201, &tok)
	other := e.n.AddCustomer(t, "Other", "other.test", "127.0.0.9")
	e.n.API(t, "POST", "/tokens", api.TokenRequest{Role: "customer", CustomerID: other}, 201, &otherTok)
	// Another customer: 404 on every incident route, an empty list.
	for _, c := range []struct{ method, path string }{{"GET", "/incidents/" + inc.ID}, {"POST", "/incidents/" + inc.ID + "/comments"},
		{"POST", "/incidents/" + inc.ID + "/confirm"}, {"GET", "/incidents/INC-999"}} {
		apiAs(t, e.n.APIURL, otherTok.Secret, c.method, c.path, map[string]string{"text": "x"}, 404, nil)
	}
	var none []api.Incident
	apiAs(t, e.n.APIURL, otherTok.Secret, "GET", "/incidents?status=all", nil, 200, &none)
	if len(none) != 0 {
		t.Fatalf("another customer lists %+v", none)
	}
	apiAs(t, e.n.APIURL, otherTok.Secret, "GET", "/incidents?customer="+e.custID, nil, 200, &none)
	if len(none) != 0 {
		t.Fatalf("another customer lists %+v", none)
	}
	// The customer comments; it may not acknowledge or resolve; the operator does; the customer confirms.
	apiAs(t, e.n.APIURL, tok.Secret, "POST", "/incidents/"+inc.ID+"/comments", api.IncidentComment{Text: "Still failing"}, 201, nil)
	apiAs(t, e.n.APIURL, tok.Secret, "POST", "/incidents/"+inc.ID+"/ack", nil, 403, nil)
	e.n.API(t, "POST", "/incidents/"+inc.ID+"/comments", api.IncidentComment{Text: "checking their MX", Internal: true}, 201, nil)
	e.n.API(t, "POST", "/incidents/"+inc.ID+"/ack", nil, 200, nil)
	e.n.API(t, "POST", "/incidents/"+inc.ID+"/resolve", api.IncidentNote{Note: "example.org fixed its MX"}, 200, nil)
	var done api.Incident
	apiAs(t, e.n.APIURL, tok.Secret, "POST", "/incidents/"+inc.ID+"/confirm", nil, 200, &done)
	if done.Status != api.IncidentConfirmed || done.SLA.RespondedAt == nil {
		t.Fatalf("confirmed: %+v", done)
	}
	for _, ev := range done.Events {
		if ev.Visibility != api.VisibilityCustomer || strings.Contains(ev.Body, "checking their MX") {
			t.Fatalf("the customer sees an internal event: %+v", ev)
		}
	}
	// The month's report names it.
	var rep api.SLAReport
	apiAs(t, e.n.APIURL, tok.Secret, "GET", "/sla/report?month="+inc.OpenedAt.In(mustLux(t)).Format("2006-01"), nil, 200, &rep)
	if rep.Total != 1 || rep.Incidents[0].ID != inc.ID || rep.CustomerID != e.custID {
		t.Fatalf("report: %+v", rep)
	}
}

func mustLux(t *testing.T) *time.Location {
	l, err := time.LoadLocation("Europe/Luxembourg")
	if err != nil {
		t.Fatal(err)
	}
	return l
}
