package apiserver

import (
	"context"
	"errors"
	"net/http"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/queue"
)

// releaseHeld lifts a customer's hold and releases each of its held messages (POST
// /customers/{id}/release-held).
func (s *server) releaseHeld(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	return s.heldAction(w, r, "released", s.queue.Release)
}

// purgeHeld lifts a customer's hold and deletes each of its held messages without delivering them (POST
// /customers/{id}/purge-held).
func (s *server) purgeHeld(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	return s.heldAction(w, r, "purged", s.queue.Delete)
}

// heldAction lifts the hold first, so that no new message is held, then applies op to every held message.
// A message accepted held just before the hold was lifted may be committed after the first listing; a
// second pass catches it.
func (s *server) heldAction(w http.ResponseWriter, r *http.Request, action string, op func(context.Context, string) error) error {
	id := r.PathValue("id")
	if err := s.customers.LiftHold(r.Context(), id); err != nil {
		return err
	}
	s.changed()
	n := 0
	for range 2 {
		ids, err := s.customers.HeldMessages(r.Context(), id)
		if err != nil {
			return err
		}
		for _, m := range ids {
			err := op(r.Context(), m)
			switch {
			case err == nil:
				n++
			case errors.Is(err, queue.ErrNotFound), errors.Is(err, queue.ErrNotQueued), errors.Is(err, queue.ErrNotHeld):
				// Delivered, deleted, expired or released meanwhile: nothing left to do.
			default:
				return err
			}
		}
	}
	s.log.Info("api: held messages of a customer "+action, "audit", true, "customer", id, "messages", n)
	writeJSON(w, http.StatusOK, api.HeldAction{CustomerID: id, Action: action, Messages: n})
	return nil
}
