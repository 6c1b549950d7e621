package tlsrpt

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"easymail/internal/delivery"
	"easymail/internal/resolver"
	"easymail/internal/store"
	"easymail/internal/testkit"
)

// fakeMailer keeps the submitted messages.
type fakeMailer struct {
	mu   sync.Mutex
	to   []string
	msgs [][]byte
}

func (m *fakeMailer) SubmitRaw(_ context.Context, _, to string, msg []byte) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.to, m.msgs = append(m.to, to), append(m.msgs, msg)
	return "ID", nil
}

// TestReport counts sessions of a day, and the next day sends the report with the right counts to the
// domain's https: and mailto: addresses, once.
func TestReport(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var posted [][]byte
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/tlsrpt+gzip" {
			http.Error(w, "bad type", http.StatusUnsupportedMediaType)
			return
		}
		mu.Lock()
		posted = append(posted, b)
		mu.Unlock()
	}))
	defer srv.Close()
	dns := testkit.NewDNS(t)
	dns.AddTXT("_smtp._tls.dest.example", "v=TLSRPTv1; rua=mailto:tlsrpt@dest.example,"+srv.URL+"/report")
	res, err := resolver.New([]string{dns.Addr()}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	var clock sync.Mutex
	mailer := &fakeMailer{}
	r := New(Options{DB: db, Resolver: res, Mailer: mailer, HTTP: srv.Client(),
		Organization: "Relay Org", Contact: "postmaster@relay.example", Submitter: "relay.example",
		Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }})
	policy := []string{"version: STSv1", "mode: enforce", "mx: mx1.dest.example", "max_age: 86400"}
	sess := func(mx, ip, result string) delivery.TLSSession {
		return delivery.TLSSession{Domain: "dest.example", PolicyType: "sts", Policy: policy, MXHost: mx,
			SendingIP: "192.0.2.1", ReceivingIP: ip, Result: result}
	}
	for range 3 {
		r.ReportTLS(sess("mx1.dest.example", "198.51.100.1", ""))
	}
	r.ReportTLS(sess("mx1.dest.example", "198.51.100.1", "certificate-expired"))
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r.ReportTLS(sess("mx2.dest.example", "", "validation-failure"))
	r.ReportTLS(sess("mx1.dest.example", "198.51.100.1", "certificate-expired"))
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The day is not over: nothing is sent.
	if n, err := r.SendDue(ctx); err != nil || n != 0 {
		t.Fatalf("SendDue on the same day: %d, %v", n, err)
	}
	clock.Lock()
	now = now.Add(24 * time.Hour)
	clock.Unlock()
	if n, err := r.SendDue(ctx); err != nil || n != 1 {
		t.Fatalf("SendDue: %d, %v", n, err)
	}
	if len(posted) != 1 || len(mailer.msgs) != 1 || mailer.to[0] != "tlsrpt@dest.example" {
		t.Fatalf("posted %d, mailed %d to %v", len(posted), len(mailer.msgs), mailer.to)
	}
	rep, err := Decode(posted[0])
	if err != nil {
		t.Fatal(err)
	}
	if rep.OrganizationName != "Relay Org" || rep.DateRange.Start != time.Date(2030, 5, 1, 0, 0, 0, 0, time.UTC) ||
		len(rep.Policies) != 1 {
		t.Fatalf("report = %+v", rep)
	}
	p := rep.Policies[0]
	if p.Policy.Type != "sts" || p.Policy.PolicyDomain != "dest.example" || len(p.Policy.MXHost) != 1 ||
		p.Summary.Successful != 3 || p.Summary.Failure != 3 || len(p.FailureDetails) != 2 {
		t.Fatalf("policy result = %+v", p)
	}
	counts := map[string]int64{}
	for _, f := range p.FailureDetails {
		counts[f.ResultType+"@"+f.ReceivingMXHost] = f.Sessions
	}
	if counts["certificate-expired@mx1.dest.example"] != 2 || counts["validation-failure@mx2.dest.example"] != 1 {
		t.Fatalf("failure details = %+v", p.FailureDetails)
	}

	// The mailed report carries the same gzipped JSON as an application/tlsrpt+gzip part.
	m, err := mail.ReadMessage(bytes.NewReader(mailer.msgs[0]))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" || m.Header.Get("TLS-Report-Domain") != "dest.example" {
		t.Fatalf("mail header: %v %v %v", mt, params, err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var found bool
	for {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		if ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); ct == "application/tlsrpt+gzip" {
			b, _ := io.ReadAll(part) // multipart decodes quoted-printable only; base64 is decoded here
			gz, err := decodeBase64(b)
			if err != nil {
				t.Fatal(err)
			}
			mrep, err := Decode(gz)
			if err != nil || mrep.Policies[0].Summary != p.Summary {
				t.Fatalf("mailed report: %+v, %v", mrep, err)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("no application/tlsrpt+gzip part in the mail")
	}
	// Sent once.
	if n, err := r.SendDue(ctx); err != nil || n != 0 {
		t.Fatalf("second SendDue: %d, %v", n, err)
	}
}

func decodeBase64(b []byte) ([]byte, error) {
	return io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(b)))
}
