package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/customer"
	"easymail/internal/fielderr"
	"easymail/internal/incident"
	"easymail/internal/msglog"
	"easymail/internal/queue"
)

// access is what an endpoint requires of the caller's role.
type access int

const (
	// anyRole: any valid token; the handler limits a customer to its own data.
	anyRole access = iota
	// operatorOnly: changes, and token management.
	operatorOnly
)

// apiHandler serves one authenticated API request. A returned error is mapped to a status by fail.
type apiHandler func(w http.ResponseWriter, r *http.Request, p authz.Principal) error

// endpoint authenticates the request, checks the role against need, and runs h.
func (s *server) endpoint(need access, h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		tok, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="easymail"`)
			writeError(w, http.StatusUnauthorized, "missing API token: send Authorization: Bearer <token>", "")
			return
		}
		p, err := authz.Authenticate(r.Context(), s.db, tok)
		if errors.Is(err, authz.ErrUnauthenticated) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="easymail", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, err.Error(), "")
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if need == operatorOnly && !p.CanWrite() {
			writeError(w, http.StatusForbidden, "the "+p.Role+" role may not do this; an operator token is needed", "")
			return
		}
		if mutating(r) {
			s.audited(w, r, p, h) // audit.go
			return
		}
		if err := h(w, r, p); err != nil {
			s.fail(w, r, err)
		}
	})
}

// bearer returns the token of an "Authorization: Bearer" header (RFC 6750 §2.1).
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// errNotFound answers 404 for what the caller may not see as well as for what does not exist.
var errNotFound = &api.Error{Status: http.StatusNotFound, Message: "not found"}

// fail maps err to a status and writes it.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ae *api.Error
		fe *fielderr.Error
		se *queue.StateError
	)
	switch {
	case errors.As(err, &ae) && ae == errNotFound, errors.Is(err, incident.ErrNotFound):
		writeError(w, http.StatusNotFound, s.notFoundMessage(r.Context(), r), "")
	case errors.As(err, &ae):
		writeError(w, ae.Status, ae.Message, ae.Field)
	case errors.As(err, &fe) && fe.Conflict:
		writeError(w, http.StatusConflict, fe.Error(), fe.Field)
	case errors.As(err, &fe):
		writeError(w, http.StatusUnprocessableEntity, fe.Error(), fe.Field)
	case errors.Is(err, customer.ErrNotFound), errors.Is(err, msglog.ErrNotFound), errors.Is(err, authz.ErrNotFound),
		errors.Is(err, queue.ErrNotFound):
		writeError(w, http.StatusNotFound, s.notFoundMessage(r.Context(), r), "")
	case errors.As(err, &se):
		// The message's state made the queue operation do nothing: 409, naming the state.
		writeJSON(w, http.StatusConflict, api.Error{Message: err.Error(), State: se.Status})
	case errors.Is(err, queue.ErrNotQueued), errors.Is(err, authz.ErrLastOperator):
		writeError(w, http.StatusConflict, err.Error(), "")
	default:
		if r.Context().Err() == nil {
			s.log.Error("api: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(w, http.StatusInternalServerError, "internal error; see the server log", "")
	}
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	writeJSON(w, status, api.Error{Message: msg, Field: field})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// notFound is the 404 of an unknown id, naming its kind: `customer "acme" not found`.
func notFound(kind, id string) *api.Error {
	return &api.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("%s %q not found", kind, id)}
}
