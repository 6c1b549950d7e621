package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"easymail/internal/api"
)

// TestCustomerIsolation checks every endpoint with customer A's token against customer B's data: reads
// answer 404 or leave B out, changes answer 403, and B's data is unchanged.
func TestCustomerIsolation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	A, B := e.custA.ID, e.custB.ID
	if _, err := e.op.AddDomain(ctx, B, "bolt.example"); err != nil {
		t.Fatal(err)
	}
	h, err := e.op.AddRelayHost(ctx, B, "mta.bolt.example")
	if err != nil {
		t.Fatal(err)
	}
	ip, err := e.op.AddSourceIP(ctx, B, "192.0.2.0/24")
	if err != nil {
		t.Fatal(err)
	}
	e.addMessage(t, "QA", A, "a@acme.example", "deferred", "deferred", t0, "x@dest.example")
	e.addMessage(t, "QB", B, "b@bolt.example", "deferred", "deferred", t0, "y@dest.example")
	tokens, _ := e.op.ListTokens(ctx)
	var bTok string
	for _, tk := range tokens {
		if tk.CustomerID == B {
			bTok = tk.ID
		}
	}
	before, _ := e.op.GetCustomer(ctx, B)
	bJSON, _ := json.Marshal(before)

	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/api/v1/customers/" + B, "", 404},
		{"GET", "/api/v1/messages/QB", "", 404},
		{"PATCH", "/api/v1/customers/" + B, `{"name":"pwned"}`, 403},
		{"DELETE", "/api/v1/customers/" + B, "", 403},
		{"POST", "/api/v1/customers/" + B + "/onboarding", "", 403},
		{"POST", "/api/v1/customers/" + B + "/domains", `{"domain":"evil.example"}`, 403},
		{"DELETE", "/api/v1/customers/" + B + "/domains/bolt.example", "", 403},
		{"POST", "/api/v1/customers/" + B + "/relay-hosts", `{"host":"evil.example"}`, 403},
		{"DELETE", "/api/v1/customers/" + B + "/relay-hosts/" + h.ID, "", 403},
		{"POST", "/api/v1/customers/" + B + "/source-ips", `{"cidr":"198.51.100.0/24"}`, 403},
		{"DELETE", "/api/v1/customers/" + B + "/source-ips/" + ip.ID, "", 403},
		{"POST", "/api/v1/queue/QB/retry", "", 403},
		{"POST", "/api/v1/queue/QB/hold", "", 403},
		{"POST", "/api/v1/queue/QB/release", "", 403},
		{"DELETE", "/api/v1/queue/QB", "", 403},
		{"POST", "/api/v1/tokens", `{"role":"customer","customer_id":"` + B + `"}`, 403},
		{"GET", "/api/v1/tokens", "", 403},
		{"GET", "/api/v1/customers/" + B + "/check", "", 404},
		{"POST", "/api/v1/customers/" + B + "/termination", `{"deactivate_at":"2101-01-01T00:00:00Z"}`, 403},
		{"DELETE", "/api/v1/customers/" + B + "/termination", "", 403},
		{"GET", "/api/v1/audit?customer=" + B, "", 403},
		{"GET", "/api/v1/dns/spf", "", 403},
		{"DELETE", "/api/v1/tokens/" + bTok, "", 403},
	} {
		st, _, body := e.call(t, "A", c.method, c.path, c.body)
		if st != c.status {
			t.Errorf("A: %s %s = %d, want %d: %s", c.method, c.path, st, c.status, body)
		}
		if strings.Contains(string(body), "bolt") {
			t.Errorf("A: %s %s reveals B's data: %s", c.method, c.path, body)
		}
	}

	// Lists are A's only.
	list, err := e.a.ListCustomers(ctx)
	if err != nil || len(list) != 1 || list[0].ID != A {
		t.Fatalf("A lists customers %+v %v", list, err)
	}
	if c, err := e.a.GetCustomer(ctx, A); err != nil || c.ID != A {
		t.Fatalf("A reads itself: %v", err)
	}
	for _, q := range []api.MessageQuery{{}, {Customer: A}, {Sender: "b@bolt.example"}, {Recipient: "y@dest.example"}} {
		msgs, err := e.a.SearchMessages(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.CustomerID != A {
				t.Fatalf("A's search %+v shows %+v", q, m)
			}
		}
	}
	if msgs, _ := e.a.SearchMessages(ctx, api.MessageQuery{}); len(msgs) != 1 {
		t.Fatalf("A's messages %+v", msgs)
	}
	if msgs, _ := e.a.SearchMessages(ctx, api.MessageQuery{Customer: B}); len(msgs) != 0 {
		t.Fatalf("A searching B's messages: %+v", msgs)
	}
	if q, _ := e.a.ListQueue(ctx, "", 0); len(q) != 1 || q[0].ID != "QA" {
		t.Fatalf("A's queue %+v", q)
	}
	if q, _ := e.a.ListQueue(ctx, B, 0); len(q) != 0 {
		t.Fatalf("A listing B's queue: %+v", q)
	}
	if tr, err := e.a.Trace(ctx, "QA"); err != nil || tr.Message.ID != "QA" {
		t.Fatalf("A traces its own message: %v", err)
	}

	// Nothing of B changed, and the queue was never asked.
	after, _ := e.op.GetCustomer(ctx, B)
	aJSON, _ := json.Marshal(after)
	if string(aJSON) != string(bJSON) {
		t.Fatalf("B changed:\n%s\n%s", bJSON, aJSON)
	}
	if len(e.queue.calls) != 0 {
		t.Fatalf("queue called: %v", e.queue.calls)
	}
	if _, err := e.b.ListCustomers(ctx); err != nil {
		t.Fatalf("B's token was revoked: %v", err)
	}
}

