package apiserver

import (
	"net/http"
	"net/http/pprof"

	"easymail/internal/authz"
)

// debugRoutes serves Go's runtime profiles (net/http/pprof) under /debug/pprof/ to operator tokens only:
// `curl -H "Authorization: Bearer $T" http://127.0.0.1:8025/debug/pprof/profile?seconds=30 > cpu.pprof`,
// then `go tool pprof easymail cpu.pprof`. A profile costs nothing until it is asked for.
func (s *server) debugRoutes(api func(pattern string, need access, h apiHandler)) {
	wrap := func(h http.HandlerFunc) apiHandler {
		return func(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
			h(w, r)
			return nil
		}
	}
	api("GET /debug/pprof/", operatorOnly, wrap(pprof.Index))
	api("GET /debug/pprof/cmdline", operatorOnly, wrap(pprof.Cmdline))
	api("GET /debug/pprof/profile", operatorOnly, wrap(pprof.Profile))
	api("GET /debug/pprof/symbol", operatorOnly, wrap(pprof.Symbol))
	api("GET /debug/pprof/trace", operatorOnly, wrap(pprof.Trace))
}
