package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MTASTSPolicy is a destination's MTA-STS policy (RFC 8461) as the relay fetched and keeps it
// (GET /mta-sts/policies; docs/delivery.md).
type MTASTSPolicy struct {
	// Domain is the policy domain; ID the id of its _mta-sts TXT record the policy was fetched for.
	Domain string `json:"domain"`
	ID     string `json:"id"`
	// Mode is enforce, testing or none; MX the policy's mx patterns; MaxAge its max_age in seconds.
	Mode   string   `json:"mode"`
	MX     []string `json:"mx"`
	MaxAge int64    `json:"max_age"`
	// FetchedAt is when it was fetched; ExpiresAt (FetchedAt + max_age) when it stops being used.
	FetchedAt time.Time `json:"fetched_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Expired reports that ExpiresAt has passed: the policy is no longer applied.
	Expired bool `json:"expired"`
}

// TLSReport is one TLS-RPT report (RFC 8460) the relay sent, or gave up on, for a day and policy domain
// (GET /tls-reports).
type TLSReport struct {
	// Day is the UTC day reported (YYYY-MM-DD); Domain the policy domain; ReportID the report's report-id.
	Day      string `json:"day"`
	Domain   string `json:"domain"`
	ReportID string `json:"report_id"`
	// RUA are the report addresses of the domain's _smtp._tls record, comma-separated ("" when it has none).
	RUA string `json:"rua"`
	// Outcome is, per address, "sent" or the error ("mailto:a@example.com: sent; https://...: answered 500"),
	// or "no report address: ..." for a domain without a usable record.
	Outcome string    `json:"outcome"`
	SentAt  time.Time `json:"sent_at"`
}

// MTASTSPolicies returns the MTA-STS policies the relay keeps, by domain.
func (c *Client) MTASTSPolicies(ctx context.Context) ([]MTASTSPolicy, error) {
	var out []MTASTSPolicy
	return out, c.do(ctx, http.MethodGet, "/mta-sts/policies", nil, nil, &out)
}

// TLSReports returns the TLS reports sent, newest day first; domain ("" for all) and limit (0 for the
// server's default) narrow the list.
func (c *Client) TLSReports(ctx context.Context, domain string, limit int) ([]TLSReport, error) {
	q := url.Values{}
	if domain != "" {
		q.Set("domain", domain)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []TLSReport
	return out, c.do(ctx, http.MethodGet, "/tls-reports", q, nil, &out)
}
