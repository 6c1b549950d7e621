package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// ListQuarantine returns the quarantined messages, newest first; customer "" for all the caller may see.
func (c *Client) ListQuarantine(ctx context.Context, customer string, limit int) ([]QuarantineEntry, error) {
	v := url.Values{}
	if customer != "" {
		v.Set("customer", customer)
	}
	if limit != 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out []QuarantineEntry
	return out, c.do(ctx, http.MethodGet, "/quarantine", v, nil, &out)
}

// GetQuarantined returns a quarantined message with its header, verdicts and a safe text preview.
func (c *Client) GetQuarantined(ctx context.Context, id string) (*QuarantineMessage, error) {
	var out QuarantineMessage
	return &out, c.do(ctx, http.MethodGet, "/quarantine/"+esc(id), nil, nil, &out)
}

// ReleaseQuarantined releases a quarantined message: it is queued and delivered normally.
func (c *Client) ReleaseQuarantined(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/quarantine/"+esc(id)+"/release", nil, nil, nil)
}

// DeleteQuarantined deletes a quarantined message without delivering it.
func (c *Client) DeleteQuarantined(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/quarantine/"+esc(id), nil, nil, nil)
}

// GetScanPolicy returns a customer's scanning policy and the defaults.
func (c *Client) GetScanPolicy(ctx context.Context, customer string) (*CustomerScanPolicy, error) {
	var out CustomerScanPolicy
	return &out, c.do(ctx, http.MethodGet, "/customers/"+esc(customer)+"/scan-policy", nil, nil, &out)
}

// SetScanPolicy replaces a customer's scanning policy (null fields take the defaults).
func (c *Client) SetScanPolicy(ctx context.Context, customer string, p ScanPolicy) (*CustomerScanPolicy, error) {
	var out CustomerScanPolicy
	return &out, c.do(ctx, http.MethodPut, "/customers/"+esc(customer)+"/scan-policy", nil, p, &out)
}
