package apiserver

import (
	"errors"
	"net/http"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/customer"
	"easymail/internal/fielderr"
)

func (s *server) createCustomer(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	var in api.CustomerCreate
	if err := decode(w, r, &in); err != nil {
		return err
	}
	c, err := s.customers.Create(r.Context(), in)
	if err != nil {
		return err
	}
	s.changed()
	c.OnboardingURL = s.onboarding.Link(s.cfg.API.PublicURL, c.ID).URL
	w.Header().Set("Location", "/api/v1/customers/"+c.ID)
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *server) listCustomers(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if id, ok := p.Scoped(); ok {
		c, err := s.customers.Get(r.Context(), id)
		if errors.Is(err, customer.ErrNotFound) {
			writeJSON(w, http.StatusOK, []api.Customer{})
			return nil
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, []api.Customer{*c})
		return nil
	}
	list, err := s.customers.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *server) getCustomer(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	id := r.PathValue("id")
	if !p.CanRead(id) {
		return errNotFound
	}
	c, err := s.customers.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) updateCustomer(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	var in api.CustomerUpdate
	if err := decode(w, r, &in); err != nil {
		return err
	}
	c, err := s.customers.Update(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	s.changed()
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) deleteCustomer(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	if err := s.customers.Delete(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) createOnboarding(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	c, err := s.customers.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if s.customers.ServiceEnded(c) {
		return &fielderr.Error{Field: "status", Msg: "the customer's service has ended (" + string(c.Status) +
			"): an onboarding link would not work", Conflict: true}
	}
	writeJSON(w, http.StatusOK, s.onboarding.Link(s.cfg.API.PublicURL, c.ID))
	return nil
}

func (s *server) addDomain(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	var in api.DomainRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	d, err := s.customers.AddDomainWith(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	s.changed()
	writeJSON(w, http.StatusCreated, d)
	return nil
}

// updateDomain serves PATCH /customers/{id}/domains/{domain}: include_subdomains on or off.
func (s *server) updateDomain(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	var in api.DomainUpdate
	if err := decode(w, r, &in); err != nil {
		return err
	}
	d, err := s.customers.UpdateDomain(r.Context(), r.PathValue("id"), r.PathValue("domain"), in)
	if err != nil {
		return err
	}
	s.changed()
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *server) removeDomain(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	if err := s.customers.RemoveDomain(r.Context(), r.PathValue("id"), r.PathValue("domain")); err != nil {
		return err
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) addRelayHost(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	var in api.RelayHostRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	h, err := s.customers.AddRelayHost(r.Context(), r.PathValue("id"), in.Host)
	if err != nil {
		return err
	}
	s.changed()
	// The reload after the change has resolved the host: show what its addresses became.
	if got, err := s.customers.GetRelayHost(r.Context(), h.CustomerID, h.ID); err == nil {
		h = got
	}
	writeJSON(w, http.StatusCreated, h)
	return nil
}

func (s *server) removeRelayHost(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	if err := s.customers.RemoveRelayHost(r.Context(), r.PathValue("id"), r.PathValue("hostid")); err != nil {
		return err
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) addSourceIP(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	var in api.SourceIPRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	ip, err := s.customers.AddSourceIP(r.Context(), r.PathValue("id"), in.CIDR)
	if err != nil {
		return err
	}
	s.changed()
	writeJSON(w, http.StatusCreated, ip)
	return nil
}

func (s *server) removeSourceIP(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	if err := s.customers.RemoveSourceIP(r.Context(), r.PathValue("id"), r.PathValue("ipid")); err != nil {
		return err
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}
