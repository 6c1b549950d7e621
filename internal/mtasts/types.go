package mtasts

import "time"

// CachedPolicy is a destination's MTA-STS policy (RFC 8461) as the relay fetched and keeps it
// (GET /mta-sts/policies; docs/delivery.md).
type CachedPolicy struct {
	// Domain is the policy domain; ID the id of its _mta-sts TXT record the policy was fetched for.
	Domain string `json:"domain"`
	ID     string `json:"id"`
	// Mode is enforce, testing or none; MX the policy's mx patterns; MaxAge its max_age in seconds.
	Mode   string   `json:"mode"`
	MX     []string `json:"mx"`
	MaxAge int64    `json:"max_age"`
	// FetchedAt is when it was fetched; ExpiresAt (FetchedAt + max_age) when it stops being used.
	FetchedAt time.Time `json:"fetched_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Expired reports that ExpiresAt has passed: the policy is no longer applied.
	Expired bool `json:"expired"`
}
