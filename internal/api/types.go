// Package api is the wire form of Easymail's REST API (the JSON bodies under /api/v1) and a typed Go client
// for it, used by the command line and by tests. It knows nothing of the database or the server: the server
// fills these types, the client decodes them.
package api

import (
	"fmt"
	"strings"
	"time"
)

// Customer statuses: pending -> active -> terminating -> deactivated -> removed (docs/lifecycle.md). Only
// pending and active are set through PATCH; the others follow from the termination schedule.
const (
	StatusPending     = "pending"
	StatusActive      = "active"
	StatusTerminating = "terminating"
	StatusDeactivated = "deactivated"
	StatusRemoved     = "removed"
)

// Token roles.
const (
	RoleOperator = "operator"
	RoleExpert   = "expert"
	RoleCustomer = "customer"
)

// Customer is one business customer with everything registered for it. Its mail leaves from the IPs of
// Pool, or of FallbackPool ("" for none) when no IP of Pool is usable.
type Customer struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	ContactEmail string `json:"contact_email"`
	Pool         string `json:"pool"`
	FallbackPool string `json:"fallback_pool"`
	Status       string `json:"status"`
	// TechnicalEmail and AdminEmail are the technical and administrative contacts; each defaults to
	// ContactEmail. Termination notices go to all three (each address once).
	TechnicalEmail string `json:"technical_email"`
	AdminEmail     string `json:"admin_email"`
	// DeactivateAt is the scheduled deactivation (status terminating), DeactivatedAt when it happened,
	// RemovedAt when the customer's hosts, domains and IPs were removed after the grace period, ActivatedAt
	// when the customer first became active.
	DeactivateAt   *time.Time `json:"deactivate_at,omitempty"`
	ActivatedAt    *time.Time `json:"activated_at,omitempty"`
	DeactivatedAt  *time.Time `json:"deactivated_at,omitempty"`
	RemovedAt      *time.Time `json:"removed_at,omitempty"`
	TopologyHiding bool       `json:"topology_hiding"`
	AntiSpoofing   bool       `json:"anti_spoofing"`
	// TLSPolicy is the customer's own TLS policy for its outbound mail: may, encrypt or verify; "" follows
	// delivery.tls_policy. The strictest of it and the configured policies applies (docs/delivery.md).
	TLSPolicy string `json:"tls_policy"`
	// Unsubscribe is "delegated" when the relay adds and honours one-click unsubscription (RFC 8058) for the
	// customer's mail, "" when the customer handles its own (docs/events.md).
	Unsubscribe string      `json:"unsubscribe"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
	Domains     []Domain    `json:"domains"`
	RelayHosts  []RelayHost `json:"relay_hosts"`
	SourceIPs   []SourceIP  `json:"source_ips"`
	// OnboardingURL is set in the answer to the customer's creation only.
	OnboardingURL string `json:"onboarding_url,omitempty"`

	// RateLimits are the customer's own limits (null fields: the configured defaults).
	RateLimits RateLimits `json:"rate_limits"`
	// Held is set while the customer's outbound mail is held (suspected compromise, or an operator's hold):
	// its messages are accepted and kept, not delivered, until released or purged. HeldReason says why.
	Held       bool       `json:"held"`
	HeldReason string     `json:"held_reason,omitempty"`
	HeldAt     *time.Time `json:"held_at,omitempty"`
	// SLAType is the SLA type named by the customer's contract ("" for incidents.default_sla).
	SLAType string `json:"sla_type"`
	// PortalEnabled is whether the customer's users may log in to the portal; the operator turns it on at the
	// customer's request (off for a new customer).
	PortalEnabled bool `json:"portal_enabled"`
}

// CustomerCreate is the body of POST /customers. Pool defaults to the first configured pool; the two
// settings default to true.
type CustomerCreate struct {
	Name           string `json:"name"`
	ContactEmail   string `json:"contact_email"`
	TechnicalEmail string `json:"technical_email,omitempty"`
	AdminEmail     string `json:"admin_email,omitempty"`
	Pool           string `json:"pool,omitempty"`
	FallbackPool   string `json:"fallback_pool,omitempty"`
	TopologyHiding *bool  `json:"topology_hiding,omitempty"`
	AntiSpoofing   *bool  `json:"anti_spoofing,omitempty"`
}

// CustomerUpdate is the body of PATCH /customers/{id}: only the fields present change.
type CustomerUpdate struct {
	Name           *string `json:"name,omitempty"`
	ContactEmail   *string `json:"contact_email,omitempty"`
	TechnicalEmail *string `json:"technical_email,omitempty"`
	AdminEmail     *string `json:"admin_email,omitempty"`
	Pool           *string `json:"pool,omitempty"`
	FallbackPool   *string `json:"fallback_pool,omitempty"`
	Status         *string `json:"status,omitempty"`
	TopologyHiding *bool   `json:"topology_hiding,omitempty"`
	AntiSpoofing   *bool   `json:"anti_spoofing,omitempty"`
	// TLSPolicy sets the customer's TLS policy: may, encrypt, verify, or "" for the configured default.
	TLSPolicy *string `json:"tls_policy,omitempty"`
	// Unsubscribe sets the customer's one-click unsubscription: "delegated" or "" (none).
	Unsubscribe *string `json:"unsubscribe,omitempty"`

	// RateLimits replaces the customer's own rate limits as a whole.
	RateLimits *RateLimits `json:"rate_limits,omitempty"`
	// Held true holds the customer's new mail (an operator's hold); false lifts the hold without touching the
	// messages already held (release-held and purge-held lift it and handle them).
	Held *bool `json:"held,omitempty"`
	// SLAType names the SLA type of the customer's contract, one of incidents.sla_types ("" for the default).
	SLAType *string `json:"sla_type,omitempty"`
	// PortalEnabled opens (true) or closes (false) the portal to the customer's users.
	PortalEnabled *bool `json:"portal_enabled,omitempty"`
}

// Domain is a sending domain of a customer, in lower-case A-label form.
type Domain struct {
	Domain     string    `json:"domain"`
	CustomerID string    `json:"customer_id"`
	CreatedAt  time.Time `json:"created_at"`
	// IncludeSubdomains is whether the domain's subdomains may send too (envelope sender and header From);
	// off by default.
	IncludeSubdomains bool `json:"include_subdomains"`
	// DKIM is the DKIM public key record to publish for the domain. It is null until DKIM signing keys are
	// generated at provisioning; no record is invented meanwhile.
	DKIM *DKIMRecord `json:"dkim"`
	// DKIMKeys are all the domain's DKIM keys whose records must be published: the active ones, the next
	// ones of a rotation in progress and the replaced ones not yet retired.
	DKIMKeys []DKIMKey `json:"dkim_keys,omitempty"`
}

// DKIMRecord is a DNS TXT record carrying a DKIM public key (RFC 6376 §3.6.1).
type DKIMRecord struct {
	Selector string `json:"selector"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Value    string `json:"value"`
}

