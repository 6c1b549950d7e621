package portal

import (
	"context"
	"net/http"
	"time"

	"easymail/internal/customer"
	"easymail/internal/readiness"
)

// readinessTimeout bounds the live DNS check of one domain on the domains page.
const readinessTimeout = 5 * time.Second

func (s *server) customers(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	list, err := s.o.Customers.List(r.Context())
	if err != nil {
		return err
	}
	return s.render(w, r, rc, http.StatusOK, "customers", "customers", "Customers", customersView{List: list, Pools: s.o.Customers.Pools})
}

// customerPortal turns a customer's portal access on or off (operators).
func (s *server) customerPortal(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	on := r.PostFormValue("enabled") == "true"
	before, err := s.o.Customers.Get(r.Context(), id)
	if err != nil {
		return err
	}
	if _, err := s.o.Customers.Update(r.Context(), id, customer.Update{PortalEnabled: &on}); err != nil {
		return err
	}
	s.changed()
	rc.auditCustomer, rc.auditDetail = id, map[string]bool{"portal_enabled_before": before.PortalEnabled, "portal_enabled": on}
	return redirect(w, r, "/customers?done=portal")
}

// domainView is a domain with its live DNS checks.
type domainView struct {
	D         customer.Domain
	Readiness *readiness.Report
	Error     string
}

type domainsView struct {
	Customer  *customer.Customer
	Customers []string
	Domains   []domainView
}

func (s *server) domains(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cust, ok := rc.scope(r.URL.Query().Get("customer"))
	if !ok {
		return errNotFound
	}
	d := domainsView{}
	if rc.staff() {
		var err error
		if d.Customers, err = s.customerIDs(r.Context()); err != nil {
			return err
		}
	}
	if cust != "" {
		c, err := s.o.Customers.Get(r.Context(), cust)
		if err != nil {
			return err
		}
		d.Customer = c
		for _, dom := range c.Domains {
			v := domainView{D: dom}
			if s.o.Readiness != nil {
				// Checked live: SPF, DKIM and DMARC as the DNS has them now, within a bound so that a slow
				// DNS never holds the page.
				ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
				rd, err := s.o.Readiness.Readiness(ctx, cust, dom.Domain)
				cancel()
				if err != nil {
					v.Error = err.Error()
				} else {
					v.Readiness = rd
				}
			}
			d.Domains = append(d.Domains, v)
		}
	}
	return s.render(w, r, rc, http.StatusOK, "domains", "domains", "Domains and DNS", d)
}

// customerIDs lists the ids of every customer, for the staff's customer choosers.
func (s *server) customerIDs(ctx context.Context) ([]string, error) {
	cs, err := s.o.Customers.List(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids, nil
}
