package apiserver

import (
	"net/http"
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
