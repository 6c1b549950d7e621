package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the REST API at BaseURL (e.g. "http://127.0.0.1:8025") with Token as bearer token. HTTP is
// the transport; nil means http.DefaultClient. Every method returns *Error when the server answers with an
// error status.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// maxResponse bounds the size of a response body read by the client.
const maxResponse = 64 << 20

// do sends one request to BaseURL + "/api/v1" + path, with body encoded as JSON unless nil, and decodes the
// JSON answer into out unless out is nil.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := strings.TrimRight(c.BaseURL, "/") + "/api/v1" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
			if e.Message == "" {
				e.Message = http.StatusText(resp.StatusCode)
			}
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, u, err)
	}
	return nil
}

func esc(s string) string { return url.PathEscape(s) }

// CreateCustomer registers a customer; the answer carries its onboarding URL.
func (c *Client) CreateCustomer(ctx context.Context, in CustomerCreate) (*Customer, error) {
	var out Customer
	return &out, c.do(ctx, http.MethodPost, "/customers", nil, in, &out)
}

// ListCustomers returns the customers the token may see.
func (c *Client) ListCustomers(ctx context.Context) ([]Customer, error) {
	var out []Customer
	return out, c.do(ctx, http.MethodGet, "/customers", nil, nil, &out)
}

// GetCustomer returns one customer.
func (c *Client) GetCustomer(ctx context.Context, id string) (*Customer, error) {
	var out Customer
	return &out, c.do(ctx, http.MethodGet, "/customers/"+esc(id), nil, nil, &out)
}

// UpdateCustomer changes the fields set in in and returns the customer as it now is.
func (c *Client) UpdateCustomer(ctx context.Context, id string, in CustomerUpdate) (*Customer, error) {
	var out Customer
	return &out, c.do(ctx, http.MethodPatch, "/customers/"+esc(id), nil, in, &out)
}

// DeleteCustomer removes a customer with its domains, relay hosts and source IPs.
func (c *Client) DeleteCustomer(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/customers/"+esc(id), nil, nil, nil)
}

// CreateOnboarding returns a fresh onboarding link for a customer.
func (c *Client) CreateOnboarding(ctx context.Context, id string) (*Onboarding, error) {
	var out Onboarding
	return &out, c.do(ctx, http.MethodPost, "/customers/"+esc(id)+"/onboarding", nil, nil, &out)
}

// AddDomain registers a sending domain for a customer, without its subdomains.
func (c *Client) AddDomain(ctx context.Context, id, domain string) (*Domain, error) {
	return c.AddDomainWith(ctx, id, DomainRequest{Domain: domain})
}

// AddDomainWith registers a sending domain for a customer with the settings of in.
func (c *Client) AddDomainWith(ctx context.Context, id string, in DomainRequest) (*Domain, error) {
	var out Domain
	return &out, c.do(ctx, http.MethodPost, "/customers/"+esc(id)+"/domains", nil, in, &out)
}

// UpdateDomain changes the settings of a customer's domain.
func (c *Client) UpdateDomain(ctx context.Context, id, domain string, in DomainUpdate) (*Domain, error) {
	var out Domain
	return &out, c.do(ctx, http.MethodPatch, "/customers/"+esc(id)+"/domains/"+esc(domain), nil, in, &out)
}

// RemoveDomain removes a customer's domain.
func (c *Client) RemoveDomain(ctx context.Context, id, domain string) error {
	return c.do(ctx, http.MethodDelete, "/customers/"+esc(id)+"/domains/"+esc(domain), nil, nil, nil)
}

// AddRelayHost registers a relay host (host name or IP literal) for a customer.
func (c *Client) AddRelayHost(ctx context.Context, id, host string) (*RelayHost, error) {
	var out RelayHost
	return &out, c.do(ctx, http.MethodPost, "/customers/"+esc(id)+"/relay-hosts", nil, RelayHostRequest{Host: host}, &out)
}

// RemoveRelayHost removes a customer's relay host by its id.
func (c *Client) RemoveRelayHost(ctx context.Context, id, hostID string) error {
	return c.do(ctx, http.MethodDelete, "/customers/"+esc(id)+"/relay-hosts/"+esc(hostID), nil, nil, nil)
}

// AddSourceIP registers a source IP or CIDR for a customer.
func (c *Client) AddSourceIP(ctx context.Context, id, cidr string) (*SourceIP, error) {
	var out SourceIP
	return &out, c.do(ctx, http.MethodPost, "/customers/"+esc(id)+"/source-ips", nil, SourceIPRequest{CIDR: cidr}, &out)
}

// RemoveSourceIP removes a customer's source IP by its id.
func (c *Client) RemoveSourceIP(ctx context.Context, id, ipID string) error {
	return c.do(ctx, http.MethodDelete, "/customers/"+esc(id)+"/source-ips/"+esc(ipID), nil, nil, nil)
}

