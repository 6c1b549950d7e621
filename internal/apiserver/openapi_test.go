package apiserver

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// routePattern finds the API routes registered in this package's source: "METHOD /api/v1/...".
var routePattern = regexp.MustCompile(`"(GET|POST|PUT|PATCH|DELETE) (/api/v1/[^"\s]*)"`)

// sourceRoutes returns every route pattern written in the package's non-test source files.
func sourceRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range routePattern.FindAllStringSubmatch(string(b), -1) {
			out = append(out, m[1]+" "+m[2])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestOpenAPIMatchesRoutes checks that openapi.json describes every route of the server and nothing else:
// each route in the source is in the description, and each described operation is routed (the server does
// not answer it with its "no such endpoint" 404 or a 405).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	var described []string
	for path, ops := range doc.Paths {
		for method := range ops {
			described = append(described, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(described)
	routes := sourceRoutes(t)
	if len(routes) < 40 {
		t.Fatalf("found only %d routes in the source: %v", len(routes), routes)
	}
	for _, r := range routes {
		if !slices.Contains(described, r) {
			t.Errorf("route %s is not described in openapi.json", r)
		}
	}
	e := newEnv(t)
	for _, d := range described {
		if !slices.Contains(routes, d) {
			t.Errorf("openapi.json describes %s, which no source file registers", d)
		}
		method, path, _ := strings.Cut(d, " ")
		path = regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "x")
		st, ae, body := e.call(t, "operator", method, path, "")
		if st == 405 || st == 404 && strings.HasPrefix(ae.Message, "no such endpoint") {
			t.Errorf("described %s is not routed: %d %s", d, st, body)
		}
	}
}

// TestOpenAPIServed checks that the description is served without a token.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	st, _, body := e.call(t, "", "GET", "/api/v1/openapi.json", "")
	if st != 200 || !json.Valid(body) || !strings.Contains(string(body), `"/api/v1/customers/{id}/termination"`) {
		t.Fatalf("GET /api/v1/openapi.json: %d %.200s", st, body)
	}
}
