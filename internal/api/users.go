package api

import (
	"context"
	"net/http"
	"net/url"

	"easymail/internal/portal/account"
)

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

// PortalUser is account.User.
type PortalUser = account.User

// PortalUserRequest is account.NewUser.
type PortalUserRequest = account.NewUser
