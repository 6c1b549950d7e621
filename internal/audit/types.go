package audit

import "time"

// Entry is one change in the audit log.
type Entry struct {
	ID            string    `json:"id"`
	At            time.Time `json:"at"`
	ActorToken    string    `json:"actor_token"`
	ActorRole     string    `json:"actor_role"`
	ActorCustomer string    `json:"actor_customer,omitempty"`
	Action        string    `json:"action"`
	Target        string    `json:"target"`
	CustomerID    string    `json:"customer_id,omitempty"`
	Status        int       `json:"status"`
	// Before and After are JSON snapshots of what changed (null when not applicable).
	Before RawJSON `json:"before"`
	After  RawJSON `json:"after"`
}

// RawJSON is a JSON value kept as it is; empty encodes as null.
type RawJSON []byte

// MarshalJSON returns the value, or null when empty.
func (r RawJSON) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

// UnmarshalJSON keeps a copy of the value; null gives an empty RawJSON.
func (r *RawJSON) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = nil
		return nil
	}
	*r = append((*r)[:0], b...)
	return nil
}

// Query selects audit entries: every field is optional; Limit defaults to 100 (at most 1000).
type Query struct {
	Customer string
	Actor    string // token id
	Action   string // substring of the action
	Since    time.Time
	Until    time.Time
	Limit    int
}
