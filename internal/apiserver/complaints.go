package apiserver

import (
	"context"
	"net/http"
	"time"

	"easymail/internal/api"
	"easymail/internal/authz"
)

// Complaints counts the complaint rates. *feedback.Intake implements it.
type Complaints interface {
	Rates(ctx context.Context, from time.Time) (customers, ips []api.ComplaintRate, err error)
}

// complaintRates serves GET /complaints?window=24h: the complaint rates per customer and outbound IP. A
// customer sees its own row only.
func (s *server) complaintRates(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	q, err := query(r, "window")
	if err != nil {
		return err
	}
	if s.complaints == nil {
		return errNotFound
	}
	window := s.cfg.Complaints.RateWindow
	if v := q.Get("window"); v != "" {
		if window, err = time.ParseDuration(v); err != nil || window <= 0 || window > 90*24*time.Hour {
			return badRequest("window must be a duration up to 2160h (24h)", "window")
		}
	}
	now := time.Now()
	if s.customers.Now != nil {
		now = s.customers.Now()
	}
	since := now.Add(-window)
	custs, ips, err := s.complaints.Rates(r.Context(), since)
	if err != nil {
		return err
	}
	if id, scoped := p.Scoped(); scoped {
		var own []api.ComplaintRate
		for _, c := range custs {
			if c.Key == id {
				own = append(own, c)
			}
		}
		custs, ips = own, nil
	}
	if custs == nil {
		custs = []api.ComplaintRate{}
	}
	if ips == nil {
		ips = []api.ComplaintRate{}
	}
	writeJSON(w, http.StatusOK, api.ComplaintRates{Window: window.String(), Since: since.UTC(), Customers: custs, IPs: ips})
	return nil
}
