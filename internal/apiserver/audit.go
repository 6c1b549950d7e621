package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"easymail/internal/api"
	"easymail/internal/audit"
	"easymail/internal/authz"
)

// maxAuditBody bounds the response body kept as an audit snapshot.
const maxAuditBody = 256 << 10

// auditRecorder passes a response through while keeping its status and the start of its body.
type auditRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (a *auditRecorder) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *auditRecorder) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if room := maxAuditBody - a.body.Len(); room > 0 {
		a.body.Write(b[:min(len(b), room)])
	}
	return a.ResponseWriter.Write(b)
}

// mutating reports whether a request changes something and is therefore audited.
func mutating(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions
}

// audited runs h for a change request and records it in the audit log when it succeeds: the actor (token id,
// role, customer), the action (the route pattern), the target (the path), and JSON snapshots before and
// after. For a route under /customers/{id} the snapshots are the customer as GET /customers/{id} shows it;
// otherwise the "after" is the response body, without the fields that hold credentials (secretFields). Every endpoint registered
// with an access level goes through here, so new endpoints are audited without further work.
func (s *server) audited(w http.ResponseWriter, r *http.Request, p authz.Principal, h apiHandler) {
	id := ""
	if strings.Contains(r.Pattern, "/customers/{id}") {
		id = r.PathValue("id")
	}
	var before []byte
	if id != "" {
		before = s.customerSnapshot(r.Context(), id)
	}
	rec := &auditRecorder{ResponseWriter: w}
	if err := h(rec, r, p); err != nil {
		s.fail(rec, r, err)
	}
	if rec.status < 200 || rec.status > 299 {
		return
	}
	e := audit.Entry{ActorToken: p.TokenID, ActorRole: p.Role, ActorCustomer: p.CustomerID, Action: r.Pattern,
		Target: r.URL.Path, CustomerID: id, Status: rec.status, Before: before}
	if e.Action == "" {
		e.Action = r.Method + " " + r.URL.Path
	}
	body := redact(rec.body.Bytes())
	switch {
	case id != "":
		e.After = s.customerSnapshot(r.Context(), id)
	case r.Pattern == "POST /api/v1/customers":
		var c struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(body, &c) == nil && c.ID != "" {
			e.CustomerID = c.ID
			e.After = s.customerSnapshot(r.Context(), c.ID)
		}
	default:
		e.After = body
	}
	// The change is done and answered: its record must not be lost to a client that hung up.
	if err := audit.Record(context.WithoutCancel(r.Context()), s.db, e); err != nil {
		s.log.Error("audit: could not record a change", "action", e.Action, "target", e.Target, "err", err)
	}
}

// customerSnapshot is the customer as the API shows it, or nil when it does not exist (any more).
func (s *server) customerSnapshot(ctx context.Context, id string) api.RawJSON {
	c, err := s.customers.Get(ctx, id)
	if err != nil {
		return nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil
	}
	return b
}

// secretFields are the fields of a JSON object answer that hold a credential: a new API token's secret
// ("token", shown once, never kept) and the like.
var secretFields = []string{"token", "secret", "password", "private_key"}

// redact removes the secretFields of a JSON object.
func redact(b []byte) api.RawJSON {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || !json.Valid(b) {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return api.RawJSON(bytes.Clone(b))
	}
	found := false
	for _, f := range secretFields {
		if _, ok := m[f]; ok {
			delete(m, f)
			found = true
		}
	}
	if !found {
		return api.RawJSON(bytes.Clone(b))
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return out
}

// listAudit serves GET /audit: operators and experts only.
func (s *server) listAudit(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	q, err := query(r, "customer", "actor", "action", "since", "until", "limit")
	if err != nil {
		return err
	}
	f := audit.Query{Customer: q.Get("customer"), Actor: q.Get("actor"), Action: q.Get("action")}
	if f.Since, err = parseTime(q, "since"); err != nil {
		return err
	}
	if f.Until, err = parseTime(q, "until"); err != nil {
		return err
	}
	if f.Limit, err = parseLimit(q); err != nil {
		return err
	}
	list, err := audit.List(r.Context(), s.db, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}
