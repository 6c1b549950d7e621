package account

import "time"

// User is a portal user as listed (never with its password hash or TOTP secret).
type User struct {
	ID         string    `json:"id"`
	Email      string    `json:"email"`
	Role       string    `json:"role"`
	CustomerID string    `json:"customer_id,omitempty"`
	TOTP       bool      `json:"totp"`
	CreatedAt  time.Time `json:"created_at"`
	// Password is set in the answer to a creation only, when the server generated it.
	Password string `json:"password,omitempty"`
}

// NewUser is the body of POST /users: role operator, expert or customer (then with customer_id);
// an empty password has the server generate one, returned once.
type NewUser struct {
	Email      string `json:"email"`
	Role       string `json:"role"`
	CustomerID string `json:"customer_id,omitempty"`
	Password   string `json:"password,omitempty"`
}
