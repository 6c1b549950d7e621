package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"easymail/internal/audit"
	"easymail/internal/customer"
	"easymail/internal/spfrecord"
)

// TerminationRequest is the body of POST /customers/{id}/termination: the deactivation date (RFC 3339, in
// the future).
type TerminationRequest struct {
	DeactivateAt *time.Time `json:"deactivate_at"`
}

// CustomerCheck is the answer of GET /customers/{id}/check: what the customer must set up and the live DNS
// check of each domain. Verified is true when at least one domain passes SPF, DKIM and DMARC; Activated is
// true when this check moved the customer from pending to active.
type CustomerCheck struct {
	CustomerID string          `json:"customer_id"`
	Status     customer.Status `json:"status"`
	// RelayHost and RelayPort are the smarthost to configure on the customer's MTA.
	RelayHost string `json:"relay_host"`
	RelayPort string `json:"relay_port"`
	// Senders is pass when at least one relay host or source IP is registered, else fail.
	Senders    string        `json:"senders"`
	SPFInclude string        `json:"spf_include"`
	Domains    []DomainCheck `json:"domains"`
	Verified   bool          `json:"verified"`
	Activated  bool          `json:"activated"`
	CheckedAt  time.Time     `json:"checked_at"`
}

// DomainCheck is the onboarding check of one domain. Verified is SPF pass, DKIM pass or warn and DMARC pass
// or warn; Error says why the check could not be made.
type DomainCheck struct {
	Domain   string      `json:"domain"`
	Verified bool        `json:"verified"`
	SPF      *SPFCheck   `json:"spf,omitempty"`
	DKIM     *DKIMCheck  `json:"dkim,omitempty"`
	DMARC    *DMARCCheck `json:"dmarc,omitempty"`
	Error    string      `json:"error,omitempty"`
}

// ScheduleTermination schedules the customer's deactivation.
func (c *Client) ScheduleTermination(ctx context.Context, id string, at time.Time) (*Customer, error) {
	var out Customer
	return &out, c.do(ctx, http.MethodPost, "/customers/"+esc(id)+"/termination", nil, TerminationRequest{DeactivateAt: &at}, &out)
}

// CancelTermination cancels a scheduled deactivation and restores the customer's previous status.
func (c *Client) CancelTermination(ctx context.Context, id string) (*Customer, error) {
	var out Customer
	return &out, c.do(ctx, http.MethodDelete, "/customers/"+esc(id)+"/termination", nil, nil, &out)
}

// CheckCustomer runs the onboarding checks of the customer's setup against live DNS.
func (c *Client) CheckCustomer(ctx context.Context, id string) (*CustomerCheck, error) {
	var out CustomerCheck
	return &out, c.do(ctx, http.MethodGet, "/customers/"+esc(id)+"/check", nil, nil, &out)
}

// SPFRecords returns the operator's SPF records built from every pool IP.
func (c *Client) SPFRecords(ctx context.Context) (*SPFRecords, error) {
	var out SPFRecords
	return &out, c.do(ctx, http.MethodGet, "/dns/spf", nil, nil, &out)
}

// Audit searches the audit log, newest first.
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("customer", q.Customer)
	set("actor", q.Actor)
	set("action", q.Action)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out []AuditEntry
	return out, c.do(ctx, http.MethodGet, "/audit", v, nil, &out)
}

// AuditEntry is audit.Entry.
type AuditEntry = audit.Entry

// RawJSON is audit.RawJSON.
type RawJSON = audit.RawJSON

// AuditQuery is audit.Query.
type AuditQuery = audit.Query

// SPFRecords is spfrecord.Records.
type SPFRecords = spfrecord.Records
