package api

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"easymail/internal/events"
	"easymail/internal/feedback"
)

// CreateWebhook adds a webhook to a customer; the answer holds its secret.
func (c *Client) CreateWebhook(ctx context.Context, customer string, in WebhookRequest) (*Webhook, error) {
	var out Webhook
	return &out, c.do(ctx, http.MethodPost, "/customers/"+esc(customer)+"/webhooks", nil, in, &out)
}

// ListWebhooks returns a customer's webhooks (without their secrets).
func (c *Client) ListWebhooks(ctx context.Context, customer string) ([]Webhook, error) {
	var out []Webhook
	return out, c.do(ctx, http.MethodGet, "/customers/"+esc(customer)+"/webhooks", nil, nil, &out)
}

// DeleteWebhook removes a webhook and its pending deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, customer, id string) error {
	return c.do(ctx, http.MethodDelete, "/customers/"+esc(customer)+"/webhooks/"+esc(id), nil, nil, nil)
}

// DeadWebhookDeliveries returns a customer's dead-lettered webhook deliveries, newest first.
func (c *Client) DeadWebhookDeliveries(ctx context.Context, customer string) ([]WebhookDelivery, error) {
	var out []WebhookDelivery
	return out, c.do(ctx, http.MethodGet, "/customers/"+esc(customer)+"/webhooks/dead", nil, nil, &out)
}

// RedeliverWebhook makes a dead-lettered delivery due again, with fresh attempts.
func (c *Client) RedeliverWebhook(ctx context.Context, customer string, delivery int64) error {
	return c.do(ctx, http.MethodPost, "/customers/"+esc(customer)+"/webhooks/dead/"+strconv.FormatInt(delivery, 10)+"/redeliver",
		nil, nil, nil)
}

// StreamEvents writes the live event stream (NDJSON, one Event a line) to w until ctx ends or the server
// closes it.
func (c *Client) StreamEvents(ctx context.Context, w io.Writer) error {
	return c.stream(ctx, "/events/stream", nil, w)
}

// ComplaintRates returns the complaint rates over window ("" for the configured complaints.rate_window).
func (c *Client) ComplaintRates(ctx context.Context, window string) (*ComplaintRates, error) {
	var out ComplaintRates
	q := url.Values{}
	if window != "" {
		q.Set("window", window)
	}
	return &out, c.do(ctx, http.MethodGet, "/complaints", q, nil, &out)
}

// Providers returns the provider shaping state.
func (c *Client) Providers(ctx context.Context) ([]ProviderState, error) {
	var out []ProviderState
	return out, c.do(ctx, http.MethodGet, "/providers", nil, nil, &out)
}

// ResumeProvider ends the pause of an outbound IP for a provider.
func (c *Client) ResumeProvider(ctx context.Context, provider, ip string) error {
	return c.do(ctx, http.MethodPost, "/providers/"+esc(provider)+"/ips/"+esc(ip)+"/resume", nil, nil, nil)
}

// EventNames is events.Names.
var EventNames = events.Names

// Event is events.Event.
type Event = events.Event

// Webhook is events.Webhook.
type Webhook = events.Webhook

// WebhookRequest is events.WebhookRequest.
type WebhookRequest = events.WebhookRequest

// WebhookDelivery is events.WebhookDelivery.
type WebhookDelivery = events.WebhookDelivery

// ComplaintRate is feedback.Rate.
type ComplaintRate = feedback.Rate

// ComplaintRates is feedback.Rates.
type ComplaintRates = feedback.Rates

// ProviderState is one provider's limits and the shaping state of each outbound IP that sent to it
// (GET /providers).
type ProviderState struct {
	Name                  string   `json:"name"`
	MX                    []string `json:"mx"`
	MaxConnections        int      `json:"max_connections"`
	MaxConnectionsPerIP   int      `json:"max_connections_per_ip"`
	MessagesPerConnection int      `json:"messages_per_connection"`
	PerMinute             int      `json:"per_minute"`
	PerHour               int      `json:"per_hour"`
	IPs                   []struct {
		IP          string    `json:"ip"`
		Paused      bool      `json:"paused"`
		PausedUntil time.Time `json:"paused_until"`
		Strikes     int       `json:"strikes"`
		Share       float64   `json:"share"`
		LastReply   string    `json:"last_reply"`
		Minute      int       `json:"sent_this_minute"`
		Hour        int       `json:"sent_this_hour"`
	} `json:"ips"`
}
