package apiserver

import (
	"crypto/subtle"
	"net/http"
)

// MetricsHandler serves h (the Prometheus handler) at GET /metrics. With a token, a request must carry
// "Authorization: Bearer <token>" (compared in constant time) or is answered 401: the series name customers.
// The answer is the only route of the handler; anything else is 404.
func MetricsHandler(h http.Handler, token string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if token != "" {
			tok, ok := bearer(r)
			if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="easymail-metrics"`)
				writeError(w, http.StatusUnauthorized, "missing or wrong metrics token: send Authorization: Bearer <metrics.token>", "")
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	return mux
}
