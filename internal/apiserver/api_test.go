package apiserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
)

var t0 = time.Date(2030, 3, 1, 10, 0, 0, 0, time.UTC)

func apiStatus(err error) int {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

func TestProvisioningHappyPath(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.custA
	if c.Status != "pending" || c.Pool != "default" || !c.TopologyHiding || !c.AntiSpoofing ||
		!strings.HasPrefix(c.OnboardingURL, e.srv.URL+"/onboard/") || c.Domains == nil {
		t.Fatalf("created %+v", c)
	}
	before := e.changes.Load()

	d, err := e.op.AddDomain(ctx, c.ID, "Acme.Example")
	if err != nil {
		t.Fatal(err)
	}
	if d.Domain != "acme.example" || d.DKIM != nil {
		t.Fatalf("domain %+v", d)
	}
	h, err := e.op.AddRelayHost(ctx, c.ID, "mta.acme.example")
	if err != nil {
		t.Fatal(err)
	}
	ip, err := e.op.AddSourceIP(ctx, c.ID, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if h.ID == "" || h.Host != "mta.acme.example" || ip.ID == "" || ip.CIDR != "127.0.0.1/32" {
		t.Fatalf("host %+v ip %+v", h, ip)
	}
	net, err := e.op.AddSourceIP(ctx, c.ID, "192.0.2.77/24")
	if err != nil {
		t.Fatal(err)
	}
	if net.CIDR != "192.0.2.0/24" {
		t.Fatalf("cidr not normalised: %+v", net)
	}

	status, th := api.StatusActive, false
	up, err := e.op.UpdateCustomer(ctx, c.ID, api.CustomerUpdate{Status: &status, TopologyHiding: &th})
	if err != nil {
		t.Fatal(err)
	}
	if up.Status != "active" || up.TopologyHiding || len(up.Domains) != 1 || len(up.RelayHosts) != 1 || len(up.SourceIPs) != 2 {
		t.Fatalf("updated %+v", up)
	}
	got, err := e.op.GetCustomer(ctx, c.ID)
	if err != nil || got.Status != "active" || got.OnboardingURL != "" {
		t.Fatalf("get %+v %v", got, err)
	}
	list, err := e.op.ListCustomers(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list %+v %v", list, err)
	}
	o, err := e.op.CreateOnboarding(ctx, c.ID)
	if err != nil || !strings.HasPrefix(o.URL, e.srv.URL+"/onboard/") || o.ExpiresAt.Before(time.Now().Add(13*24*time.Hour)) {
		t.Fatalf("onboarding %+v %v", o, err)
	}

	if err := e.op.RemoveDomain(ctx, c.ID, "acme.example"); err != nil {
		t.Fatal(err)
	}
	if err := e.op.RemoveRelayHost(ctx, c.ID, h.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.op.RemoveSourceIP(ctx, c.ID, ip.ID); err != nil {
		t.Fatal(err)
	}
	got, _ = e.op.GetCustomer(ctx, c.ID)
	if len(got.Domains) != 0 || len(got.RelayHosts) != 0 || len(got.SourceIPs) != 1 {
		t.Fatalf("after removals %+v", got)
	}
	if n := e.changes.Load() - before; n != 8 {
		t.Fatalf("%d provisioning change notifications, want 8", n)
	}
	if err := e.op.DeleteCustomer(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.op.GetCustomer(ctx, c.ID); apiStatus(err) != 404 {
		t.Fatalf("after delete: %v", err)
	}
	// The deleted customer's token is revoked.
	if _, err := e.a.ListCustomers(ctx); apiStatus(err) != 401 {
		t.Fatalf("deleted customer's token: %v", err)
	}
}

func TestMessagesAndQueue(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, b := e.custA.ID, e.custB.ID
	e.addMessage(t, "Q1", a, "alice@acme.example", "deferred", "deferred", t0, "bob@dest.example", "carl@dest.example")
	e.addMessage(t, "Q2", a, "alice@acme.example", "delivered", "delivered", t0.Add(time.Minute), "dora@dest.example")
	e.addMessage(t, "Q3", b, "bert@bolt.example", "queued", "queued", t0.Add(2*time.Minute), "eve@other.example")

	list, err := e.op.SearchMessages(ctx, api.MessageQuery{})
	if err != nil || len(list) != 3 || list[0].ID != "Q3" {
		t.Fatalf("search all: %+v %v", list, err)
	}
	for _, c := range []struct {
		q    api.MessageQuery
		want []string
	}{
		{api.MessageQuery{Sender: "alice@acme.example"}, []string{"Q2", "Q1"}},
		{api.MessageQuery{Recipient: "carl@dest.example"}, []string{"Q1"}},
		{api.MessageQuery{MessageID: "Q2@test"}, []string{"Q2"}},
		{api.MessageQuery{Status: "queued"}, []string{"Q3"}},
		{api.MessageQuery{Customer: b}, []string{"Q3"}},
		{api.MessageQuery{Since: t0.Add(time.Minute), Until: t0.Add(2 * time.Minute)}, []string{"Q2"}},
		{api.MessageQuery{Limit: 1, Before: "Q3"}, []string{"Q2"}},
	} {
		got, err := e.expert.SearchMessages(ctx, c.q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range got {
			ids = append(ids, m.ID)
		}
		if strings.Join(ids, ",") != strings.Join(c.want, ",") {
			t.Errorf("search %+v = %v, want %v", c.q, ids, c.want)
		}
	}

	tr, err := e.expert.Trace(ctx, "Q1")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Message.ID != "Q1" || len(tr.Recipients) != 2 || len(tr.Attempts) != 2 || tr.Attempts[0].Reply != "greylisted" ||
		tr.Attempts[1].Recipient != "carl@dest.example" {
		t.Fatalf("trace %+v", tr)
	}

	q, err := e.op.ListQueue(ctx, "", 0)
	if err != nil || len(q) != 2 || q[0].ID != "Q1" || q[0].Pending != 2 || q[1].ID != "Q3" {
		t.Fatalf("queue %+v %v", q, err)
	}
	if err := e.op.HoldMessage(ctx, "Q1"); err != nil {
		t.Fatal(err)
	}
	if tr, _ := e.op.Trace(ctx, "Q1"); tr.Message.Status != "held" {
		t.Fatalf("after hold: %+v", tr.Message)
	}
	if q, _ := e.op.ListQueue(ctx, a, 0); len(q) != 1 || q[0].Status != "held" {
		t.Fatalf("queue of A after hold %+v", q)
	}
	if err := e.op.ReleaseMessage(ctx, "Q1"); err != nil {
		t.Fatal(err)
	}
	if err := e.op.RetryMessage(ctx, "Q1"); err != nil {
		t.Fatal(err)
	}
	if err := e.op.DeleteMessage(ctx, "Q3"); err != nil {
		t.Fatal(err)
	}
	if err := e.op.RetryMessage(ctx, "Q2"); apiStatus(err) != 409 {
		t.Fatalf("retry of a delivered message: %v", err)
	}
	if err := e.op.HoldMessage(ctx, "nope"); apiStatus(err) != 404 {
		t.Fatalf("hold of an unknown message: %v", err)
	}
	want := "hold Q1,release Q1,retry Q1,delete Q3,retry Q2,hold nope"
	if got := strings.Join(e.queue.calls, ","); got != want {
		t.Fatalf("queue calls %q, want %q", got, want)
	}
	if q, _ := e.op.ListQueue(ctx, "", 0); len(q) != 1 || q[0].ID != "Q1" {
		t.Fatalf("queue at the end %+v", q)
	}
}

func TestTokensEndpoints(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	nt, err := e.op.CreateToken(ctx, api.TokenRequest{Role: "expert", Name: "night shift"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(nt.Secret, "em_") || nt.ID == "" || nt.Role != "expert" || nt.Name != "night shift" {
		t.Fatalf("new token %+v", nt)
	}
	c := &api.Client{BaseURL: e.srv.URL, Token: nt.Secret}
	if _, err := c.ListCustomers(ctx); err != nil {
		t.Fatalf("new token does not work: %v", err)
	}
	list, err := e.op.ListTokens(ctx)
	if err != nil || len(list) != 5 {
		t.Fatalf("tokens %+v %v", list, err)
	}
	if err := e.op.RevokeToken(ctx, nt.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListCustomers(ctx); apiStatus(err) != 401 {
		t.Fatalf("revoked token: %v", err)
	}
	if err := e.op.RevokeToken(ctx, "nope"); apiStatus(err) != 404 {
		t.Fatalf("unknown token: %v", err)
	}
	var opID string
	for _, t := range list {
		if t.Role == "operator" {
			opID = t.ID
		}
	}
	if err := e.op.RevokeToken(ctx, opID); apiStatus(err) != 409 {
		t.Fatalf("revoking the last operator token: %v", err)
	}
	ct, err := e.op.CreateToken(ctx, api.TokenRequest{Role: "customer", CustomerID: e.custB.ID})
	if err != nil || ct.CustomerID != e.custB.ID {
		t.Fatalf("customer token %+v %v", ct, err)
	}
}

func TestHealthMetricsAndUnknown(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		path, want string
		status     int
	}{
		{"/healthz", "ok\n", 200},
		{"/metrics", "easymail_test_metric 1\n", 200},
	} {
		resp, err := http.Get(e.srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || string(b) != c.want {
			t.Errorf("GET %s = %d %q", c.path, resp.StatusCode, b)
		}
	}
	if st, _, _ := e.call(t, "operator", "GET", "/api/v1/nothing", ""); st != 404 {
		t.Fatalf("unknown endpoint: %d", st)
	}
	e.sick.Store(true)
	resp, err := http.Get(e.srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), "spool disk full") {
		t.Fatalf("failing health check: %d %q", resp.StatusCode, b)
	}
}

func TestInternalErrorIsGeneric(t *testing.T) {
	e := newEnv(t)
	e.addMessage(t, "Q1", e.custA.ID, "a@acme.example", "queued", "queued", t0, "b@dest.example")
	e.queue.fail = errors.New("disk on fire at /secret/path")
	st, ae, _ := e.call(t, "operator", "POST", "/api/v1/queue/Q1/retry", "")
	if st != 500 || strings.Contains(ae.Message, "secret") {
		t.Fatalf("status %d, error %q", st, ae.Message)
	}
	if !strings.Contains(e.logs.String(), "disk on fire") {
		t.Fatalf("the cause is not logged: %s", e.logs.String())
	}
}
