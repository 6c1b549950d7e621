// Package api is the wire form of Easymail's REST API (the JSON bodies under /api/v1) and a typed Go client
// for it, used by the command line and by tests. It knows nothing of the database or the server: the server
// fills these types, the client decodes them.
package api

import (
	"easymail/internal/queue"

	"easymail/internal/authz"

	"easymail/internal/customer"

	"easymail/internal/dkimsign"

	"fmt"
	"strings"
	"time"
)

// RelayHostRequest is the body of POST /customers/{id}/relay-hosts.
type RelayHostRequest struct {
	Host string `json:"host"`
}

// SourceIPRequest is the body of POST /customers/{id}/source-ips.
type SourceIPRequest struct {
	CIDR string `json:"cidr"`
}

// MessageSummary is one message in a search result or in the queue. Status is the message's status, or
// "held" while the message is held.
type MessageSummary struct {
	ID         string     `json:"id"`
	CustomerID string     `json:"customer_id"`
	Sender     string     `json:"sender"`
	HeaderFrom string     `json:"header_from"`
	MessageID  string     `json:"message_id"`
	Subject    string     `json:"subject"`
	Size       int64      `json:"size"`
	Status     string     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	ReceivedAt time.Time  `json:"received_at"`
	DoneAt     *time.Time `json:"done_at,omitempty"`
	Recipients []string   `json:"recipients"`
	// Pending counts the recipients still to be delivered (queued or deferred).
	Pending int `json:"pending"`
	// NextAttemptAt is the earliest next attempt among the pending recipients.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// Stage is, for a rejected message, the SMTP stage of the refusal: mail, rcpt or data.
	Stage string `json:"stage,omitempty"`
}

// Message is the whole record of one message.
type Message struct {
	ID            string     `json:"id"`
	NodeID        string     `json:"node_id"`
	CustomerID    string     `json:"customer_id"`
	Sender        string     `json:"sender"`
	HeaderFrom    string     `json:"header_from"`
	MessageID     string     `json:"message_id"`
	Subject       string     `json:"subject"`
	Size          int64      `json:"size"`
	ClientIP      string     `json:"client_ip"`
	HELO          string     `json:"helo"`
	TLS           string     `json:"tls"`
	Status        string     `json:"status"`
	Reason        string     `json:"reason"`
	Held          bool       `json:"held"`
	IsDSN         bool       `json:"is_dsn"`
	SMTPUTF8      bool       `json:"smtputf8"`
	BodyType      string     `json:"body_type"`
	ReceivedAt    time.Time  `json:"received_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	DelayNotified bool       `json:"delay_notified"`
	DoneAt        *time.Time `json:"done_at,omitempty"`
	// FromDomain is the header From's domain; DKIMDomain the d= of Easymail's DKIM signature ("" when it
	// did not sign) and DKIMSelectors its selectors, comma-separated.
	FromDomain    string `json:"from_domain"`
	DKIMDomain    string `json:"dkim_domain"`
	DKIMSelectors string `json:"dkim_selectors"`
	// DKIMAligned, SPFAligned and DMARCAligned are the DMARC identifier alignment of the DKIM domain and of
	// the envelope sender's domain with the header From (relaxed, RFC 7489 §3.1), and their disjunction.
	// Null for a message that was not analysed (refused, or logged before the check existed).
	DKIMAligned  *bool `json:"dkim_aligned"`
	SPFAligned   *bool `json:"spf_aligned"`
	DMARCAligned *bool `json:"dmarc_aligned"`
	// Bulk is set when the message looks like bulk mail (Precedence: bulk or list, List-Id or
	// List-Unsubscribe); ListUnsubscribe when it has a List-Unsubscribe field (RFC 2369); ListUnsubscribePost
	// when it offers one-click unsubscription ("List-Unsubscribe-Post: List-Unsubscribe=One-Click" and an
	// https URI in List-Unsubscribe, RFC 8058 §3.1).
	Bulk                bool `json:"bulk"`
	ListUnsubscribe     bool `json:"list_unsubscribe"`
	ListUnsubscribePost bool `json:"list_unsubscribe_post"`
	// Verdict is the content scan verdict ("" when the message was not scanned).
	Verdict string `json:"verdict"`
	// Scan is the content scan report: each scanner's verdict and the content rules that matched (null when
	// the message was not scanned).
	Scan *ScanReport `json:"scan,omitempty"`
	// Stage is, for a rejected message, the SMTP stage of the refusal: "mail" (the sender, the size
	// declared, the customer's status), "rcpt" (that recipient) or "data" (the content); empty otherwise.
	Stage string `json:"stage,omitempty"`
}

// Recipient is one envelope recipient of a message and where its delivery stands.
type Recipient struct {
	Index         int       `json:"idx"`
	Address       string    `json:"address"`
	Domain        string    `json:"domain"`
	Status        string    `json:"status"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastCode      int       `json:"last_code"`
	LastEnhanced  string    `json:"last_enhanced"`
	LastReply     string    `json:"last_reply"`
	RemoteMX      string    `json:"remote_mx"`
	OutboundIP    string    `json:"outbound_ip"`
	UpdatedAt     time.Time `json:"updated_at"`
	// BounceClass is the class of the last failure (bad-mailbox, policy, ...; see docs/analysis.md), "" when
	// the recipient was delivered or never failed.
	BounceClass string `json:"bounce_class"`
	// LastRemoteReply is the remote host's own reply to the last attempt (Attempt.RemoteReply).
	LastRemoteReply string `json:"last_remote_reply"`
}

