package node_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/config"
	"easymail/internal/testkit"
	"easymail/internal/testkit/testnode"
	"easymail/internal/tlsrpt"
)

// stsEnv is a node whose MTA-STS policy fetches go to a loopback HTTPS server, whose MX hosts' and policy
// hosts' certificates come from a test CA (delivery.tls_ca_file), and whose TLS-RPT clock the test moves.
type stsEnv struct {
	*env
	ca  *testkit.CA
	sts *testkit.STS
	now atomic.Int64 // TLS-RPT clock, Unix milliseconds
}

// day1 is the UTC day the sessions of the tests are counted in.
var day1 = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

func newSTSEnv(t *testing.T, configure func(*config.Config)) *stsEnv {
	t.Helper()
	e := &stsEnv{ca: testkit.NewCA(t)}
	e.sts = testkit.NewSTS(t, e.ca)
	e.now.Store(day1.UnixMilli())
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, e.ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	dns := testkit.NewDNS(t)
	mxp := testkit.ReserveMXPort(t)
	n := testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), MTASTSDial: e.sts.Dial,
		TLSRPTNow: func() time.Time { return time.UnixMilli(e.now.Load()) },
		Configure: func(c *config.Config) {
			c.Delivery.TLSCAFile = caFile
			c.Delivery.TLSRPT.Interval = 50 * time.Millisecond
			if configure != nil {
				configure(c)
			}
		}})
	e.env = &env{n: n, dns: dns, mxp: mxp}
	e.custID = n.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	return e
}

// stsDomain publishes an MTA-STS policy for domain (its TXT record and the policy text) and a TLS-RPT record
// sending reports to tlsrpt@reports.test, and starts its MX host mx.DOMAIN on 127.0.0.<x>.
func (e *stsEnv) stsDomain(t *testing.T, domain string, x int, policy string) *testkit.MX {
	t.Helper()
	mx := e.mx(t, domain, x)
	e.dns.AddTXT("_mta-sts."+domain, "v=STSv1; id=20300301;")
	e.dns.AddTXT("_smtp._tls."+domain, "v=TLSRPTv1; rua=mailto:tlsrpt@reports.test")
	e.sts.Set(domain, policy)
	return mx
}

type tlsTrace struct {
	Status   string `json:"status"`
	Attempts []struct {
		Outcome   string `json:"outcome"`
		Enhanced  string `json:"enhanced"`
		Reply     string `json:"reply"`
		TLSVerify string `json:"tls_verify"`
		TLSPolicy string `json:"tls_policy"`
	} `json:"attempts"`
}

// waitAttempt waits until message id has an attempt and returns the trace.
func (e *stsEnv) waitAttempt(t *testing.T, id string) tlsTrace {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var tr tlsTrace
		e.n.API(t, "GET", "/messages/"+id, nil, 200, &tr)
		if len(tr.Attempts) > 0 {
			return tr
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: no attempt: %+v", id, tr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *stsEnv) sendOne(t *testing.T, rcpt string) string {
	t.Helper()
	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{rcpt}, message("alice@acme.test", rcpt, "hi"))
	if err != nil {
		t.Fatal(err)
	}
	return queueID(t, reply)
}

// TestMTASTSEnforceDefersTestingDelivers: under an enforce policy, a destination whose MX host the policy does
// not list, and one whose MX host's certificate has expired, get no mail: the message is deferred with the
// policy's reason in the API trace (and never sent in plain text). Under a testing policy the same mismatch
// delivers. The policies fetched are listed by GET /mta-sts/policies.
func TestMTASTSEnforceDefersTestingDelivers(t *testing.T) {
	e := newSTSEnv(t, nil)
	unlisted := e.stsDomain(t, "sts.test", 11, "version: STSv1\nmode: enforce\nmx: mail.sts.test\nmax_age: 86400\n")
	unlisted.EnableTLSWith(e.ca.Good("mx.sts.test"))
	expired := e.stsDomain(t, "bad.test", 12, "version: STSv1\nmode: enforce\nmx: mx.bad.test\nmax_age: 86400\n")
	expired.EnableTLSWith(e.ca.Expired("mx.bad.test"))
	testing := e.stsDomain(t, "testing.test", 13, "version: STSv1\nmode: testing\nmx: mail.testing.test\nmax_age: 86400\n")

	id1 := e.sendOne(t, "bob@sts.test")
	id2 := e.sendOne(t, "carol@bad.test")
	id3 := e.sendOne(t, "dave@testing.test")

	tr := e.waitAttempt(t, id1)
	if a := tr.Attempts[0]; a.Outcome != "deferred" || a.Enhanced != "4.7.5" || a.TLSPolicy != "mta-sts" ||
		!strings.Contains(a.Reply, "MTA-STS policy of sts.test does not list MX host mx.sts.test") {
		t.Fatalf("unlisted MX: %+v", tr)
	}
	tr = e.waitAttempt(t, id2)
	if a := tr.Attempts[0]; a.Outcome != "deferred" || a.Enhanced != "4.7.5" || a.TLSPolicy != "mta-sts" ||
		a.TLSVerify != "certificate-expired" || !strings.Contains(a.Reply, "TLS policy (mta-sts: verify)") ||
		!strings.Contains(a.Reply, "mx.bad.test: certificate-expired") {
		t.Fatalf("expired certificate: %+v", tr)
	}
	e.waitStatus(t, id3, "delivered")
	if got := testing.WaitMessages(t, 1, 10*time.Second); len(got) != 1 {
		t.Fatalf("testing: %d messages", len(got))
	}
	if n := len(unlisted.Messages()) + len(expired.Messages()); n != 0 {
		t.Fatalf("%d messages reached MX hosts that fail an enforce policy", n)
	}
	if unlisted.Connections() != 0 {
		t.Fatal("the relay connected to an MX host the enforce policy does not list")
	}

	var pols []api.MTASTSPolicy
	e.n.API(t, "GET", "/mta-sts/policies", nil, 200, &pols)
	got := map[string]api.MTASTSPolicy{}
	for _, p := range pols {
		got[p.Domain] = p
	}
	if len(pols) != 3 || got["sts.test"].Mode != "enforce" || got["testing.test"].Mode != "testing" ||
		strings.Join(got["sts.test"].MX, ",") != "mail.sts.test" || got["bad.test"].ID != "20300301" ||
		got["sts.test"].MaxAge != 86400 || got["sts.test"].ExpiresAt.Sub(got["sts.test"].FetchedAt) != 24*time.Hour {
		t.Fatalf("policies %+v", pols)
	}
}

