package api

import (
	"context"
	"net/http"
	"net/url"
)

// ListIncidents lists incidents: status "open" (default), "all" or a status; customer "" for all.
func (c *Client) ListIncidents(ctx context.Context, status, customer string) ([]Incident, error) {
	v := url.Values{}
	if status != "" {
		v.Set("status", status)
	}
	if customer != "" {
		v.Set("customer", customer)
	}
	var out []Incident
	return out, c.do(ctx, http.MethodGet, "/incidents", v, nil, &out)
}

// GetIncident returns an incident with its timeline.
func (c *Client) GetIncident(ctx context.Context, id string) (*Incident, error) {
	var out Incident
	return &out, c.do(ctx, http.MethodGet, "/incidents/"+esc(id), nil, nil, &out)
}

// OpenIncident opens an incident.
func (c *Client) OpenIncident(ctx context.Context, in IncidentCreate) (*Incident, error) {
	var out Incident
	return &out, c.do(ctx, http.MethodPost, "/incidents", nil, in, &out)
}

// UpdateIncident changes an incident's priority, status or title.
func (c *Client) UpdateIncident(ctx context.Context, id string, in IncidentUpdate) (*Incident, error) {
	var out Incident
	return &out, c.do(ctx, http.MethodPatch, "/incidents/"+esc(id), nil, in, &out)
}

// CommentIncident adds a comment to an incident.
func (c *Client) CommentIncident(ctx context.Context, id string, in IncidentComment) (*Incident, error) {
	var out Incident
	return &out, c.do(ctx, http.MethodPost, "/incidents/"+esc(id)+"/comments", nil, in, &out)
}

// IncidentAction runs an action on an incident: ack, resolve, close or confirm.
func (c *Client) IncidentAction(ctx context.Context, id, action, note string) (*Incident, error) {
	var out Incident
	return &out, c.do(ctx, http.MethodPost, "/incidents/"+esc(id)+"/"+esc(action), nil, IncidentNote{Note: note}, &out)
}

// SLAReport returns the SLA report of customer ("" for every incident) for month (YYYY-MM).
func (c *Client) SLAReport(ctx context.Context, customer, month string) (*SLAReport, error) {
	v := url.Values{"month": {month}}
	if customer != "" {
		v.Set("customer", customer)
	}
	var out SLAReport
	return &out, c.do(ctx, http.MethodGet, "/sla/report", v, nil, &out)
}
