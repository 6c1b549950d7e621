package api

import (
	"context"
	"net/http"
	"net/url"

	"easymail/internal/ippool"
)

// IPActionRequest is the optional body of POST /ips/{address}/pause and /drain.
type IPActionRequest struct {
	Reason string `json:"reason,omitempty"`
}

// ListPools returns the outbound IP pools.
func (c *Client) ListPools(ctx context.Context) ([]Pool, error) {
	var out []Pool
	return out, c.do(ctx, http.MethodGet, "/pools", nil, nil, &out)
}

// ListIPs returns the outbound IPs, of one pool when pool is not "".
func (c *Client) ListIPs(ctx context.Context, pool string) ([]IP, error) {
	var q url.Values
	if pool != "" {
		q = url.Values{"pool": {pool}}
	}
	var out []IP
	return out, c.do(ctx, http.MethodGet, "/ips", q, nil, &out)
}

// GetIP returns one outbound IP.
func (c *Client) GetIP(ctx context.Context, address string) (*IP, error) {
	var out IP
	return &out, c.do(ctx, http.MethodGet, "/ips/"+esc(address), nil, nil, &out)
}

// AddIP adds an outbound IP to a pool.
func (c *Client) AddIP(ctx context.Context, pool string, in IPRequest) (*IP, error) {
	var out IP
	return &out, c.do(ctx, http.MethodPost, "/pools/"+esc(pool)+"/ips", nil, in, &out)
}

// RemoveIP removes an outbound IP from its pool.
func (c *Client) RemoveIP(ctx context.Context, pool, address string) error {
	return c.do(ctx, http.MethodDelete, "/pools/"+esc(pool)+"/ips/"+esc(address), nil, nil, nil)
}

// IPAction runs action (drain, pause, resume or check) on an outbound IP and returns the IP as it now is.
// reason is recorded for drain and pause.
func (c *Client) IPAction(ctx context.Context, address, action, reason string) (*IP, error) {
	var body any
	if reason != "" {
		body = IPActionRequest{Reason: reason}
	}
	var out IP
	return &out, c.do(ctx, http.MethodPost, "/ips/"+esc(address)+"/"+esc(action), nil, body, &out)
}

// IPActive is ippool.StateActive.
const IPActive = ippool.StateActive

// IPWarming is ippool.StateWarming.
const IPWarming = ippool.StateWarming

// IPPaused is ippool.StatePaused.
const IPPaused = ippool.StatePaused

// IPListed is ippool.StateListed.
const IPListed = ippool.StateListed

// IPDraining is ippool.StateDraining.
const IPDraining = ippool.StateDraining

// FCrDNSOK is ippool.FCrDNSOK.
const FCrDNSOK = ippool.FCrDNSOK

// FCrDNSMismatch is ippool.FCrDNSMismatch.
const FCrDNSMismatch = ippool.FCrDNSMismatch

// Pool is ippool.Pool.
type Pool = ippool.Pool

// IP is ippool.IP.
type IP = ippool.IP

// IPRequest is ippool.IPRequest.
type IPRequest = ippool.IPRequest