// TestTLSReportMailedThroughTheRelay: sessions under MTA-STS are counted on the TLS-RPT clock's day; once the
// clock passes midnight the report job mails each policy domain's report to its rua through the relay's
// own queue, and the fake MX of the rua's domain receives a multipart/report (report-type tlsrpt) whose
// gzipped JSON counts one success for the good domain and one validation-failure for the testing one. GET
// /tls-reports lists what was sent.
func TestTLSReportMailedThroughTheRelay(t *testing.T) {
	e := newSTSEnv(t, nil)
	good := e.stsDomain(t, "good.test", 11, "version: STSv1\nmode: enforce\nmx: mx.good.test\nmax_age: 86400\n")
	good.EnableTLSWith(e.ca.Good("mx.good.test"))
	e.stsDomain(t, "testing.test", 12, "version: STSv1\nmode: testing\nmx: mail.testing.test\nmax_age: 86400\n")
	reports := e.mx(t, "reports.test", 13)

	e.waitStatus(t, e.sendOne(t, "bob@good.test"), "delivered")
	e.waitStatus(t, e.sendOne(t, "dave@testing.test"), "delivered")
	e.now.Store(day1.Add(12*time.Hour + 5*time.Minute).UnixMilli()) // 00:05 the next day

	msgs := reports.WaitMessages(t, 2, 20*time.Second)
	byDomain := map[string]*tlsrpt.Report{}
	for _, m := range msgs {
		if len(m.To) != 1 || m.To[0] != "tlsrpt@reports.test" || m.From != "postmaster@relay.easymail.test" {
			t.Fatalf("report envelope %s -> %v", m.From, m.To)
		}
		domain, rep := readReport(t, m.Data)
		byDomain[domain] = rep
	}
	g, tst := byDomain["good.test"], byDomain["testing.test"]
	if g == nil || tst == nil {
		t.Fatalf("reports for %v", byDomain)
	}
	want := time.Date(2030, 3, 1, 0, 0, 0, 0, time.UTC)
	if !g.DateRange.Start.Equal(want) || len(g.Policies) != 1 || g.Policies[0].Policy.Type != "sts" ||
		g.Policies[0].Summary != (tlsrpt.Summary{Successful: 1}) || len(g.Policies[0].FailureDetails) != 0 {
		t.Fatalf("good.test report %+v", g)
	}
	if len(tst.Policies) != 1 || tst.Policies[0].Summary != (tlsrpt.Summary{Failure: 1}) ||
		len(tst.Policies[0].FailureDetails) != 1 || tst.Policies[0].FailureDetails[0].ResultType != "validation-failure" ||
		tst.Policies[0].FailureDetails[0].ReceivingMXHost != "mx.testing.test" ||
		tst.Policies[0].FailureDetails[0].SendingMTAIP != "127.0.0.1" {
		t.Fatalf("testing.test report %+v", tst)
	}

	// A report is recorded after its mail is queued, and the queue may deliver it before the record's
	// commit: wait for both records.
	var sent []api.TLSReport
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		sent = nil
		e.n.API(t, "GET", "/tls-reports", nil, 200, &sent)
		if len(sent) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(sent) != 2 || sent[0].Day != "2030-03-01" || sent[0].Domain != "good.test" ||
		sent[0].RUA != "mailto:tlsrpt@reports.test" || sent[0].Outcome != "mailto:tlsrpt@reports.test: sent" ||
		sent[1].Domain != "testing.test" {
		t.Fatalf("tls reports %+v", sent)
	}
}

// readReport checks a TLS-RPT mail (RFC 8460 §5.3) and returns its report domain and decoded report.
func readReport(t *testing.T, data []byte) (string, *tlsrpt.Report) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" {
		t.Fatalf("content type %q: %v", m.Header.Get("Content-Type"), err)
	}
	domain := m.Header.Get("TLS-Report-Domain")
	if !strings.Contains(m.Header.Get("Subject"), "Report Domain: "+domain) || m.Header.Get("TLS-Report-Submitter") == "" {
		t.Fatalf("report header %v", m.Header)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct != "application/tlsrpt+gzip" {
			continue
		}
		gz, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := tlsrpt.Decode(gz)
		if err != nil {
			t.Fatal(err)
		}
		return domain, rep
	}
	t.Fatalf("no application/tlsrpt+gzip part in\n%s", data)
	return "", nil
}
