package portal

import (
	"net/http"
	"net/url"
	"time"

	"easymail/internal/api"
	"easymail/internal/bounce"
)

func (s *server) quarantineList(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cust, ok := rc.scope(r.URL.Query().Get("customer"))
	if !ok {
		return errNotFound
	}
	list := []api.QuarantineEntry{}
	if s.o.Quarantine != nil {
		var err error
		if list, err = s.o.Quarantine.List(r.Context(), cust, 200); err != nil {
			return err
		}
	}
	return s.render(w, r, rc, http.StatusOK, "quarantine", "quarantine", "Quarantine", list)
}

// quarantined returns the quarantined message of the path if the user may see it.
func (s *server) quarantined(r *http.Request, rc *reqCtx) (string, error) {
	if s.o.Quarantine == nil {
		return "", errNotFound
	}
	id := r.PathValue("id")
	cust, err := s.o.Quarantine.Customer(r.Context(), id)
	if err != nil {
		return "", err
	}
	if !rc.principal().CanRead(cust) {
		return "", errNotFound
	}
	return cust, nil
}

func (s *server) quarantineShow(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if _, err := s.quarantined(r, rc); err != nil {
		return err
	}
	m, err := s.o.Quarantine.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	// The preview is text only (the quarantine strips markup and control characters); the template prints
	// it escaped in a <pre>, and the CSP forbids anything remote.
	return s.render(w, r, rc, http.StatusOK, "quarantined", "quarantine", "Quarantined message", m)
}

func (s *server) quarantineAction(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cust, err := s.quarantined(r, rc)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	rc.auditCustomer = cust
	switch r.PathValue("action") {
	case "release":
		rc.auditDetail = map[string]string{"quarantined": id, "action": "release"}
		if err := s.o.Quarantine.Release(r.Context(), id); err != nil {
			return err
		}
		return redirect(w, r, "/messages/"+id+"?done=qrelease")
	case "delete":
		rc.auditDetail = map[string]string{"quarantined": id, "action": "delete"}
		if err := s.o.Quarantine.Delete(r.Context(), id); err != nil {
			return err
		}
		return redirect(w, r, "/quarantine?done=qdelete")
	}
	return errNotFound
}

type suppressionsView struct {
	Customer  string
	Customers []string
	List      []bounce.Suppression
}

func (s *server) suppressionList() *bounce.List {
	return bounce.NewList(bounce.ListOptions{DB: s.o.DB, TTL: s.o.Config.Suppression.TTL, Logger: s.log})
}

func (s *server) suppressions(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cust, ok := rc.scope(r.URL.Query().Get("customer"))
	if !ok {
		return errNotFound
	}
	d := suppressionsView{Customer: cust}
	if rc.staff() {
		var err error
		if d.Customers, err = s.customerIDs(r.Context()); err != nil {
			return err
		}
	}
	if cust != "" {
		if _, err := s.o.Customers.Get(r.Context(), cust); err != nil {
			return err
		}
		var err error
		if d.List, err = s.suppressionList().List(r.Context(), cust); err != nil {
			return err
		}
	}
	return s.render(w, r, rc, http.StatusOK, "suppressions", "suppressions", "Suppression list", d)
}

func (s *server) addSuppression(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cust := r.PostFormValue("customer")
	if _, err := s.o.Customers.Get(r.Context(), cust); err != nil {
		return err
	}
	addr := r.PostFormValue("address")
	rc.auditCustomer, rc.auditDetail = cust, map[string]string{"address": addr}
	if _, err := s.suppressionList().Add(r.Context(), cust, addr, r.PostFormValue("reason"), time.Time{}); err != nil {
		return err
	}
	return redirect(w, r, "/suppressions?customer="+url.QueryEscape(cust)+"&done=suppressed")
}

func (s *server) removeSuppression(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cust, addr := r.PostFormValue("customer"), r.PostFormValue("address")
	rc.auditCustomer, rc.auditDetail = cust, map[string]string{"address": addr}
	if err := s.suppressionList().Remove(r.Context(), cust, addr); err != nil {
		return err
	}
	return redirect(w, r, "/suppressions?customer="+url.QueryEscape(cust)+"&done=unsuppressed")
}
