package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"easymail/internal/mtasts"
	"easymail/internal/tlsrpt"
)

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

// MTASTSPolicy is mtasts.CachedPolicy.
type MTASTSPolicy = mtasts.CachedPolicy

// TLSReport is tlsrpt.SentReport.
type TLSReport = tlsrpt.SentReport
