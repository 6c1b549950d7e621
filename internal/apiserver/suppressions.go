package apiserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/bounce"
)

// Suppressions are the customers' suppression lists (/customers/{id}/suppressions). *bounce.List implements
// it; errors are *fielderr.Error for a bad address and bounce.ErrNotFound for one not on the list.
type Suppressions interface {
	List(ctx context.Context, customerID string) ([]bounce.Suppression, error)
	Add(ctx context.Context, customerID, address, reason string, expires time.Time) (bounce.Suppression, error)
	Remove(ctx context.Context, customerID, address string) error
}

// bounceError maps the errors of package bounce to API errors.
func bounceError(err error) error {
	if errors.Is(err, bounce.ErrNotFound) {
		return &api.Error{Status: http.StatusNotFound, Message: "this address is not on the customer's suppression list", Field: "address"}
	}
	return err
}

// suppressionCustomer returns the customer of the path, which must exist and be visible to p.
func (s *server) suppressionCustomer(r *http.Request, p authz.Principal) (string, error) {
	id := r.PathValue("id")
	if !p.CanRead(id) {
		return "", errNotFound
	}
	if _, err := s.customers.Get(r.Context(), id); err != nil {
		return "", err
	}
	return id, nil
}

func (s *server) listSuppressions(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if _, err := query(r); err != nil {
		return err
	}
	id, err := s.suppressionCustomer(r, p)
	if err != nil {
		return err
	}
	list, err := s.suppressions.List(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *server) addSuppression(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	id, err := s.suppressionCustomer(r, p)
	if err != nil {
		return err
	}
	var in api.SuppressionRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	var expires time.Time
	if in.ExpiresAt != nil {
		expires = *in.ExpiresAt
	}
	e, err := s.suppressions.Add(r.Context(), id, in.Address, in.Reason, expires)
	if err != nil {
		return bounceError(err)
	}
	s.log.Info("suppression: added", "customer", id, "token", p.TokenID, "expires_at", e.ExpiresAt)
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func (s *server) removeSuppression(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	id, err := s.suppressionCustomer(r, p)
	if err != nil {
		return err
	}
	if err := s.suppressions.Remove(r.Context(), id, r.PathValue("address")); err != nil {
		return bounceError(err)
	}
	s.log.Info("suppression: removed", "customer", id, "token", p.TokenID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
