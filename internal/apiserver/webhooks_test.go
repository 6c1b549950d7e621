package apiserver

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/store"
)

// TestWebhooksAreTenantScoped: a customer manages its own webhooks; with another customer's ids it reads
// nothing (404), may change nothing (403 under the other's customer id, 404 for the other's webhook or
// delivery id under its own) and changes nothing; an expert reads but may not
// change; the secret is shown once; bad input is 422 naming the field.
func TestWebhooksAreTenantScoped(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	A, B := e.custA.ID, e.custB.ID
	hb, err := e.b.CreateWebhook(ctx, B, api.WebhookRequest{URL: "https://hooks.bolt.example/in", Events: []string{"delivered", "bounced"}})
	if err != nil {
		t.Fatal(err)
	}
	if hb.ID == "" || len(hb.Secret) < 32 || hb.CustomerID != B {
		t.Fatalf("created %+v", hb)
	}
	ha, err := e.a.CreateWebhook(ctx, A, api.WebhookRequest{URL: "http://hooks.acme.example/", Events: []string{"complained"}})
	if err != nil {
		t.Fatal(err)
	}
	// A dead delivery of B's webhook.
	var deadID int64
	err = e.db.Tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`INSERT INTO event_outbox (webhook_id, customer_id, event_id, event, payload, status, attempts,
			next_attempt_at, last_error, created_at) VALUES (?, ?, 'ev_1', 'delivered', '{"event":"delivered"}', 'dead', 12, 0,
			'answered 500', ?)`, hb.ID, B, store.Millis(time.Now()))
		if err != nil {
			return err
		}
		deadID, err = r.LastInsertId()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	did := strconv.FormatInt(deadID, 10)

	for _, c := range []struct {
		who, method, path, body string
		status                  int
	}{
		{"A", "GET", "/api/v1/customers/" + B + "/webhooks", "", 404},
		{"A", "POST", "/api/v1/customers/" + B + "/webhooks", `{"url":"https://evil.example/","events":["delivered"]}`, 403},
		{"A", "DELETE", "/api/v1/customers/" + B + "/webhooks/" + hb.ID, "", 403},
		{"A", "DELETE", "/api/v1/customers/" + A + "/webhooks/" + hb.ID, "", 404}, // B's webhook under A's id
		{"A", "GET", "/api/v1/customers/" + B + "/webhooks/dead", "", 404},
		{"A", "POST", "/api/v1/customers/" + B + "/webhooks/dead/" + did + "/redeliver", "", 403},
		{"A", "POST", "/api/v1/customers/" + A + "/webhooks/dead/" + did + "/redeliver", "", 404}, // B's delivery
		{"A", "GET", "/api/v1/events/stream", "", 403},
		{"expert", "POST", "/api/v1/customers/" + A + "/webhooks", `{"url":"https://x.example/","events":["delivered"]}`, 403},
		{"expert", "GET", "/api/v1/customers/" + A + "/webhooks", "", 200},
		{"A", "POST", "/api/v1/customers/" + A + "/webhooks", `{"url":"ftp://x.example/","events":["delivered"]}`, 422},
		{"A", "POST", "/api/v1/customers/" + A + "/webhooks", `{"url":"https://x.example/","events":["opened"]}`, 422},
		{"A", "POST", "/api/v1/customers/" + A + "/webhooks", `{"url":"https://x.example/","events":[]}`, 422},
		{"A", "POST", "/api/v1/customers/" + A + "/webhooks", `{"url":"https://u:p@x.example/","events":["bounced"]}`, 422},
	} {
		st, ae, _ := e.call(t, c.who, c.method, c.path, c.body)
		if st != c.status {
			t.Errorf("%s %s %s: status %d (%s), want %d", c.who, c.method, c.path, st, ae.Message, c.status)
		}
		if st == 422 && ae.Field == "" {
			t.Errorf("%s %s: 422 without a field: %s", c.method, c.path, ae.Message)
		}
	}
	// B's data is unchanged: its webhook and dead delivery are there, no secret in the list.
	list, err := e.b.ListWebhooks(ctx, B)
	if err != nil || len(list) != 1 || list[0].ID != hb.ID || list[0].Secret != "" {
		t.Fatalf("B's webhooks %+v %v", list, err)
	}
	dead, err := e.b.DeadWebhookDeliveries(ctx, B)
	if err != nil || len(dead) != 1 || dead[0].ID != deadID || dead[0].Status != "dead" {
		t.Fatalf("B's dead deliveries %+v %v", dead, err)
	}
	// A's own: listed, deleted; B redelivers its own.
	if list, _ := e.a.ListWebhooks(ctx, A); len(list) != 1 || list[0].ID != ha.ID {
		t.Fatalf("A's webhooks %+v", list)
	}
	if err := e.a.DeleteWebhook(ctx, A, ha.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.a.DeleteWebhook(ctx, A, ha.ID); apiStatus(err) != http.StatusNotFound {
		t.Fatalf("second delete: %v", err)
	}
	if err := e.b.RedeliverWebhook(ctx, B, deadID); err != nil {
		t.Fatal(err)
	}
	if dead, _ := e.b.DeadWebhookDeliveries(ctx, B); len(dead) != 0 {
		t.Fatalf("after redeliver: %+v", dead)
	}
}
