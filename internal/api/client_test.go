package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestClientRequestsAndErrors(t *testing.T) {
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		switch r.URL.EscapedPath() {
		case "/api/v1/customers/C%2F1/domains":
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":"domain: taken","field":"domain"}`)
		case "/api/v1/messages":
			io.WriteString(w, `[{"id":"M1","status":"held"}]`)
		default:
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "upstream down\n")
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/", Token: "em_t"}
	ctx := context.Background()

	_, err := c.AddDomain(ctx, "C/1", "x.example")
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Field != "domain" || ae.Message != "domain: taken" {
		t.Fatalf("err = %#v", err)
	}
	if got.Header.Get("Authorization") != "Bearer em_t" || got.Method != "POST" || body != `{"domain":"x.example"}` ||
		got.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("request %s %v %q", got.Method, got.Header, body)
	}

	since := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	list, err := c.SearchMessages(ctx, MessageQuery{Sender: "a@b.example", Since: since, Limit: 5, Status: "held"})
	if err != nil || len(list) != 1 || list[0].ID != "M1" {
		t.Fatalf("search %+v %v", list, err)
	}
	q := got.URL.Query()
	if q.Get("sender") != "a@b.example" || q.Get("since") != "2030-01-02T03:04:05Z" || q.Get("limit") != "5" ||
		q.Get("status") != "held" || q.Has("until") || q.Has("customer") {
		t.Fatalf("query %v", q)
	}

	err = c.DeleteMessage(ctx, "Q1")
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Message != "upstream down" {
		t.Fatalf("plain-text error: %#v", err)
	}
	if got.Method != "DELETE" || got.URL.Path != "/api/v1/queue/Q1" {
		t.Fatalf("delete request %s %s", got.Method, got.URL.Path)
	}
}
