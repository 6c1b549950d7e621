// Package api is the wire form of Easymail's REST API (the JSON bodies under /api/v1) and a typed Go client
// for it, used by the command line and by tests. It knows nothing of the database or the server: the server
// fills these types, the client decodes them.
package api

import (
	"fmt"

	"easymail/internal/authz"
	"easymail/internal/customer"
	"easymail/internal/msglog"
	"easymail/internal/queue"
)

// RelayHostRequest is the body of POST /customers/{id}/relay-hosts.
type RelayHostRequest struct {
	Host string `json:"host"`
}

// SourceIPRequest is the body of POST /customers/{id}/source-ips.
type SourceIPRequest struct {
	CIDR string `json:"cidr"`
}

// Error is an API error: the HTTP status, a message and, when one input is at fault, its name.
type Error struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	Field   string `json:"field,omitempty"`
	// State is the message's status when a queue operation (retry, hold, release) did nothing because of it
	// (409): held, queued, deferred, delivered, bounced, rejected, quarantined, deleted, lost.
	State string `json:"state,omitempty"`
}

// Error returns "message (field f, HTTP n)".
func (e *Error) Error() string {
	s := e.Message
	if e.Field != "" {
		s += fmt.Sprintf(" (field %s)", e.Field)
	}
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	return s
}

// QueueFilter selects messages of the queue (GET /queue, POST /queue/bulk); empty fields do not filter.
// Recipient and Domain match the pending recipients only.
type QueueFilter struct {
	// All, in a bulk request, selects the whole queue; a bulk request needs All or another field.
	All      bool   `json:"all,omitempty"`
	Customer string `json:"customer,omitempty"`
	// Status is queued, deferred or held.
	Status string `json:"status,omitempty"`
	// Held selects the held messages (as status held).
	Held bool `json:"held,omitempty"`
	// Domain is a pending recipient's domain; Recipient a pending recipient's address, or a domain.
	Domain    string `json:"domain,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	// Sender is the envelope sender's address, or a domain.
	Sender string `json:"sender,omitempty"`
	// OlderThan and YoungerThan bound the message's age, as durations ("2h", "5d").
	OlderThan   string `json:"older_than,omitempty"`
	YoungerThan string `json:"younger_than,omitempty"`
}

// BulkRequest is the body of POST /queue/bulk: an action (retry, hold, release, delete) on every message
// the filter matches.
type BulkRequest struct {
	Action string      `json:"action"`
	Filter QueueFilter `json:"filter"`
}

// BulkResult is the answer of POST /queue/bulk: how many messages the filter matched, how many the action
// changed, and why the others were skipped.
type BulkResult struct {
	Action  string        `json:"action"`
	Filter  QueueFilter   `json:"filter"`
	Matched int           `json:"matched"`
	Changed int           `json:"changed"`
	Skipped []BulkSkipped `json:"skipped"`
}

// StatusPending is customer.StatusPending.
const StatusPending = customer.StatusPending

// StatusActive is customer.StatusActive.
const StatusActive = customer.StatusActive

// StatusTerminating is customer.StatusTerminating.
const StatusTerminating = customer.StatusTerminating

// StatusDeactivated is customer.StatusDeactivated.
const StatusDeactivated = customer.StatusDeactivated

// StatusRemoved is customer.StatusRemoved.
const StatusRemoved = customer.StatusRemoved

// Customer is customer.Customer.
type Customer = customer.Customer

// CustomerCreate is customer.Create.
type CustomerCreate = customer.Create

// CustomerUpdate is customer.Update.
type CustomerUpdate = customer.Update

// Domain is customer.Domain.
type Domain = customer.Domain

// DomainRequest is customer.DomainRequest.
type DomainRequest = customer.DomainRequest

// DomainUpdate is customer.DomainUpdate.
type DomainUpdate = customer.DomainUpdate

// RelayHost is customer.RelayHost.
type RelayHost = customer.RelayHost

// IgnoredRange is customer.IgnoredRange.
const IgnoredRange = customer.IgnoredRange

// IgnoredSourceIP is customer.IgnoredSourceIP.
const IgnoredSourceIP = customer.IgnoredSourceIP

// IgnoredRelayHost is customer.IgnoredRelayHost.
const IgnoredRelayHost = customer.IgnoredRelayHost

// RelayHostAddress is customer.RelayHostAddress.
type RelayHostAddress = customer.RelayHostAddress

// SourceIP is customer.SourceIP.
type SourceIP = customer.SourceIP

// Onboarding is customer.OnboardingLink.
type Onboarding = customer.OnboardingLink

// Token is authz.Token.
type Token = authz.Token

// NewToken is authz.NewToken.
type NewToken = authz.NewToken

// TokenRequest is authz.TokenRequest.
type TokenRequest = authz.TokenRequest

// BulkSkipped is queue.BulkSkipped.
type BulkSkipped = queue.BulkSkipped

// MessageSummary is msglog.MessageSummary.
type MessageSummary = msglog.MessageSummary

// Message is msglog.Message.
type Message = msglog.Message

// Recipient is msglog.Recipient.
type Recipient = msglog.Recipient

// Attempt is msglog.Attempt.
type Attempt = msglog.Attempt

// Trace is msglog.MessageTrace.
type Trace = msglog.MessageTrace

// QueuePage is msglog.Page.
type QueuePage = msglog.Page

// QueueTotal is msglog.QueueTotal.
type QueueTotal = msglog.QueueTotal
