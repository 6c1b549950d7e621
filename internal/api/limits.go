package api

import (
	"context"
	"net/http"
)

// RateLimits are a customer's own rate limits. A null field takes the configured default (limits:
// section); 0 is unlimited. Over a limit, MAIL (messages) or RCPT (recipients) is answered "451 4.7.0" and
// the customer's MTA retries: limits shape bursts, they never lose mail. Burst is the most messages, and
// the most recipients, accepted at once under the per-minute limits. In PATCH /customers/{id} the object
// replaces the customer's limits as a whole: {} returns every limit to its default.
type RateLimits struct {
	MessagesPerMinute   *int `json:"messages_per_minute"`
	MessagesPerHour     *int `json:"messages_per_hour"`
	RecipientsPerMinute *int `json:"recipients_per_minute"`
	RecipientsPerHour   *int `json:"recipients_per_hour"`
	Burst               *int `json:"burst"`
}

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
