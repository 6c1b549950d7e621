package apiserver

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 description of the API, served at /api/v1/openapi.json. TestOpenAPIMatchesRoutes
// keeps it true: every route registered in this package is described, and every described operation is
// routed. Add the operation there when adding an endpoint.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI serves the description, without authentication: it holds nothing secret.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(openAPI)
}
