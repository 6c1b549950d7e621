package api

import (
	"easymail/internal/bounce"

	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// StatsQuery selects the statistics of GET /stats. Empty fields do not filter; Bucket is "hour" (the
// default) or "day"; Group is "" (one series), "customer", "domain" or "destination".
type StatsQuery struct {
	Customer    string
	Domain      string
	Destination string
	Bucket      string
	Group       string
	Since       time.Time
	Until       time.Time
}

// Stats is the answer of GET /stats: the buckets of each group, oldest first. Messages are counted in the
// bucket of their reception (a cohort): a message received at 10:59 and delivered at 11:02 is in the 10:00
// bucket.
type Stats struct {
	Bucket string       `json:"bucket"`
	Since  time.Time    `json:"since"`
	Until  time.Time    `json:"until"`
	Group  string       `json:"group,omitempty"`
	Series []StatSeries `json:"series"`
}

// StatSeries is the buckets of one group (Key is "" when there is no grouping).
type StatSeries struct {
	Key     string       `json:"key"`
	Buckets []StatBucket `json:"buckets"`
	Total   StatCounts   `json:"total"`
}

// StatBucket is one time bucket of a series.
type StatBucket struct {
	Start time.Time `json:"start"`
	StatCounts
}

// StatCounts are the figures of a bucket (or of a whole series).
type StatCounts struct {
	// Received counts the messages accepted (not rejected); Recipients their recipients.
	Received   int64 `json:"received"`
	Recipients int64 `json:"recipients"`
	// Delivered and Bounced count recipients by final outcome; Pending those still queued or deferred.
	Delivered int64 `json:"delivered"`
	Bounced   int64 `json:"bounced"`
	Pending   int64 `json:"pending"`
	// Deleted counts the recipients an operator deleted from the queue, Lost those whose content was missing
	// from the spool (their sender got a DSN): final, but not bounces.
	Deleted int64 `json:"deleted"`
	Lost    int64 `json:"lost"`
	// Deferred counts temporary failures: the attempts that were deferred.
	Deferred int64 `json:"deferred"`
	// BouncedByClass splits Bounced by bounce class (absent when nothing bounced).
	BouncedByClass map[string]int64 `json:"bounced_by_class,omitempty"`
	// Rejected counts the messages refused during the SMTP session; Quarantined those quarantined.
	Rejected    int64 `json:"rejected"`
	Quarantined int64 `json:"quarantined"`
	// Latency is the time from reception to delivery of the delivered recipients.
	Latency Latency `json:"latency"`
}

// Latency are percentiles of delivery latency, in seconds (0 when nothing was delivered).
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// DataSubject is the export of every record that names one e-mail address (GET /data-subjects/{address}).
// Messages hold the traces of the messages the address sent (envelope sender or header From) with all their
// recipients, and of the messages it received with only its own recipient entries and attempts.
type DataSubject struct {
	Address      string        `json:"address"`
	ExportedAt   time.Time     `json:"exported_at"`
	Customers    []Contact     `json:"customers"`
	Suppressions []Suppression `json:"suppressions"`
	Messages     []Trace       `json:"messages"`
}

// Contact is a customer whose contact e-mail address is the data subject's.
type Contact struct {
	CustomerID   string `json:"customer_id"`
	Name         string `json:"name"`
	ContactEmail string `json:"contact_email"`
}

// Erasure is the answer of DELETE /data-subjects/{address}: what was erased, and what was kept.
type Erasure struct {
	Address string `json:"address"`
	// MessagesDeleted counts the messages deleted whole (every recipient, and the sender, was the subject, or
	// the subject was the only recipient); MessagesBlanked those whose sender, header From and subject were
	// blanked because the subject sent them.
	MessagesDeleted int64 `json:"messages_deleted"`
	MessagesBlanked int64 `json:"messages_blanked"`
	// RecipientsDeleted and AttemptsDeleted count the subject's recipient entries and delivery attempts removed
	// from messages kept for their other recipients.
	RecipientsDeleted int64 `json:"recipients_deleted"`
	AttemptsDeleted   int64 `json:"attempts_deleted"`
	// SuppressionsDeleted counts suppression entries removed; ContactsBlanked the customers whose contact
	// e-mail was blanked (give them a new contact).
	SuppressionsDeleted int64    `json:"suppressions_deleted"`
	ContactsBlanked     []string `json:"contacts_blanked"`
	// MessagesPending are the queue ids of messages still being delivered or in quarantine, which were left
	// untouched: erase again once they are finished, or delete them from the queue (or the quarantine) first.
	MessagesPending []string `json:"messages_pending"`
}

// Values returns q as URL query parameters.
func (q StatsQuery) Values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"customer": q.Customer, "domain": q.Domain, "destination": q.Destination,
		"bucket": q.Bucket, "group": q.Group} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	return v
}