// DomainRequest is the body of POST /customers/{id}/domains.
type DomainRequest struct {
	Domain            string `json:"domain"`
	IncludeSubdomains bool   `json:"include_subdomains,omitempty"`
}

// DomainUpdate is the body of PATCH /customers/{id}/domains/{domain}: only the fields present change.
type DomainUpdate struct {
	IncludeSubdomains *bool `json:"include_subdomains,omitempty"`
}

// RelayHost is a host name or IP literal of a customer's MTA allowed to relay. The resolution fields say
// what the access table made of it at its last reload that changed them (ResolvedAt; nil before the first).
type RelayHost struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id"`
	Host       string    `json:"host"`
	CreatedAt  time.Time `json:"created_at"`
	RelayHostResolution
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
}

// RelayHostResolution is what a relay host stands for: the addresses its name resolved to (an IP literal:
// itself), each used to identify the customer or ignored, and why.
type RelayHostResolution struct {
	Addresses []RelayHostAddress `json:"addresses"`
	// ResolveError is set when the last lookup of the name failed: the addresses are the last known ones.
	ResolveError string `json:"resolve_error,omitempty"`
	// Truncated is set when the name had more addresses than are used (the first ones, in order, are).
	Truncated bool `json:"truncated,omitempty"`
}

// Reasons for ignoring an address of a relay host: each client address identifies one customer only.
const (
	// IgnoredRange: the address cannot identify a client (reserved, multicast), or is private, loopback
	// or link-local while the installation refuses those (lifecycle.refuse_private_ips).
	IgnoredRange = "range"
	// IgnoredSourceIP: the address is inside a source IP range of another customer.
	IgnoredSourceIP = "source_ip"
	// IgnoredRelayHost: the address is another customer's relay host: an IP literal, or an address of a
	// relay host name registered earlier.
	IgnoredRelayHost = "relay_host"
)

// RelayHostAddress is one address of a relay host. Used is whether a connection from it identifies the
// customer; otherwise Ignored is the reason (IgnoredRange, IgnoredSourceIP, IgnoredRelayHost) and Detail
// says more, never naming another customer.
type RelayHostAddress struct {
	Address string `json:"address"`
	Used    bool   `json:"used"`
	Ignored string `json:"ignored,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// RelayHostRequest is the body of POST /customers/{id}/relay-hosts.
type RelayHostRequest struct {
	Host string `json:"host"`
}

// SourceIP is an IP prefix of a customer allowed to relay. CIDR is normalised: a single address becomes a
// /32 or /128 and host bits are cleared (10.1.2.3/24 is stored as 10.1.2.0/24).
type SourceIP struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id"`
	CIDR       string    `json:"cidr"`
	CreatedAt  time.Time `json:"created_at"`
	// Warning, in the answer of POST /customers/{id}/source-ips only, says how the input was changed to be
	// stored: a CIDR with host bits set ("10.0.0.5/24") is stored as its network ("10.0.0.0/24").
	Warning string `json:"warning,omitempty"`
}

// SourceIPRequest is the body of POST /customers/{id}/source-ips.
type SourceIPRequest struct {
	CIDR string `json:"cidr"`
}

// Onboarding is a signed, expiring link to the customer's onboarding page.
type Onboarding struct {
	URL       string    `json:"onboarding_url"`
	ExpiresAt time.Time `json:"expires_at"`
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

// Token is an API token as listed; the secret itself is never listed.
type Token struct {
	ID         string     `json:"id"`
	Role       string     `json:"role"`
	CustomerID string     `json:"customer_id,omitempty"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// NewToken is the answer to a token's creation: the only time its secret is shown.
type NewToken struct {
	Token
	Secret string `json:"token"`
}

// TokenRequest is the body of POST /tokens. CustomerID is required for the customer role and refused for
// the others.
type TokenRequest struct {
	Role       string `json:"role"`
	CustomerID string `json:"customer_id,omitempty"`
	Name       string `json:"name,omitempty"`
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

// BulkSkipped counts the messages a bulk action left alone for one reason.
type BulkSkipped struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
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
