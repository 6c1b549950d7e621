package customer

import (
	"time"

	"easymail/internal/dkimsign"
)

// Status is where a customer is in its life: pending -> active -> terminating -> deactivated -> removed
// (docs/lifecycle.md). Only pending and active are set through PATCH; the others follow from the
// termination schedule.
type Status string

// The statuses.
const (
	StatusPending     Status = "pending"
	StatusActive      Status = "active"
	StatusTerminating Status = "terminating"
	StatusDeactivated Status = "deactivated"
	StatusRemoved     Status = "removed"
)

// Customer is one business customer with everything registered for it. Its mail leaves from the IPs of
// Pool, or of FallbackPool ("" for none) when no IP of Pool is usable.
type Customer struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	ContactEmail string `json:"contact_email"`
	Pool         string `json:"pool"`
	FallbackPool string `json:"fallback_pool"`
	Status       Status `json:"status"`
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

// Create is the body of POST /customers. Pool defaults to the first configured pool; the two
// settings default to true.
type Create struct {
	Name           string `json:"name"`
	ContactEmail   string `json:"contact_email"`
	TechnicalEmail string `json:"technical_email,omitempty"`
	AdminEmail     string `json:"admin_email,omitempty"`
	Pool           string `json:"pool,omitempty"`
	FallbackPool   string `json:"fallback_pool,omitempty"`
	TopologyHiding *bool  `json:"topology_hiding,omitempty"`
	AntiSpoofing   *bool  `json:"anti_spoofing,omitempty"`
}

// Update is the body of PATCH /customers/{id}: only the fields present change.
type Update struct {
	Name           *string `json:"name,omitempty"`
	ContactEmail   *string `json:"contact_email,omitempty"`
	TechnicalEmail *string `json:"technical_email,omitempty"`
	AdminEmail     *string `json:"admin_email,omitempty"`
	Pool           *string `json:"pool,omitempty"`
	FallbackPool   *string `json:"fallback_pool,omitempty"`
	Status         *Status `json:"status,omitempty"`
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
	DKIM *dkimsign.Record `json:"dkim"`
	// DKIMKeys are all the domain's DKIM keys whose records must be published: the active ones, the next
	// ones of a rotation in progress and the replaced ones not yet retired.
	DKIMKeys []dkimsign.Key `json:"dkim_keys,omitempty"`
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

// OnboardingLink is a signed, expiring link to the customer's onboarding page.
type OnboardingLink struct {
	URL       string    `json:"onboarding_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

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
