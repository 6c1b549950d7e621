package api

import (
	"context"
	"net/http"

	"easymail/internal/customer"
)

// HeldAction is the answer to POST /customers/{id}/release-held and /purge-held.
type HeldAction struct {
	CustomerID string `json:"customer_id"`
	// Action is "released" or "purged".
	Action string `json:"action"`
	// Messages counts the held messages released or purged.
	Messages int `json:"messages"`
}

// ReleaseHeld lifts the hold of a customer and releases every one of its held messages for delivery.
func (c *Client) ReleaseHeld(ctx context.Context, id string) (*HeldAction, error) {
	var out HeldAction
	return &out, c.do(ctx, http.MethodPost, "/customers/"+esc(id)+"/release-held", nil, nil, &out)
}

// PurgeHeld lifts the hold of a customer and deletes every one of its held messages without delivering
// them (no DSN is sent).
func (c *Client) PurgeHeld(ctx context.Context, id string) (*HeldAction, error) {
	var out HeldAction
	return &out, c.do(ctx, http.MethodPost, "/customers/"+esc(id)+"/purge-held", nil, nil, &out)
}

// RateLimits is customer.RateLimits.
type RateLimits = customer.RateLimits
