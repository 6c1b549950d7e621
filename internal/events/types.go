package events

import (
	"encoding/json"
	"time"
)

// Event names: what became of a message for one recipient, or of a recipient address.
const (
	Delivered   = "delivered"
	Deferred    = "deferred"
	Bounced     = "bounced"
	Complained  = "complained"
	Suppressed  = "suppressed"
	Quarantined = "quarantined"
)

// Names are every event a webhook may subscribe to.
var Names = []string{Delivered, Deferred, Bounced, Complained, Suppressed, Quarantined}

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
