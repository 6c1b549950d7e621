package apiserver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	A, B := e.custA.ID, e.custB.ID
	if _, err := e.op.AddDomain(ctx, B, "bolt.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.op.AddSourceIP(ctx, B, "192.0.2.0/24"); err != nil {
		t.Fatal(err)
	}
	e.addMessage(t, "QB", B, "b@bolt.example", "delivered", "delivered", t0, "x@dest.example")
	ok := `{"name":"x","contact_email":"a@b.example"`
	cases := []struct {
		who, method, path, body string
		status                  int
		field                   string
	}{
		{"operator", "POST", "/api/v1/customers", `{"name": 5, "contact_email": "a@b.example"}`, 400, "name"},
		{"operator", "POST", "/api/v1/customers", ok + `,"extra":1}`, 400, "extra"},
		{"operator", "POST", "/api/v1/customers", ok + `,"topology_hiding":"yes"}`, 400, "topology_hiding"},
		{"operator", "POST", "/api/v1/customers", `{`, 400, ""},
		{"operator", "POST", "/api/v1/customers", `{"name":"x",}`, 400, ""},
		{"operator", "POST", "/api/v1/customers", ``, 400, ""},
		{"operator", "POST", "/api/v1/customers", `[]`, 400, ""},
		{"operator", "POST", "/api/v1/customers", `"x"`, 400, ""},
		{"operator", "POST", "/api/v1/customers", ok + `}{"name":"y"}`, 400, ""},
		{"operator", "POST", "/api/v1/customers", `{"name":"x","contact_email":"not-an-address"}`, 422, "contact_email"},
		{"operator", "POST", "/api/v1/customers", `{"contact_email":"a@b.example"}`, 422, "name"},
		{"operator", "POST", "/api/v1/customers", `{"name":null,"contact_email":"a@b.example"}`, 422, "name"},
		{"operator", "POST", "/api/v1/customers", ok + `,"pool":"gold"}`, 422, "pool"},
		{"operator", "POST", "/api/v1/customers", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, ""},
		{"operator", "PATCH", "/api/v1/customers/" + A, `{"status":"gone"}`, 422, "status"},
		{"operator", "PATCH", "/api/v1/customers/" + A, `{"anti_spoofing":1}`, 400, "anti_spoofing"},
		{"operator", "PATCH", "/api/v1/customers/" + A, `{"pool":""}`, 422, "pool"},
		{"operator", "PATCH", "/api/v1/customers/nope", `{"name":"x"}`, 404, ""},
		{"operator", "GET", "/api/v1/customers/nope", ``, 404, ""},
		{"operator", "DELETE", "/api/v1/customers/nope", ``, 404, ""},
		{"operator", "POST", "/api/v1/customers/nope/onboarding", ``, 404, ""},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":"bad..example"}`, 422, "domain"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":"localhost"}`, 422, "domain"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{}`, 422, "domain"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":["a.example"]}`, 400, "domain"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"name":"a.example"}`, 400, "name"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":"BOLT.example"}`, 409, "domain"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":"mail.bolt.example","include_subdomains":true}`, 409, "domain"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":"example","include_subdomains":true}`, 422, "domain"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":"co.uk"}`, 422, "domain"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":"CO.UK."}`, 422, "domain"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":"com"}`, 422, "domain"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":"lu"}`, 422, "domain"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":"github.io"}`, 422, "domain"},
		{"operator", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":"a.example","include_subdomains":"yes"}`, 400, "include_subdomains"},
		{"operator", "PATCH", "/api/v1/customers/" + A + "/domains/bolt.example", `{"include_subdomains":true}`, 404, ""},
		{"operator", "PATCH", "/api/v1/customers/" + B + "/domains/bolt.example", `{"include_subdomains":1}`, 400, "include_subdomains"},
		{"operator", "PATCH", "/api/v1/customers/" + B + "/domains/bolt.example", `{"subdomains":true}`, 400, "subdomains"},
		{"operator", "PATCH", "/api/v1/customers/" + B + "/domains/not..valid", `{"include_subdomains":true}`, 404, ""},
		{"operator", "POST", "/api/v1/customers/" + B + "/domains", `{"domain":"bolt.example"}`, 409, "domain"},
		{"operator", "POST", "/api/v1/customers/nope/domains", `{"domain":"new.example"}`, 404, ""},
		{"operator", "DELETE", "/api/v1/customers/" + A + "/domains/bolt.example", ``, 404, ""},
		{"operator", "DELETE", "/api/v1/customers/" + A + "/domains/not..valid", ``, 404, ""},
		{"operator", "POST", "/api/v1/customers/" + A + "/relay-hosts", `{"host":"not valid"}`, 422, "host"},
		{"operator", "POST", "/api/v1/customers/" + A + "/relay-hosts", `{"host":42}`, 400, "host"},
		{"operator", "POST", "/api/v1/customers/" + A + "/relay-hosts", `{"host":"192.0.2.9"}`, 409, "host"},
		{"operator", "DELETE", "/api/v1/customers/" + A + "/relay-hosts/nope", ``, 404, ""},
		{"operator", "POST", "/api/v1/customers/" + A + "/source-ips", `{"cidr":"300.1.1.1"}`, 422, "cidr"},
		{"operator", "POST", "/api/v1/customers/" + A + "/source-ips", `{"cidr":"0.0.0.0/0"}`, 422, "cidr"},
		{"operator", "POST", "/api/v1/customers/" + A + "/source-ips", `{"cidr":"192.0.2.128/25"}`, 409, "cidr"},
		{"operator", "POST", "/api/v1/customers/" + A + "/source-ips", `{"cidr":"192.0.0.0/16"}`, 409, "cidr"},
		{"operator", "POST", "/api/v1/customers/" + A + "/source-ips", `{"cidr":true}`, 400, "cidr"},
		{"operator", "DELETE", "/api/v1/customers/" + A + "/source-ips/nope", ``, 404, ""},
		{"operator", "GET", "/api/v1/messages?limit=abc", ``, 400, "limit"},
		{"operator", "GET", "/api/v1/messages?limit=0", ``, 422, "limit"},
		{"operator", "GET", "/api/v1/messages?limit=1001", ``, 422, "limit"},
		{"operator", "GET", "/api/v1/messages?status=vanished", ``, 422, "status"},
		{"operator", "GET", "/api/v1/messages?since=yesterday", ``, 400, "since"},
		{"operator", "GET", "/api/v1/messages?until=2030-13-01", ``, 400, "until"},
		{"operator", "GET", "/api/v1/messages?senderr=x", ``, 400, "senderr"},
		{"operator", "GET", "/api/v1/messages?sender=a&sender=b", ``, 400, "sender"},
		{"operator", "GET", "/api/v1/messages?sender=%zz", ``, 400, ""},
		{"operator", "GET", "/api/v1/messages/nope", ``, 404, ""},
		{"operator", "GET", "/api/v1/queue?limit=-1", ``, 422, "limit"},
		{"operator", "GET", "/api/v1/queue?status=bounced", ``, 422, "status"},
		{"operator", "GET", "/api/v1/queue?since=2030-01-01", ``, 400, "since"},
		{"operator", "GET", "/api/v1/queue?older_than=soon", ``, 422, "older_than"},
		{"operator", "GET", "/api/v1/queue?held=perhaps", ``, 400, "held"},
		{"operator", "GET", "/api/v1/queue?after=nope", ``, 422, "after"},
		{"operator", "POST", "/api/v1/queue/bulk", `{"action":"retry","filter":{}}`, 422, "filter"},
		{"operator", "POST", "/api/v1/queue/bulk", `{"action":"flush","filter":{"all":true}}`, 422, "action"},
		{"operator", "POST", "/api/v1/queue/bulk", `{"action":"retry","filter":{"all":true,"domain":"x.example"}}`, 422, "filter.all"},
		{"operator", "POST", "/api/v1/queue/bulk", `{"action":"retry","filter":{"status":"gone"}}`, 422, "filter.status"},
		{"operator", "POST", "/api/v1/queue/bulk", `{"action":"retry","filter":{"younger_than":"5d","older_than":"6d"}}`, 422, "filter.younger_than"},
		{"operator", "GET", "/api/v1/queue/nope/content", ``, 404, ""},
		{"operator", "POST", "/api/v1/queue/nope/retry", ``, 404, ""},
		{"operator", "POST", "/api/v1/queue/QB/hold", ``, 409, ""},
		{"operator", "DELETE", "/api/v1/queue/nope", ``, 404, ""},
		{"operator", "POST", "/api/v1/tokens", `{"role":"root"}`, 422, "role"},
		{"operator", "POST", "/api/v1/tokens", `{}`, 422, "role"},
		{"operator", "POST", "/api/v1/tokens", `{"role":"customer"}`, 422, "customer_id"},
		{"operator", "POST", "/api/v1/tokens", `{"role":"customer","customer_id":"nope"}`, 422, "customer_id"},
		{"operator", "POST", "/api/v1/tokens", `{"role":"expert","customer_id":"` + A + `"}`, 422, "customer_id"},
		{"operator", "POST", "/api/v1/tokens", `{"role":7}`, 400, "role"},
		{"operator", "DELETE", "/api/v1/tokens/nope", ``, 404, ""},
		// Lifecycle: contacts, status, termination, check, SPF records, audit log.
		{"operator", "POST", "/api/v1/customers", ok + `,"technical_email":"nope"}`, 422, "technical_email"},
		{"operator", "POST", "/api/v1/customers", ok + `,"admin_email":3}`, 400, "admin_email"},
		{"operator", "PATCH", "/api/v1/customers/" + A, `{"admin_email":"a@b@c"}`, 422, "admin_email"},
		{"operator", "PATCH", "/api/v1/customers/" + A, `{"status":"deactivated"}`, 422, "status"},
		{"operator", "PATCH", "/api/v1/customers/" + A, `{"status":"removed"}`, 422, "status"},
		{"operator", "POST", "/api/v1/customers/" + A + "/termination", `{}`, 422, "deactivate_at"},
		{"operator", "POST", "/api/v1/customers/" + A + "/termination", `{"deactivate_at":null}`, 422, "deactivate_at"},
		{"operator", "POST", "/api/v1/customers/" + A + "/termination", `{"deactivate_at":"tomorrow"}`, 400, "deactivate_at"},
		{"operator", "POST", "/api/v1/customers/" + A + "/termination", `{"deactivate_at":1767225600}`, 400, "deactivate_at"},
		{"operator", "POST", "/api/v1/customers/" + A + "/termination", `{"deactivate_at":"2001-01-01T00:00:00Z"}`, 422, "deactivate_at"},
		{"operator", "POST", "/api/v1/customers/" + A + "/termination", `{"at":"2101-01-01T00:00:00Z"}`, 400, "at"},
		{"operator", "POST", "/api/v1/customers/nope/termination", `{"deactivate_at":"2101-01-01T00:00:00Z"}`, 404, ""},
		{"operator", "DELETE", "/api/v1/customers/" + A + "/termination", ``, 409, "status"},
		{"operator", "DELETE", "/api/v1/customers/nope/termination", ``, 404, ""},
		{"operator", "GET", "/api/v1/customers/nope/check", ``, 404, ""},
		{"operator", "GET", "/api/v1/audit?limit=x", ``, 400, "limit"},
		{"operator", "GET", "/api/v1/audit?limit=5000", ``, 422, "limit"},
		{"operator", "GET", "/api/v1/audit?since=never", ``, 400, "since"},
		{"operator", "GET", "/api/v1/audit?who=me", ``, 400, "who"},
		{"expert", "POST", "/api/v1/customers/" + A + "/termination", `{"deactivate_at":"2101-01-01T00:00:00Z"}`, 403, ""},
		{"expert", "DELETE", "/api/v1/customers/" + A + "/termination", ``, 403, ""},
		{"A", "POST", "/api/v1/customers/" + A + "/termination", `{"deactivate_at":"2101-01-01T00:00:00Z"}`, 403, ""},
		{"A", "DELETE", "/api/v1/customers/" + A + "/termination", ``, 403, ""},
		{"A", "GET", "/api/v1/audit", ``, 403, ""},
		{"A", "GET", "/api/v1/dns/spf", ``, 403, ""},
		{"", "GET", "/api/v1/audit", ``, 401, ""},
		{"", "GET", "/api/v1/customers/" + A + "/check", ``, 401, ""},
		// Authentication and roles.
		{"", "GET", "/api/v1/customers", ``, 401, ""},
		{"em_wrong", "GET", "/api/v1/customers", ``, 401, ""},
		{"expert", "POST", "/api/v1/customers", ok + `}`, 403, ""},
		{"expert", "PATCH", "/api/v1/customers/" + A, `{"name":"x"}`, 403, ""},
		{"expert", "POST", "/api/v1/queue/QB/retry", ``, 403, ""},
		{"expert", "POST", "/api/v1/queue/bulk", `{"action":"retry","filter":{"all":true}}`, 403, ""},
		{"A", "GET", "/api/v1/queue/QB/content", ``, 403, ""},
		{"expert", "GET", "/api/v1/tokens", ``, 403, ""},
		{"expert", "POST", "/api/v1/tokens", `{"role":"operator"}`, 403, ""},
		{"A", "POST", "/api/v1/customers", ok + `}`, 403, ""},
		{"A", "GET", "/api/v1/tokens", ``, 403, ""},
		{"A", "POST", "/api/v1/tokens", `{"role":"operator"}`, 403, ""},
		{"A", "POST", "/api/v1/customers/" + A + "/domains", `{"domain":"acme.example"}`, 403, ""},
		{"A", "PATCH", "/api/v1/customers/" + B + "/domains/bolt.example", `{"include_subdomains":true}`, 403, ""},
		{"expert", "PATCH", "/api/v1/customers/" + B + "/domains/bolt.example", `{"include_subdomains":true}`, 403, ""},
	}
	for _, c := range cases {
		st, ae, body := e.call(t, c.who, c.method, c.path, c.body)
		if st != c.status || ae.Field != c.field {
			t.Errorf("%s %s %s (%s): %d field %q, want %d field %q: %s", c.who, c.method, c.path, truncateBody(c.body),
				st, ae.Field, c.status, c.field, body)
		}
	}
	if strings.Contains(e.logs.String(), "internal error") {
		t.Fatalf("bad input caused internal errors: %s", e.logs.String())
	}
	// Nothing was created by the refused requests.
	list, _ := e.op.ListCustomers(ctx)
	if len(list) != 2 || len(list[0].Domains) != 0 || len(list[1].Domains) != 1 {
		b, _ := json.Marshal(list)
		t.Fatalf("customers after bad input: %s", b)
	}
}

func truncateBody(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
