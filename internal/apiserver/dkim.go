package apiserver

import (
	"context"
	"errors"
	"net/http"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/customer"
	"easymail/internal/dkimsign"
	"easymail/internal/readiness"
)

// DKIM is the mail-authentication service behind the domains' DKIM endpoints. *dkimsign.Manager implements
// it.
type DKIM interface {
	customer.DKIM
	// DomainKeys returns every key of a domain, retired ones included.
	DomainKeys(ctx context.Context, domain string) (*api.DomainDKIM, error)
	// Rotate starts a rotation of the domain's keys.
	Rotate(ctx context.Context, domain string) error
	// AddEd25519 gives the domain an Ed25519 key.
	AddEd25519(ctx context.Context, domain string) error
	// Check checks the records of the domain's pending keys now.
	Check(ctx context.Context, domain string) error
}

// Readiness is the bulk-sender readiness check behind the readiness endpoint, the onboarding page and the
// customers' onboarding check. *readiness.Checker implements it.
type Readiness interface {
	// Readiness checks the domain of the customer for bulk sending; readiness.ErrUnknownDomain when the
	// domain is not the customer's.
	Readiness(ctx context.Context, customerID, domain string) (*readiness.Report, error)
}

// errNoDKIM answers the DKIM endpoints of a server built without DKIM.
var errNoDKIM = &api.Error{Status: http.StatusNotFound, Message: "DKIM signing is not enabled on this server"}

// errNoReadiness answers the readiness endpoint of a server built with DKIM but without a readiness check.
var errNoReadiness = &api.Error{Status: http.StatusNotFound, Message: "the readiness check is not enabled on this server"}

// readinessOff says why the server checks no domain's readiness (a server without DKIM checks none, as the
// report covers the DKIM keys), or nil when it does.
func (s *server) readinessOff() *api.Error {
	switch {
	case s.dkim == nil:
		return errNoDKIM
	case s.checker == nil:
		return errNoReadiness
	}
	return nil
}

// customerDomain returns the domain named in the path, normalised, after checking that the caller may see
// the customer and that the domain is the customer's; anything else is 404.
func (s *server) customerDomain(r *http.Request, p authz.Principal) (string, error) {
	if s.dkim == nil {
		return "", errNoDKIM
	}
	id := r.PathValue("id")
	if !p.CanRead(id) {
		return "", errNotFound
	}
	d, err := customer.NormalizeDomain(r.PathValue("domain"))
	if err != nil {
		return "", errNotFound
	}
	c, err := s.customers.Get(r.Context(), id)
	if err != nil {
		return "", err
	}
	for _, have := range c.Domains {
		if have.Domain == d {
			return d, nil
		}
	}
	return "", errNotFound
}

// dkimError maps the errors of packages dkimsign and readiness to API errors.
func dkimError(err error) error {
	switch {
	case errors.Is(err, dkimsign.ErrUnknownDomain), errors.Is(err, readiness.ErrUnknownDomain):
		return errNotFound
	case errors.Is(err, dkimsign.ErrRotationInProgress), errors.Is(err, dkimsign.ErrNoActiveKey),
		errors.Is(err, dkimsign.ErrHasEd25519):
		return &api.Error{Status: http.StatusConflict, Message: err.Error()}
	}
	return err
}

// domainDKIM serves GET /customers/{id}/domains/{domain}/dkim: the domain's keys and records.
func (s *server) domainDKIM(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	d, err := s.customerDomain(r, p)
	if err != nil {
		return err
	}
	out, err := s.dkim.DomainKeys(r.Context(), d)
	if err != nil {
		return dkimError(err)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// rotateDKIM serves POST /customers/{id}/domains/{domain}/dkim/rotate: a new key per algorithm, used once
// its record is published. 409 while a rotation is already waiting for its record.
func (s *server) rotateDKIM(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	return s.changeDKIM(w, r, p, func(ctx context.Context, d string) error { return s.dkim.Rotate(ctx, d) })
}

// addEd25519 serves POST /customers/{id}/domains/{domain}/dkim/ed25519: an Ed25519 key as a second
// signature, used once its record is published. 409 when the domain has one.
func (s *server) addEd25519(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	return s.changeDKIM(w, r, p, func(ctx context.Context, d string) error { return s.dkim.AddEd25519(ctx, d) })
}

// checkDKIM serves POST /customers/{id}/domains/{domain}/dkim/check: the pending keys' records are checked
// now, and the keys whose record is published become active.
func (s *server) checkDKIM(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	return s.changeDKIM(w, r, p, func(ctx context.Context, d string) error { return s.dkim.Check(ctx, d) })
}

func (s *server) changeDKIM(w http.ResponseWriter, r *http.Request, p authz.Principal, change func(context.Context, string) error) error {
	d, err := s.customerDomain(r, p)
	if err != nil {
		return err
	}
	if err := change(r.Context(), d); err != nil {
		return dkimError(err)
	}
	out, err := s.dkim.DomainKeys(r.Context(), d)
	if err != nil {
		return dkimError(err)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// readiness serves GET /customers/{id}/domains/{domain}/readiness: the bulk-sender readiness report,
// checked live in DNS.
func (s *server) readiness(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	d, err := s.customerDomain(r, p)
	if err != nil {
		return err
	}
	if off := s.readinessOff(); off != nil {
		return off
	}
	rep, err := s.checker.Readiness(r.Context(), r.PathValue("id"), d)
	if err != nil {
		return dkimError(err)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
