package dkimsign

import "time"

// DKIM key algorithms.
const (
	RSA     = "rsa"
	Ed25519 = "ed25519"
)

// DKIM key states. A domain signs with its active keys; a pending key is the next one of a rotation, waiting
// for its DNS record; a retiring key was replaced and stays published until RetireAt, for the messages it
// signed that are still on their way; a retired key is no longer used at all and its record may be removed.
const (
	StatePending  = "pending"
	StateActive   = "active"
	StateRetiring = "retiring"
	StateRetired  = "retired"
)

// Key is one DKIM key of a domain, with the DNS record that publishes its public key. The private key
// never leaves the server.
type Key struct {
	Selector    string     `json:"selector"`
	Algorithm   string     `json:"algorithm"`
	State       string     `json:"state"`
	Record      Record     `json:"record"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	RetireAt    *time.Time `json:"retire_at,omitempty"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
	// VerifiedAt is the last time the published record was seen to match the key.
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
}

// DomainDKIM is a domain's DKIM keys, newest first, retired ones included.
type DomainDKIM struct {
	Domain string `json:"domain"`
	Keys   []Key  `json:"keys"`
}

// Record is a DNS TXT record carrying a DKIM public key (RFC 6376 §3.6.1).
type Record struct {
	Selector string `json:"selector"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Value    string `json:"value"`
}
