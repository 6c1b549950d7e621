package bounce

import "time"

// Suppression is a recipient address a customer's mail is refused for at RCPT (550 5.1.1): after a hard
// bounce of a bad mailbox (Source "bounce"), a receiver's complaint (Source "complaint", docs/events.md) or
// because an operator added it (Source "operator"). Address is
// in lower case.
type Suppression struct {
	CustomerID string `json:"customer_id"`
	Address    string `json:"address"`
	Source     string `json:"source"`
	// Reason is the bounce's reply, or the operator's note.
	Reason string `json:"reason"`
	// QueueID is the message whose bounce caused the entry ("" for an operator's entry).
	QueueID   string    `json:"queue_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the entry stops applying.
	ExpiresAt time.Time `json:"expires_at"`
}

// Request is the body of POST /customers/{id}/suppressions. ExpiresAt defaults to now plus the
// configured suppression.ttl.
type Request struct {
	Address   string     `json:"address"`
	Reason    string     `json:"reason,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}
