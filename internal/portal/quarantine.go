package portal

import (
	"net/http"
	"net/url"
	"time"

	"easymail/internal/bounce"
	"easymail/internal/quarantine"
)

func init() {
	area(nil, map[string]string{
		"Your scanning policy does not let you release a message quarantined for a virus; ask the operator, or delete it.": "Votre politique d'analyse ne vous permet pas de libérer un message mis en quarantaine pour un virus ; demandez à l'opérateur, ou supprimez-le.",
		"Your scanning policy does not let you release or delete quarantined messages; ask the operator.":                  "Votre politique d'analyse ne vous permet pas de libérer ni de supprimer les messages en quarantaine ; demandez à l'opérateur.",
	}, nil)
}

func (s *server) quarantineList(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cust, ok := rc.scope(r.URL.Query().Get("customer"))
	if !ok {
		return errNotFound
	}
	list := []quarantine.Entry{}
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

// quarantinedView is a quarantined message and what the user may do with it.
type quarantinedView struct {
	*quarantine.Message
	CanRelease, CanDelete bool
}

// quarantineRights says whether the user may release and delete quarantined message m of customer cust:
// an operator may, an expert may not, a customer's user as its customer's scanning policy allows
// (customer_release: none, except_virus or all).
func (s *server) quarantineRights(rc *reqCtx, cust string, m *quarantine.Message) (release, del bool) {
	switch {
	case rc.operator():
		return true, true
	case rc.staff(), s.o.ScanPolicies == nil:
		return false, false
	}
	return s.o.ScanPolicies.For(cust).CustomerMay(quarantine.Infected(m))
}

func (s *server) quarantineShow(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cust, err := s.quarantined(r, rc)
	if err != nil {
		return err
	}
	m, err := s.o.Quarantine.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	d := quarantinedView{Message: m}
	d.CanRelease, d.CanDelete = s.quarantineRights(rc, cust, m)
	// The preview is text only (the quarantine strips markup and control characters); the template prints
	// it escaped in a <pre>, and the CSP forbids anything remote.
	return s.render(w, r, rc, http.StatusOK, "quarantined", "quarantine", "Quarantined message", d)
}

// quarantineAction serves POST /quarantine/{id}/release and /delete: for operators, and for a customer's
// users on their own customer's quarantine when its scanning policy allows (another customer's message is
// 404 to them).
func (s *server) quarantineAction(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cust, err := s.quarantined(r, rc)
	if err != nil {
		return err
	}
	id, action := r.PathValue("id"), r.PathValue("action")
	if action != "release" && action != "delete" {
		return errNotFound
	}
	if rc.staff() && !rc.operator() {
		return errorf(http.StatusForbidden, "Your role may not change anything.")
	}
	m, err := s.o.Quarantine.Get(r.Context(), id)
	if err != nil {
		return err
	}
	release, del := s.quarantineRights(rc, cust, m)
	switch {
	case action == "release" && !release && del:
		return errorf(http.StatusForbidden, "Your scanning policy does not let you release a message quarantined for a virus; ask the operator, or delete it.")
	case action == "release" && !release, action == "delete" && !del:
		return errorf(http.StatusForbidden, "Your scanning policy does not let you release or delete quarantined messages; ask the operator.")
	}
	rc.auditCustomer = cust
	rc.auditDetail = map[string]string{"quarantined": id, "action": action, "verdict": m.Verdict}
	if action == "release" {
		if err := s.o.Quarantine.Release(r.Context(), id); err != nil {
			return err
		}
		return redirect(w, r, "/messages/"+id+"?done=qrelease")
	}
	if err := s.o.Quarantine.Delete(r.Context(), id); err != nil {
		return err
	}
	return redirect(w, r, "/quarantine?done=qdelete")
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
