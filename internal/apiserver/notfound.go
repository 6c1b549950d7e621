package apiserver

import (
	"context"
	"net/http"
	"strings"
)

// kinds names what the wildcard after each path segment identifies, for the 404 messages.
var kinds = map[string]string{
	"customers": "customer", "domains": "domain", "relay-hosts": "relay host", "source-ips": "source IP",
	"suppressions": "suppression", "webhooks": "webhook", "dead": "dead webhook delivery", "messages": "message",
	"queue": "message", "quarantine": "quarantined message", "tokens": "token", "pools": "pool", "ips": "IP",
	"providers": "provider", "incidents": "incident", "data-subjects": "data subject",
}

// notFoundMessage names what r's route did not find: `customer "acme" not found` when the route is under a
// customer that does not exist (or that the caller may not see), else the kind and value of the route's
// last wildcard (`domain "x.example" not found`).
func (s *server) notFoundMessage(ctx context.Context, r *http.Request) string {
	_, pattern, _ := strings.Cut(r.Pattern, " ")
	segs := strings.Split(strings.Trim(pattern, "/"), "/")
	kind, name := "", ""
	for i := 1; i < len(segs); i++ {
		w := segs[i]
		if !strings.HasPrefix(w, "{") || !strings.HasSuffix(w, "}") {
			continue
		}
		k, ok := kinds[segs[i-1]]
		if !ok {
			continue
		}
		v := r.PathValue(strings.Trim(w, "{}"))
		if k == "customer" && i+1 < len(segs) {
			if _, err := s.customers.Get(ctx, v); err != nil {
				return notFound("customer", v).Message
			}
		}
		kind, name = k, v
	}
	if kind == "" {
		return "not found"
	}
	return notFound(kind, name).Message
}