// MessageQuery selects messages in the log; empty fields do not filter.
type MessageQuery struct {
	Customer  string
	Sender    string
	Recipient string
	MessageID string
	Status    string
	Since     time.Time
	Until     time.Time
	Limit     int
	// Before is a paging cursor: only messages older than the message with this id are returned.
	Before string
	// Domain is a recipient domain; QueueID a queue id; OutboundIP and RemoteMX the outbound IP and the remote
	// MX of a recipient's last attempt; Verdict a scan verdict; BounceClass a recipient's bounce class.
	Domain      string
	QueueID     string
	OutboundIP  string
	RemoteMX    string
	Verdict     string
	BounceClass string
}

// Values returns q as URL query parameters.
func (q MessageQuery) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("customer", q.Customer)
	set("sender", q.Sender)
	set("recipient", q.Recipient)
	set("message_id", q.MessageID)
	set("status", q.Status)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	set("before", q.Before)
	set("domain", q.Domain)
	set("queue_id", q.QueueID)
	set("outbound_ip", q.OutboundIP)
	set("remote_mx", q.RemoteMX)
	set("verdict", q.Verdict)
	set("bounce_class", q.BounceClass)
	return v
}

// SearchMessages searches the message log, newest first.
func (c *Client) SearchMessages(ctx context.Context, q MessageQuery) ([]MessageSummary, error) {
	var out []MessageSummary
	return out, c.do(ctx, http.MethodGet, "/messages", q.Values(), nil, &out)
}

// Trace returns a message with its recipients and every delivery attempt.
func (c *Client) Trace(ctx context.Context, id string) (*Trace, error) {
	var out Trace
	return &out, c.do(ctx, http.MethodGet, "/messages/"+esc(id), nil, nil, &out)
}

// ListQueue returns the messages still to be delivered (and the held ones), oldest first. customer ""
// means every customer the token may see; limit 0 means the server's default. QueuePage filters and pages.
func (c *Client) ListQueue(ctx context.Context, customer string, limit int) ([]MessageSummary, error) {
	p, err := c.QueuePage(ctx, QueueFilter{Customer: customer}, limit, "")
	if err != nil {
		return nil, err
	}
	return p.Messages, nil
}

// Values returns f as the query parameters of GET /queue (All is not one: no filter is the whole queue).
func (f QueueFilter) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("customer", f.Customer)
	set("status", f.Status)
	if f.Held {
		v.Set("held", "true")
	}
	set("domain", f.Domain)
	set("recipient", f.Recipient)
	set("sender", f.Sender)
	set("older_than", f.OlderThan)
	set("younger_than", f.YoungerThan)
	return v
}

// QueuePage returns a page of the queue's messages matching f, oldest first: at most limit (0: the
// server's default), after the message with id after ("" from the start). Its Next is the after of the next
// page.
func (c *Client) QueuePage(ctx context.Context, f QueueFilter, limit int, after string) (*QueuePage, error) {
	v := f.Values()
	if limit != 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	if after != "" {
		v.Set("after", after)
	}
	var out QueuePage
	return &out, c.do(ctx, http.MethodGet, "/queue", v, nil, &out)
}

// BulkQueue runs action (retry, hold, release, delete) on every queued message f matches.
func (c *Client) BulkQueue(ctx context.Context, action string, f QueueFilter) (*BulkResult, error) {
	var out BulkResult
	return &out, c.do(ctx, http.MethodPost, "/queue/bulk", nil, BulkRequest{Action: action, Filter: f}, &out)
}

// MessageContent writes the content of a queued message to w as it is in the spool (RFC 5322, headers and
// body), as the server streams it.
func (c *Client) MessageContent(ctx context.Context, id string, w io.Writer) error {
	return c.stream(ctx, "/queue/"+esc(id)+"/content", nil, w)
}

// RetryMessage schedules the pending recipients of a queued message for delivery now.
func (c *Client) RetryMessage(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/queue/"+esc(id)+"/retry", nil, nil, nil)
}

// HoldMessage holds a queued message: it is not delivered until released.
func (c *Client) HoldMessage(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/queue/"+esc(id)+"/hold", nil, nil, nil)
}

// ReleaseMessage releases a held message.
func (c *Client) ReleaseMessage(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/queue/"+esc(id)+"/release", nil, nil, nil)
}

// DeleteMessage removes a message from the queue without delivering it.
func (c *Client) DeleteMessage(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/queue/"+esc(id), nil, nil, nil)
}

// CreateToken creates an API token; the answer holds its secret, shown this once.
func (c *Client) CreateToken(ctx context.Context, in TokenRequest) (*NewToken, error) {
	var out NewToken
	return &out, c.do(ctx, http.MethodPost, "/tokens", nil, in, &out)
}

// ListTokens lists the API tokens, revoked ones included.
func (c *Client) ListTokens(ctx context.Context) ([]Token, error) {
	var out []Token
	return out, c.do(ctx, http.MethodGet, "/tokens", nil, nil, &out)
}

// RevokeToken revokes an API token.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/tokens/"+esc(id), nil, nil, nil)
}
