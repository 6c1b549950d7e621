package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/msglog"
)

// query checks that r's query holds only the allowed parameters, each at most once.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string: "+err.Error(), "")
	}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for k, v := range q {
		if !ok[k] {
			return nil, badRequest(fmt.Sprintf("unknown query parameter %q", k), k)
		}
		if len(v) > 1 {
			return nil, badRequest(fmt.Sprintf("query parameter %q is given more than once", k), k)
		}
	}
	return q, nil
}

// parseTime reads an RFC 3339 time or a date (midnight UTC).
func parseTime(q url.Values, key string) (time.Time, error) {
	v := q.Get(key)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, badRequest(fmt.Sprintf("%s must be an RFC 3339 time (2006-01-02T15:04:05Z) or a date (2006-01-02), not %q", key, v), key)
}

// parseLimit reads limit, 1 to msglog.MaxLimit; 0 when absent.
func parseLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badRequest(fmt.Sprintf("limit must be an integer, not %q", v), "limit")
	}
	if n < 1 || n > msglog.MaxLimit {
		return 0, &api.Error{Status: http.StatusUnprocessableEntity, Field: "limit",
			Message: fmt.Sprintf("limit must be between 1 and %d", msglog.MaxLimit)}
	}
	return n, nil
}

// scope restricts a customer filter to what p may see: ok is false when p may see nothing of it.
func scope(p authz.Principal, requested string) (string, bool) {
	own, scoped := p.Scoped()
	if !scoped {
		return requested, true
	}
	if requested != "" && requested != own {
		return "", false
	}
	return own, true
}

func (s *server) searchMessages(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	// The filters, and the CSV form, are in export.go.
	return s.messages(w, r, p, false)
}

func (s *server) traceMessage(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	t, err := msglog.Trace(r.Context(), s.db, r.PathValue("id"))
	if err != nil {
		return err
	}
	if !p.CanRead(t.Message.CustomerID) {
		return errNotFound
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

// queueAction runs a queue operation on the message named in the path and answers with the message as it
// then is.
func (s *server) queueAction(name string, op func(context.Context, string) error) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
		id := r.PathValue("id")
		if err := op(r.Context(), id); err != nil {
			return fmt.Errorf("%s %s: %w", name, id, err)
		}
		t, err := msglog.Trace(r.Context(), s.db, id)
		if errors.Is(err, msglog.ErrNotFound) {
			// The queue knew the message; its log row is gone meanwhile (deleted concurrently).
			writeJSON(w, http.StatusOK, api.Message{ID: id})
			return nil
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, t.Message)
		return nil
	}
}

func (s *server) deleteQueued(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	id := r.PathValue("id")
	if err := s.queue.Delete(r.Context(), id); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
