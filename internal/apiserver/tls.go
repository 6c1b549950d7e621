package apiserver

import (
	"net/http"
	"time"

	"easymail/internal/authz"
	"easymail/internal/mtasts"
	"easymail/internal/tlsrpt"
)

// defaultTLSReports is the number of reports GET /tls-reports lists without a limit.
const defaultTLSReports = 100

// listMTASTSPolicies serves GET /mta-sts/policies: the destinations' MTA-STS policies the relay keeps
// (docs/delivery.md), expired ones included and marked.
func (s *server) listMTASTSPolicies(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	if _, err := query(r); err != nil {
		return err
	}
	list, err := mtasts.Cached(r.Context(), s.db, time.Now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// listTLSReports serves GET /tls-reports?domain=&limit=: the TLS-RPT reports sent, newest day first.
func (s *server) listTLSReports(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	q, err := query(r, "domain", "limit")
	if err != nil {
		return err
	}
	limit, err := parseLimit(q)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = defaultTLSReports
	}
	list, err := tlsrpt.Sent(r.Context(), s.db, q.Get("domain"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}
