package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Event names: what became of a message for one recipient, or of a recipient address.
const (
	EventDelivered   = "delivered"
	EventDeferred    = "deferred"
	EventBounced     = "bounced"
	EventComplained  = "complained"
	EventSuppressed  = "suppressed"
	EventQuarantined = "quarantined"
)

// EventNames are every event a webhook may subscribe to.
var EventNames = []string{EventDelivered, EventDeferred, EventBounced, EventComplained, EventSuppressed, EventQuarantined}

// Event is one delivery event, as POSTed to a customer's webhooks and streamed to operators.
type Event struct {
	// ID identifies the event; a receiver may get an event more than once (at-least-once delivery) and
	// drops the repeats by ID.
	ID    string `json:"id"`
	Event string `json:"event"`
	// CustomerID is the customer whose message (or suppression list) it is.
	CustomerID string `json:"customer_id"`
	// QueueID is Easymail's id of the message, MessageID its Message-ID header field ("" when unknown).
	QueueID   string    `json:"queue_id"`
	MessageID string    `json:"message_id"`
	Recipient string    `json:"recipient"`
	Timestamp time.Time `json:"timestamp"`
	// BounceClass is the class of a bounce (bad-mailbox, policy, ...), for "bounced".
	BounceClass string `json:"bounce_class,omitempty"`
	// Reply is the remote host's or Easymail's reply for delivered, deferred and bounced.
	Reply string `json:"reply,omitempty"`
	// Attempt is the delivery attempt's number, for delivered, deferred and bounced.
	Attempt int `json:"attempt,omitempty"`
	// RemoteMX and OutboundIP are the attempt's hosts, when one was reached.
	RemoteMX   string `json:"remote_mx,omitempty"`
	OutboundIP string `json:"outbound_ip,omitempty"`
	// Source is the cause of "suppressed" (bounce, complaint, unsubscribe) or the kind of "complained"
	// (complaint, unsubscribe); FeedbackType is a complaint report's Feedback-Type (abuse, fraud, ...).
	Source       string `json:"source,omitempty"`
	FeedbackType string `json:"feedback_type,omitempty"`
}

// Webhook is a customer's endpoint for events. Secret signs the events; it is shown only when the webhook
// is created.
type Webhook struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id"`
	URL        string    `json:"url"`
	Events     []string  `json:"events"`
	Secret     string    `json:"secret,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// WebhookRequest is the body of POST /customers/{id}/webhooks.
type WebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// WebhookDelivery is one event's delivery to one webhook: in the dead-letter view, one that was given up
// after its attempts.
type WebhookDelivery struct {
	ID         int64           `json:"id"`
	WebhookID  string          `json:"webhook_id"`
	CustomerID string          `json:"customer_id"`
	Event      string          `json:"event"`
	EventID    string          `json:"event_id"`
	Status     string          `json:"status"`
	Attempts   int             `json:"attempts"`
	LastError  string          `json:"last_error"`
	CreatedAt  time.Time       `json:"created_at"`
	Payload    json.RawMessage `json:"payload"`
}

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

// ComplaintRate is the complaints about one customer's mail, or one outbound IP's, over a window, against
// the recipients delivered there; Rate is complaints / delivered (complaints / complaints when more
// complaints than deliveries are counted).
type ComplaintRate struct {
	Key        string  `json:"key"`
	Complaints int     `json:"complaints"`
	Delivered  int     `json:"delivered"`
	Rate       float64 `json:"rate"`
}

// ComplaintRates is the answer of GET /complaints: the rates since Since (now less Window), per customer
// and per outbound IP, highest first. A customer token gets its own customer only and no IPs.
type ComplaintRates struct {
	Window    string          `json:"window"`
	Since     time.Time       `json:"since"`
	Customers []ComplaintRate `json:"customers"`
	IPs       []ComplaintRate `json:"ips"`
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

// Providers returns the provider shaping state.
func (c *Client) Providers(ctx context.Context) ([]ProviderState, error) {
	var out []ProviderState
	return out, c.do(ctx, http.MethodGet, "/providers", nil, nil, &out)
}

// ResumeProvider ends the pause of an outbound IP for a provider.
func (c *Client) ResumeProvider(ctx context.Context, provider, ip string) error {
	return c.do(ctx, http.MethodPost, "/providers/"+esc(provider)+"/ips/"+esc(ip)+"/resume", nil, nil, nil)
}
