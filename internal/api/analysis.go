package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"easymail/internal/bounce"
	"easymail/internal/msglog"
	"easymail/internal/retention"
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

// Stats is msglog.Stats.
type Stats = msglog.Stats

// StatCounts is msglog.StatCounts.
type StatCounts = msglog.StatCounts

// DataSubject is retention.DataSubject.
type DataSubject = retention.DataSubject

// Erasure is retention.Erasure.
type Erasure = retention.Erasure
