package apiserver

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestWrongMethodIs405WithAllow: a registered path asked with a method it does not serve is answered 405
// with an Allow header listing the methods it does serve (and a JSON error), not the catch-all 404.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/api/v1/customers", "GET, HEAD, POST"},
		{"GET", "/api/v1/queue/bulk", "POST, DELETE"}, // DELETE /queue/{id} takes it as an id
		{"PATCH", "/api/v1/queue/Q1", "DELETE"},
		{"DELETE", "/api/v1/queue", "GET, HEAD"},
	} {
		req, err := http.NewRequest(c.method, e.srv.URL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.tok["operator"])
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != c.allow ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d Allow %q (%s), want 405 Allow %q as JSON", c.method, c.path, resp.StatusCode,
				resp.Header.Get("Allow"), resp.Header.Get("Content-Type"), c.allow)
		}
	}
	if st, ae, _ := e.call(t, "operator", "GET", "/api/v1/nothing-here", ""); st != 404 || !strings.Contains(ae.Message, "no such endpoint") {
		t.Fatalf("unknown path: %d %+v", st, ae)
	}
}

// TestNotFoundNamesTheKind: a 404 for an unknown id says what was not found and which id, on every route
// with an id in its path; under a customer that does not exist it names the customer.
func TestNotFoundNamesTheKind(t *testing.T) {
	e := newEnv(t)
	A := e.custA.ID
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/api/v1/customers/nope", `customer "nope" not found`},
		{"DELETE", "/api/v1/customers/nope/domains/x.example", `customer "nope" not found`},
		{"DELETE", "/api/v1/customers/" + A + "/domains/x.example", `domain "x.example" not found`},
		{"GET", "/api/v1/messages/nope", `message "nope" not found`},
		{"POST", "/api/v1/queue/nope/retry", `message "nope" not found`},
		{"DELETE", "/api/v1/queue/nope", `message "nope" not found`},
		{"DELETE", "/api/v1/tokens/nope", `token "nope" not found`},
	} {
		st, ae, b := e.call(t, "operator", c.method, c.path, "")
		if st != 404 || ae.Message != c.want {
			t.Errorf("%s %s: %d %q, want 404 %q (%s)", c.method, c.path, st, ae.Message, c.want, b)
		}
	}
	for _, r := range sourceRoutes(t) {
		method, pattern, _ := strings.Cut(r, " ")
		if !strings.Contains(pattern, "{") {
			continue
		}
		path := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(pattern, "nope")
		body := ""
		if method == "POST" || method == "PUT" || method == "PATCH" {
			body = "{}"
		}
		if st, ae, _ := e.call(t, "operator", method, path, body); st == 404 && !strings.HasSuffix(ae.Message, `"nope" not found`) &&
			!strings.Contains(ae.Message, "not enabled on this server") && !strings.Contains(ae.Message, "not managed by this server") {
			t.Errorf("%s: 404 %q names no kind and id", r, ae.Message)
		}
	}
}
