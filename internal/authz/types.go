package authz

import "time"

// The roles.
const (
	RoleOperator Role = "operator"
	RoleExpert   Role = "expert"
	RoleCustomer Role = "customer"
)

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
