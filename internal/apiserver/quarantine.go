package apiserver

import (
	"context"
	"errors"
	"net/http"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/quarantine"
)

// Quarantine is the quarantine the API operates. *quarantine.Store implements it.
type Quarantine interface {
	List(ctx context.Context, customer string, limit int) ([]api.QuarantineEntry, error)
	Get(ctx context.Context, id string) (*api.QuarantineMessage, error)
	Customer(ctx context.Context, id string) (string, error)
	Release(ctx context.Context, id string) error
	Delete(ctx context.Context, id string) error
}

// ScanPolicies are the customers' scanning policies. *scan.Policies implements it.
type ScanPolicies interface {
	Get(customerID string) api.ScanPolicy
	Defaults() api.ScanPolicy
	// Effective returns the content rules in force for the customer (defaults and its own, by origin).
	Effective(customerID string) []api.EffectiveRule
	Set(ctx context.Context, customerID string, p api.ScanPolicy) error
}

// quarantineError maps the quarantine's errors to API errors.
func quarantineError(err error) error {
	if errors.Is(err, quarantine.ErrNotFound) {
		return errNotFound
	}
	return err
}

// quarantined returns the id of the path if it names a quarantined message p may see.
func (s *server) quarantined(r *http.Request, p authz.Principal) (string, error) {
	if s.quarantine == nil {
		return "", errNotFound
	}
	id := r.PathValue("id")
	c, err := s.quarantine.Customer(r.Context(), id)
	if err != nil {
		return "", quarantineError(err)
	}
	if !p.CanRead(c) {
		return "", errNotFound
	}
	return id, nil
}

func (s *server) listQuarantine(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	q, err := query(r, "customer", "limit")
	if err != nil {
		return err
	}
	limit, err := parseLimit(q)
	if err != nil {
		return err
	}
	cust, ok := scope(p, q.Get("customer"))
	if !ok || s.quarantine == nil {
		writeJSON(w, http.StatusOK, []api.QuarantineEntry{})
		return nil
	}
	list, err := s.quarantine.List(r.Context(), cust, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *server) showQuarantined(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	id, err := s.quarantined(r, p)
	if err != nil {
		return err
	}
	m, err := s.quarantine.Get(r.Context(), id)
	if err != nil {
		return quarantineError(err)
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *server) releaseQuarantined(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	return s.quarantineAction(w, r, p, "released", func(ctx context.Context, id string) error { return s.quarantine.Release(ctx, id) })
}

func (s *server) deleteQuarantined(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	return s.quarantineAction(w, r, p, "deleted", func(ctx context.Context, id string) error { return s.quarantine.Delete(ctx, id) })
}

func (s *server) quarantineAction(w http.ResponseWriter, r *http.Request, p authz.Principal, action string,
	op func(context.Context, string) error) error {
	id, err := s.quarantined(r, p)
	if err != nil {
		return err
	}
	if err := op(r.Context(), id); err != nil {
		return quarantineError(err)
	}
	s.log.Info("api: quarantined message "+action, "audit", true, "queue_id", id, "token", p.TokenID)
	writeJSON(w, http.StatusOK, api.QuarantineAction{ID: id, Action: action})
	return nil
}

// scanPolicyCustomer returns the customer of the path, which must exist and be visible to p.
func (s *server) scanPolicyCustomer(r *http.Request, p authz.Principal) (string, error) {
	if s.scanPolicies == nil {
		return "", errNotFound
	}
	return s.suppressionCustomer(r, p)
}

// customerScanPolicy is the answer of GET and PUT /customers/{id}/scan-policy.
func (s *server) customerScanPolicy(id string) api.CustomerScanPolicy {
	return api.CustomerScanPolicy{CustomerID: id, Policy: s.scanPolicies.Get(id), Defaults: s.scanPolicies.Defaults(),
		EffectiveRules: s.scanPolicies.Effective(id)}
}

func (s *server) getScanPolicy(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	id, err := s.scanPolicyCustomer(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.customerScanPolicy(id))
	return nil
}

func (s *server) setScanPolicy(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	id, err := s.scanPolicyCustomer(r, p)
	if err != nil {
		return err
	}
	var in api.ScanPolicy
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := s.scanPolicies.Set(r.Context(), id, in); err != nil {
		return err
	}
	s.log.Info("api: scan policy changed", "audit", true, "customer", id, "token", p.TokenID)
	writeJSON(w, http.StatusOK, s.customerScanPolicy(id))
	return nil
}