// Stats returns traffic statistics over time buckets.
func (c *Client) Stats(ctx context.Context, q StatsQuery) (*Stats, error) {
	var out Stats
	return &out, c.do(ctx, http.MethodGet, "/stats", q.Values(), nil, &out)
}

// ExportMessagesCSV writes the messages matching q as CSV to w, as the server streams them (one row per
// recipient; q.Limit 0 exports every message).
func (c *Client) ExportMessagesCSV(ctx context.Context, q MessageQuery, w io.Writer) error {
	return c.stream(ctx, "/messages.csv", q.Values(), w)
}

// ListSuppressions returns a customer's suppression list.
func (c *Client) ListSuppressions(ctx context.Context, customer string) ([]Suppression, error) {
	var out []Suppression
	return out, c.do(ctx, http.MethodGet, "/customers/"+esc(customer)+"/suppressions", nil, nil, &out)
}

// AddSuppression puts an address on a customer's suppression list (or renews it).
func (c *Client) AddSuppression(ctx context.Context, customer string, in SuppressionRequest) (*Suppression, error) {
	var out Suppression
	return &out, c.do(ctx, http.MethodPost, "/customers/"+esc(customer)+"/suppressions", nil, in, &out)
}

// RemoveSuppression takes an address off a customer's suppression list.
func (c *Client) RemoveSuppression(ctx context.Context, customer, address string) error {
	return c.do(ctx, http.MethodDelete, "/customers/"+esc(customer)+"/suppressions/"+esc(address), nil, nil, nil)
}

// DataSubject returns every record naming an e-mail address.
func (c *Client) DataSubject(ctx context.Context, address string) (*DataSubject, error) {
	var out DataSubject
	return &out, c.do(ctx, http.MethodGet, "/data-subjects/"+esc(address), nil, nil, &out)
}

// ExportDataSubject writes the export of every record naming an e-mail address (JSON) to w, as the server
// streams it.
func (c *Client) ExportDataSubject(ctx context.Context, address string, w io.Writer) error {
	return c.stream(ctx, "/data-subjects/"+esc(address), nil, w)
}

// EraseDataSubject erases every record naming an e-mail address and returns what was erased.
func (c *Client) EraseDataSubject(ctx context.Context, address string) (*Erasure, error) {
	var out Erasure
	return &out, c.do(ctx, http.MethodDelete, "/data-subjects/"+esc(address), nil, nil, &out)
}

// stream GETs BaseURL + "/api/v1" + path and copies a successful answer's body to w, however large. The
// HTTP client's overall timeout does not apply: a long export is no hung request. An error status is
// returned as *Error.
func (c *Client) stream(ctx context.Context, path string, query url.Values, w io.Writer) error {
	u := strings.TrimRight(c.BaseURL, "/") + "/api/v1" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := http.Client{}
	if c.HTTP != nil {
		hc = *c.HTTP
		hc.Timeout = 0
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
			if e.Message == "" {
				e.Message = http.StatusText(resp.StatusCode)
			}
		}
		return e
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// Suppression is bounce.Suppression.
type Suppression = bounce.Suppression

// SuppressionRequest is bounce.Request.
type SuppressionRequest = bounce.Request