// Attempt is one delivery attempt for one recipient.
type Attempt struct {
	RcptIndex  int       `json:"rcpt_idx"`
	Recipient  string    `json:"recipient"`
	Attempt    int       `json:"attempt"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	Outcome    string    `json:"outcome"`
	RemoteMX   string    `json:"remote_mx"`
	RemoteIP   string    `json:"remote_ip"`
	OutboundIP string    `json:"outbound_ip"`
	TLS        string    `json:"tls"`
	Code       int       `json:"code"`
	Enhanced   string    `json:"enhanced"`
	Reply      string    `json:"reply"`
	// BounceClass is the class of the failure, "" for a delivery.
	BounceClass string `json:"bounce_class"`
	// RemoteReply is the remote host's own reply the outcome rests on, as it wrote it ("250 2.0.0 Ok: queued
	// as 4BX3"; lines joined by spaces, control characters removed, at most 1000 bytes); "" when no reply of
	// a remote host decided (no connection, DNS, a connection lost, a local error).
	RemoteReply string `json:"remote_reply"`
	// TLSVersion ("TLS1.3") and TLSCipher ("TLS_AES_128_GCM_SHA256") are the connection's, "" in plain text.
	TLSVersion string `json:"tls_version"`
	TLSCipher  string `json:"tls_cipher"`
	// TLSVerify is how the certificate was checked: none (plain text), unverified, verified (WebPKI), dane,
	// or the TLS-RPT result type of the failure that stopped the session (certificate-expired, ...).
	TLSVerify string `json:"tls_verify"`
	// TLSPolicy is the source of the TLS requirement: none, customer, destination, mta-sts or dane.
	TLSPolicy string `json:"tls_policy"`
}

// Trace is the whole history of a message: the message's own fields (flattened into the object), its
// recipients and every attempt in time order.
type Trace struct {
	Message
	Recipients []Recipient `json:"recipients"`
	Attempts   []Attempt   `json:"attempts"`
	// DSNFor is, for a DSN, the queue id of the message it reports on; DSNs the queue ids of the DSNs sent
	// about this message (failure and delay notices), oldest first.
	DSNFor string   `json:"dsn_for,omitempty"`
	DSNs   []string `json:"dsns"`
	// Timeline is the message's history in time order, for people: received, scanned, signed, each
	// attempt, each DSN, the outcome.
	Timeline []TimelineEvent `json:"timeline"`
}

// TimelineEvent is one step of a message's history.
type TimelineEvent struct {
	At time.Time `json:"at"`
	// Event is received, rejected, quarantined, scanned, signed, attempt, dsn or one of the final statuses
	// (delivered, bounced, expired, deleted, lost...).
	Event  string `json:"event"`
	Detail string `json:"detail"`
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

// QueuePage is one page of GET /queue: the messages, oldest first, and the totals of every message the
// filter matches (all pages).
type QueuePage struct {
	Messages []MessageSummary `json:"messages"`
	// Next, when more messages match, is the cursor of the next page: pass it as after.
	Next string `json:"next,omitempty"`
	// Total counts the matching messages and their size in bytes, every page included.
	Total QueueTotal `json:"total"`
}

// QueueTotal is the count and size of the messages a queue filter matches.
type QueueTotal struct {
	Messages int   `json:"messages"`
	Size     int64 `json:"size"`
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

// SafeCSV neutralises the CSV cells a spreadsheet would take for a formula (OWASP "CSV injection"): those
// starting with = + - @, a tab or a carriage return get a leading apostrophe. It changes cells in place and
// returns them.
func SafeCSV(cells []string) []string {
	for i, c := range cells {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			cells[i] = "'" + c
		}
	}
	return cells
}

// DKIMRecord is dkimsign.Record.
type DKIMRecord = dkimsign.Record

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

// RelayHostResolution is customer.RelayHostResolution.
type RelayHostResolution = customer.RelayHostResolution

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

// RoleOperator is authz.RoleOperator.
const RoleOperator = authz.RoleOperator

// RoleExpert is authz.RoleExpert.
const RoleExpert = authz.RoleExpert

// RoleCustomer is authz.RoleCustomer.
const RoleCustomer = authz.RoleCustomer

// Token is authz.Token.
type Token = authz.Token

// NewToken is authz.NewToken.
type NewToken = authz.NewToken

// TokenRequest is authz.TokenRequest.
type TokenRequest = authz.TokenRequest

// BulkSkipped is queue.BulkSkipped.
type BulkSkipped = queue.BulkSkipped
