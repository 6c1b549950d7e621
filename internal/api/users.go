package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// PortalUser is a portal user as listed (never with its password hash or TOTP secret).
type PortalUser struct {
	ID         string    `json:"id"`
	Email      string    `json:"email"`
	Role       string    `json:"role"`
	CustomerID string    `json:"customer_id,omitempty"`
	TOTP       bool      `json:"totp"`
	CreatedAt  time.Time `json:"created_at"`
	// Password is set in the answer to a creation only, when the server generated it.
	Password string `json:"password,omitempty"`
}

// PortalUserRequest is the body of POST /users: role operator, expert or customer (then with customer_id);
// an empty password has the server generate one, returned once.
type PortalUserRequest struct {
	Email      string `json:"email"`
	Role       string `json:"role"`
	CustomerID string `json:"customer_id,omitempty"`
	Password   string `json:"password,omitempty"`
}

// CreateUser creates a portal user.
func (c *Client) CreateUser(ctx context.Context, in PortalUserRequest) (*PortalUser, error) {
	var out PortalUser
	return &out, c.do(ctx, http.MethodPost, "/users", nil, in, &out)
}

// ListUsers lists the portal users, of one customer when customer is not "".
func (c *Client) ListUsers(ctx context.Context, customer string) ([]PortalUser, error) {
	v := url.Values{}
	if customer != "" {
		v.Set("customer", customer)
	}
	var out []PortalUser
	return out, c.do(ctx, http.MethodGet, "/users", v, nil, &out)
}

// DeleteUser deletes a portal user and its sessions.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/users/"+esc(id), nil, nil, nil)
}