func TestExpertReadsEverything(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.addMessage(t, "QB", e.custB.ID, "b@bolt.example", "queued", "queued", t0, "y@dest.example")
	if l, err := e.expert.ListCustomers(ctx); err != nil || len(l) != 2 {
		t.Fatalf("expert list %v %v", l, err)
	}
	if _, err := e.expert.GetCustomer(ctx, e.custB.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.expert.Trace(ctx, "QB"); err != nil {
		t.Fatal(err)
	}
	if q, err := e.expert.ListQueue(ctx, "", 0); err != nil || len(q) != 1 {
		t.Fatalf("expert queue %v %v", q, err)
	}
}

func TestOnboardingPage(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := `Acme <script>alert(1)</script>`
	c, err := e.op.CreateCustomer(ctx, api.CustomerCreate{Name: name, ContactEmail: "it@acme2.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { _, err := e.op.AddDomain(ctx, c.ID, "bücher.example"); return err },
		func() error { _, err := e.op.AddRelayHost(ctx, c.ID, "mta.buecher.example"); return err },
		func() error { _, err := e.op.AddSourceIP(ctx, c.ID, "203.0.113.8/29"); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	get := func(url string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	st, page, hdr := get(c.OnboardingURL)
	if st != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("onboarding page: %d %s", st, hdr.Get("Content-Type"))
	}
	for _, want := range []string{"relay.example.net", "2525", "xn--bcher-kva.example", "mta.buecher.example",
		"203.0.113.8/29", "include:_spf.example.net", "Acme &lt;script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") {
		t.Error("the customer name is not escaped")
	}
	if hdr.Get("Referrer-Policy") != "no-referrer" {
		t.Error("no Referrer-Policy on a page whose URL is a credential")
	}
	// A fresh link works too; a tampered or unknown one is a 404 page.
	o, err := e.op.CreateOnboarding(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st, _, _ := get(o.URL); st != 200 {
		t.Fatalf("fresh link: %d", st)
	}
	for _, bad := range []string{o.URL + "x", e.srv.URL + "/onboard/nope", e.srv.URL + "/onboard/" + strings.Repeat("A", 500)} {
		st, page, _ := get(bad)
		if st != 404 || !strings.Contains(page, "not valid") {
			t.Errorf("%s: %d", bad, st)
		}
	}
	// A deleted customer's link is dead.
	if err := e.op.DeleteCustomer(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := get(o.URL); st != 404 {
		t.Fatalf("deleted customer's link: %d", st)
	}
}

func TestOperatorDomain(t *testing.T) {
	for in, want := range map[string]string{
		"relay.example.net": "example.net",
		"a.b.example.net.":  "b.example.net",
		"localhost":         "localhost",
		"relay.":            "relay",
	} {
		if got := operatorDomain(in); got != want {
			t.Errorf("operatorDomain(%q) = %q, want %q", in, got, want)
		}
	}
}
