package apiserver

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestRolesOnEveryRoute walks every route registered in the package's source: without a token each is 401
// (but the OpenAPI description); with the expert's or a customer's token every change is 403; the expert
// reads everything but the token list, data-subject exports and the event stream (operator only).
func TestRolesOnEveryRoute(t *testing.T) {
	e := newEnv(t)
	operatorReads := []string{"GET /api/v1/tokens", "GET /api/v1/data-subjects/{address}", "GET /api/v1/events/stream"}
	staffReads := []string{"GET /api/v1/queue/{id}/content", "GET /api/v1/providers", "GET /api/v1/pools", "GET /api/v1/ips", "GET /api/v1/ips/{address}", "GET /api/v1/dns/spf", "GET /api/v1/audit",
		"GET /api/v1/mta-sts/policies", "GET /api/v1/tls-reports"}
	// A customer reports incidents, comments and confirms its own (answered 422 or 404 here, not 403).
	customerWrites := []string{"POST /api/v1/incidents", "POST /api/v1/incidents/{id}/comments", "POST /api/v1/incidents/{id}/confirm"}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for _, r := range sourceRoutes(t) {
		method, pattern, _ := strings.Cut(r, " ")
		path := param.ReplaceAllString(pattern, "x")
		if r == "GET /api/v1/openapi.json" {
			if st, _, _ := e.call(t, "", method, path, ""); st != 200 {
				t.Errorf("%s without a token: %d", r, st)
			}
			continue
		}
		if st, _, _ := e.call(t, "", method, path, ""); st != 401 {
			t.Errorf("%s without a token: %d, want 401", r, st)
		}
		body := ""
		if method != "GET" && method != "DELETE" {
			body = "{}"
		}
		for _, who := range []string{"expert", "A"} {
			st, _, b := e.call(t, who, method, path, body)
			switch {
			case method != "GET" && who == "A" && slices.Contains(customerWrites, r):
				if st != 422 && st != 404 {
					t.Errorf("%s as %s: %d, want 422 or 404: %s", r, who, st, b)
				}
			case method != "GET":
				if st != 403 {
					t.Errorf("%s as %s: %d, want 403: %s", r, who, st, b)
				}
			case slices.Contains(operatorReads, r) || who == "A" && slices.Contains(staffReads, r):
				if st != 403 {
					t.Errorf("%s as %s: %d, want 403: %s", r, who, st, b)
				}
			case st == 403 || st == 401 || st >= 500:
				t.Errorf("%s as %s: %d, a read should be allowed: %s", r, who, st, b)
			}
		}
	}
}

// TestCustomerReadsOnEveryCustomerRoute: with customer A's token, every read under /customers/{id} of
// customer B answers 404 and shows nothing of B, and of A answers without 403/404 where A has the data.
func TestCustomerReadsOnEveryCustomerRoute(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	A, B := e.custA.ID, e.custB.ID
	for _, c := range []struct{ id, dom string }{{A, "acme.example"}, {B, "bolt.example"}} {
		if _, err := e.op.AddDomain(ctx, c.id, c.dom); err != nil {
			t.Fatal(err)
		}
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	n := 0
	for _, r := range sourceRoutes(t) {
		method, pattern, _ := strings.Cut(r, " ")
		if method != "GET" || !strings.HasPrefix(pattern, "/api/v1/customers/{id}") {
			continue
		}
		n++
		fill := func(id, dom string) string {
			p := strings.Replace(pattern, "{id}", id, 1)
			p = strings.Replace(p, "{domain}", dom, 1)
			return param.ReplaceAllString(p, "x")
		}
		st, _, body := e.call(t, "A", method, fill(B, "bolt.example"), "")
		if st != 404 || strings.Contains(string(body), "olt") {
			t.Errorf("A: %s of B: %d %s", r, st, body)
		}
		if strings.Contains(pattern, "{address}") || strings.Contains(pattern, "{hostid}") || strings.Contains(pattern, "{ipid}") {
			continue
		}
		if st, _, body := e.call(t, "A", method, fill(A, "acme.example"), ""); st == 403 || st == 401 || st >= 500 {
			t.Errorf("A: %s of A: %d %s", r, st, body)
		}
	}
	if n < 4 {
		t.Fatalf("only %d customer read routes found", n)
	}
}
