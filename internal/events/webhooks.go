package events

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"easymail/internal/fielderr"
	"easymail/internal/msgid"
	"easymail/internal/store"
)

// ErrNotFound is returned for a webhook or delivery that does not exist (or is another customer's).
var ErrNotFound = errors.New("no such webhook")

// maxWebhooks is the most webhooks one customer may have; maxURL the longest URL.
const (
	maxWebhooks = 20
	maxURL      = 2000
)

// Webhooks are the customers' webhooks and their outbox, kept in the database.
type Webhooks struct {
	DB *store.DB
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

func (w *Webhooks) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// CheckURL returns a *fielderr.Error unless u is an absolute http or https URL with a host, without user
// information, at most 2000 characters.
func CheckURL(u string) error {
	bad := func(msg string) error { return &fielderr.Error{Field: "url", Msg: msg} }
	if u == "" {
		return bad("is required")
	}
	if len(u) > maxURL {
		return bad(fmt.Sprintf("must be at most %d characters", maxURL))
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Hostname() == "" {
		return bad(fmt.Sprintf("%q is not an http:// or https:// URL", u))
	}
	if p.User != nil {
		return bad("must not hold a user name or password")
	}
	return nil
}

// Create adds a webhook for customerID and returns it with its new secret.
func (w *Webhooks) Create(ctx context.Context, customerID string, in WebhookRequest) (Webhook, error) {
	if err := CheckURL(in.URL); err != nil {
		return Webhook{}, err
	}
	if len(in.Events) == 0 {
		return Webhook{}, &fielderr.Error{Field: "events", Msg: "must name at least one of " + strings.Join(Names, ", ")}
	}
	var evs []string
	for _, e := range in.Events {
		if !Valid(e) {
			return Webhook{}, &fielderr.Error{Field: "events", Msg: fmt.Sprintf("%q is not an event (%s)", e, strings.Join(Names, ", "))}
		}
		if !slices.Contains(evs, e) {
			evs = append(evs, e)
		}
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	h := Webhook{ID: "wh_" + msgid.Random(8), CustomerID: customerID, URL: in.URL, Events: evs,
		Secret: "whsec_" + hex.EncodeToString(secret), CreatedAt: w.now().UTC().Truncate(time.Millisecond)}
	err := w.DB.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM webhooks WHERE customer_id = ?`, customerID).Scan(&n); err != nil {
			return err
		}
		if n >= maxWebhooks {
			return &fielderr.Error{Field: "url", Msg: fmt.Sprintf("a customer may have at most %d webhooks", maxWebhooks)}
		}
		_, err := tx.Exec(`INSERT INTO webhooks (id, customer_id, url, events, secret, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			h.ID, customerID, h.URL, ","+strings.Join(evs, ",")+",", h.Secret, store.Millis(h.CreatedAt))
		return err
	})
	if err != nil {
		return Webhook{}, err
	}
	return h, nil
}

// List returns customerID's webhooks, oldest first, without their secrets.
func (w *Webhooks) List(ctx context.Context, customerID string) ([]Webhook, error) {
	rows, err := w.DB.R.QueryContext(ctx, `SELECT id, customer_id, url, events, created_at FROM webhooks WHERE customer_id = ?
		ORDER BY created_at, id`, customerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Webhook{}
	for rows.Next() {
		var h Webhook
		var evs string
		var created int64
		if err := rows.Scan(&h.ID, &h.CustomerID, &h.URL, &evs, &created); err != nil {
			return nil, err
		}
		h.Events = strings.Split(strings.Trim(evs, ","), ",")
		h.CreatedAt = store.Time(created)
		out = append(out, h)
	}
	return out, rows.Err()
}

// Delete removes customerID's webhook id with its outbox rows; ErrNotFound when the customer has no such
// webhook.
func (w *Webhooks) Delete(ctx context.Context, customerID, id string) error {
	return w.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM webhooks WHERE id = ? AND customer_id = ?`, id, customerID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// Dead returns customerID's dead-lettered deliveries, newest first, at most limit (0: 100).
func (w *Webhooks) Dead(ctx context.Context, customerID string, limit int) ([]WebhookDelivery, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := w.DB.R.QueryContext(ctx, `SELECT id, webhook_id, customer_id, event, event_id, status, attempts, last_error,
		created_at, payload FROM event_outbox WHERE customer_id = ? AND status = 'dead' ORDER BY id DESC LIMIT ?`, customerID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []WebhookDelivery{}
	for rows.Next() {
		var d WebhookDelivery
		var created int64
		var payload string
		if err := rows.Scan(&d.ID, &d.WebhookID, &d.CustomerID, &d.Event, &d.EventID, &d.Status, &d.Attempts, &d.LastError,
			&created, &payload); err != nil {
			return nil, err
		}
		d.CreatedAt, d.Payload = store.Time(created), []byte(payload)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Redeliver makes customerID's dead-lettered delivery id due now with fresh attempts; ErrNotFound when the
// customer has no such dead delivery.
func (w *Webhooks) Redeliver(ctx context.Context, customerID string, id int64) error {
	return w.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE event_outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, done_at = NULL
			WHERE id = ? AND customer_id = ? AND status = 'dead'`, store.Millis(w.now()), id, customerID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}
