package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/events"
)

// Webhooks are the customers' webhooks (/customers/{id}/webhooks). *events.Webhooks implements it; errors are
// *fielderr.Error for a bad value and events.ErrNotFound for another customer's or an unknown webhook.
type Webhooks interface {
	Create(ctx context.Context, customerID string, in api.WebhookRequest) (api.Webhook, error)
	List(ctx context.Context, customerID string) ([]api.Webhook, error)
	Delete(ctx context.Context, customerID, id string) error
	Dead(ctx context.Context, customerID string, limit int) ([]api.WebhookDelivery, error)
	Redeliver(ctx context.Context, customerID string, id int64) error
}

// eventsError maps the errors of package events to API errors.
func eventsError(err error) error {
	if errors.Is(err, events.ErrNotFound) {
		return errNotFound
	}
	return err
}

// webhookCustomer returns the customer of the path, which must exist and be visible to p. With write, p must
// also be allowed to change its webhooks: an operator, or the customer itself (a customer's own systems
// are what receives the events); anyone else gets 403, as for any change, and an expert may only read.
func (s *server) webhookCustomer(r *http.Request, p authz.Principal, write bool) (string, error) {
	id := r.PathValue("id")
	if write && !p.CanWrite() && !(p.Role == authz.RoleCustomer && p.CustomerID == id) {
		return "", &api.Error{Status: http.StatusForbidden, Message: "the " + p.Role + " role may not change these webhooks"}
	}
	if !p.CanRead(id) {
		return "", errNotFound
	}
	if _, err := s.customers.Get(r.Context(), id); err != nil {
		return "", err
	}
	return id, nil
}

func (s *server) createWebhook(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	id, err := s.webhookCustomer(r, p, true)
	if err != nil {
		return err
	}
	var in api.WebhookRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	h, err := s.webhooks.Create(r.Context(), id, in)
	if err != nil {
		return eventsError(err)
	}
	s.log.Info("webhook: added", "customer", id, "webhook", h.ID, "url", h.URL, "token", p.TokenID)
	writeJSON(w, http.StatusCreated, h)
	return nil
}

func (s *server) listWebhooks(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if _, err := query(r); err != nil {
		return err
	}
	id, err := s.webhookCustomer(r, p, false)
	if err != nil {
		return err
	}
	list, err := s.webhooks.List(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	id, err := s.webhookCustomer(r, p, true)
	if err != nil {
		return err
	}
	if err := s.webhooks.Delete(r.Context(), id, r.PathValue("wid")); err != nil {
		return eventsError(err)
	}
	s.log.Info("webhook: removed", "customer", id, "webhook", r.PathValue("wid"), "token", p.TokenID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) deadWebhookDeliveries(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	q, err := query(r, "limit")
	if err != nil {
		return err
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return badRequest("limit must be 1-1000", "limit")
		}
	}
	id, err := s.webhookCustomer(r, p, false)
	if err != nil {
		return err
	}
	list, err := s.webhooks.Dead(r.Context(), id, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *server) redeliverWebhook(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	id, err := s.webhookCustomer(r, p, true)
	if err != nil {
		return err
	}
	did, err := strconv.ParseInt(r.PathValue("did"), 10, 64)
	if err != nil {
		return errNotFound
	}
	if err := s.webhooks.Redeliver(r.Context(), id, did); err != nil {
		return eventsError(err)
	}
	s.events.Kick()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// streamEvents serves GET /events/stream: every event from now on as NDJSON, one JSON object a line, until
// the client goes away or the node shuts down. A client that falls behind loses events, and gets a line
// {"event":"dropped","dropped":N} saying how many. A comment-free keep-alive (an empty line) is sent every
// 30 seconds.
func (s *server) streamEvents(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if _, err := query(r); err != nil {
		return err
	}
	if p.Role != authz.RoleOperator {
		return &api.Error{Status: http.StatusForbidden, Message: "the " + p.Role + " role may not do this; an operator token is needed"}
	}
	if s.events == nil {
		return errNotFound
	}
	sub := s.events.Subscribe()
	defer sub.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	enc := json.NewEncoder(w)
	keepalive := time.NewTicker(30 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-keepalive.C:
			if _, err := w.Write([]byte("\n")); err != nil {
				return nil
			}
		case e, ok := <-sub.Events():
			if !ok {
				return nil
			}
			if n := sub.Dropped(); n > 0 {
				enc.Encode(map[string]any{"event": "dropped", "dropped": n})
			}
			if err := enc.Encode(e); err != nil {
				return nil
			}
		}
		rc.Flush()
	}
}
