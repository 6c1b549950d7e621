package apiserver

import (
	"net/http"
	"time"

	"easymail/internal/authz"
	"easymail/internal/msglog"
)

// stats serves GET /stats: traffic statistics over time buckets, for one customer (a customer token sees
// only its own), sending domain or destination, optionally split by customer, domain or destination.
func (s *server) stats(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	q, err := query(r, "customer", "domain", "destination", "bucket", "group", "since", "until")
	if err != nil {
		return err
	}
	f := msglog.StatsFilter{Domain: q.Get("domain"), Destination: q.Get("destination"), Bucket: q.Get("bucket"),
		Group: q.Get("group")}
	if f.Since, err = parseTime(q, "since"); err != nil {
		return err
	}
	if f.Until, err = parseTime(q, "until"); err != nil {
		return err
	}
	cust, visible := scope(p, q.Get("customer"))
	if !visible {
		// Another customer: counted as if it had no traffic.
		cust = "\x00"
	}
	f.Customer = cust
	st, err := msglog.ComputeStats(r.Context(), s.db, f, time.Now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
