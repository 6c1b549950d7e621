package apiserver

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
)

func wantAPIError(t *testing.T, err error, status int, field string) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != status || ae.Field != field {
		t.Fatalf("got %v, want HTTP %d on field %q", err, status, field)
	}
}

func TestSearchFiltersAndCSV(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	at := time.Date(2030, 5, 1, 8, 0, 0, 0, time.UTC)
	e.addMessage(t, "M1", e.custA.ID, "alice@acme.example", "delivered", "delivered", at, "bob@gmail.example", "carol@other.example")
	e.addMessage(t, "M2", e.custA.ID, "alice@acme.example", "deferred", "deferred", at.Add(time.Minute), "dave@other.example")
	e.addMessage(t, "M3", e.custB.ID, "bert@bolt.example", "delivered", "delivered", at.Add(2*time.Minute), "=HYPERLINK@gmail.example")

	l, err := e.op.SearchMessages(ctx, api.MessageQuery{Domain: "gmail.example"})
	if err != nil || len(l) != 2 || l[0].ID != "M3" || l[1].ID != "M1" {
		t.Fatalf("domain: %+v %v", l, err)
	}
	if l, err = e.op.SearchMessages(ctx, api.MessageQuery{QueueID: "M2", Status: "deferred", Recipient: "other.example"}); err != nil || len(l) != 1 {
		t.Fatalf("queue id and MX: %+v %v", l, err)
	}
	if l, err = e.a.SearchMessages(ctx, api.MessageQuery{Domain: "gmail.example"}); err != nil || len(l) != 1 || l[0].ID != "M1" {
		t.Fatalf("customer scope: %+v %v", l, err)
	}
	_, err = e.op.SearchMessages(ctx, api.MessageQuery{BounceClass: "nope"})
	wantAPIError(t, err, http.StatusUnprocessableEntity, "bounce_class")
	_, err = e.op.SearchMessages(ctx, api.MessageQuery{OutboundIP: "999.1.1.1"})
	wantAPIError(t, err, http.StatusUnprocessableEntity, "outbound_ip")

	var buf bytes.Buffer
	if err := e.op.ExportMessagesCSV(ctx, api.MessageQuery{}, &buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// Header, M3 (1 recipient), M2 (1), M1 (2).
	if len(recs) != 5 || recs[0][0] != "queue_id" || recs[1][0] != "M3" || recs[4][0] != "M1" {
		t.Fatalf("csv %v", recs)
	}
	if recs[1][11] != "'=HYPERLINK@gmail.example" {
		t.Fatalf("formula cell not neutralised: %q", recs[1][11])
	}
	// A customer exports its own messages only; another's customer id gives the header alone. (Queue ids are
	// compared by column: the rows also hold random customer ids.)
	buf.Reset()
	if err := e.a.ExportMessagesCSV(ctx, api.MessageQuery{}, &buf); err != nil {
		t.Fatal(err)
	}
	recs, err = csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil || len(recs) != 4 {
		t.Fatalf("customer export %v:\n%s", err, buf.String())
	}
	for _, r := range recs[1:] {
		if r[0] != "M1" && r[0] != "M2" {
			t.Fatalf("customer export has %s, not its own:\n%s", r[0], buf.String())
		}
	}
	buf.Reset()
	if err := e.a.ExportMessagesCSV(ctx, api.MessageQuery{Customer: e.custB.ID}, &buf); err != nil || strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("other customer's export %v:\n%s", err, buf.String())
	}

	status, _, body := e.call(t, "operator", "GET", "/api/v1/messages?format=csv&domain=other.example&limit=1", "")
	if status != 200 || !strings.HasPrefix(string(body), "queue_id,") || strings.Count(string(body), "\n") != 2 {
		t.Fatalf("format=csv: %d %s", status, body)
	}
	for _, c := range []struct {
		path, field string
		status      int
	}{
		{"/api/v1/messages?format=xml", "format", 400},
		{"/api/v1/messages.csv?format=json", "format", 400},
		{"/api/v1/messages.csv?limit=0", "limit", 422},
		{"/api/v1/messages.csv?limit=x", "limit", 400},
		{"/api/v1/messages.csv?colour=red", "colour", 400},
		{"/api/v1/messages.csv?status=vanished", "status", 422},
	} {
		status, ae, _ := e.call(t, "operator", "GET", c.path, "")
		if status != c.status || ae.Field != c.field {
			t.Errorf("%s: %d %+v, want %d on %s", c.path, status, ae, c.status, c.field)
		}
	}
}

func TestStatsEndpoint(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	at := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	e.addMessage(t, "M1", e.custA.ID, "alice@acme.example", "delivered", "delivered", at.Add(time.Minute), "bob@gmail.example")
	e.addMessage(t, "M2", e.custB.ID, "bert@bolt.example", "deferred", "deferred", at.Add(2*time.Minute), "x@gmail.example", "y@yahoo.example")

	s, err := e.op.Stats(ctx, api.StatsQuery{Group: "customer"})
	if err != nil {
		t.Fatal(err)
	}
	// The last 24 hours, widened to whole hours.
	if n := len(s.Series[0].Buckets); s.Bucket != "hour" || len(s.Series) != 2 || n < 24 || n > 25 {
		t.Fatalf("stats: %s buckets, %d series of %d", s.Bucket, len(s.Series), n)
	}
	for _, sr := range s.Series {
		if sr.Total.Received != 1 {
			t.Fatalf("series %s: %+v", sr.Key, sr.Total)
		}
	}
	// A customer sees itself only, and nothing of another.
	s, err = e.a.Stats(ctx, api.StatsQuery{Group: "customer"})
	if err != nil || len(s.Series) != 1 || s.Series[0].Key != e.custA.ID {
		t.Fatalf("customer stats %+v %v", s, err)
	}
	s, err = e.a.Stats(ctx, api.StatsQuery{Customer: e.custB.ID})
	if err != nil || s.Series[0].Total.Received != 0 {
		t.Fatalf("other customer's stats %+v %v", s, err)
	}
	s, err = e.expert.Stats(ctx, api.StatsQuery{Destination: "yahoo.example", Bucket: "day"})
	if err != nil || s.Series[0].Total.Recipients != 1 || s.Series[0].Total.Pending != 1 {
		t.Fatalf("destination stats %+v %v", s, err)
	}
	_, err = e.op.Stats(ctx, api.StatsQuery{Bucket: "week"})
	wantAPIError(t, err, http.StatusUnprocessableEntity, "bucket")
	_, err = e.op.Stats(ctx, api.StatsQuery{Group: "ip"})
	wantAPIError(t, err, http.StatusUnprocessableEntity, "group")
	if status, ae, _ := e.call(t, "operator", "GET", "/api/v1/stats?since=yesterday", ""); status != 400 || ae.Field != "since" {
		t.Fatalf("bad since: %d %+v", status, ae)
	}
}

func TestSuppressionEndpoints(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a := e.custA.ID
	s, err := e.op.AddSuppression(ctx, a, api.SuppressionRequest{Address: "Bob@Gmail.Example", Reason: "asked us"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Address != "bob@gmail.example" || s.Source != "operator" || s.ExpiresAt.Sub(s.CreatedAt) != e.cfg.Suppression.TTL {
		t.Fatalf("added %+v", s)
	}
	until := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Millisecond)
	if s, err = e.op.AddSuppression(ctx, a, api.SuppressionRequest{Address: "carol@gmail.example", ExpiresAt: &until}); err != nil ||
		!s.ExpiresAt.Equal(until) {
		t.Fatalf("with expiry: %+v %v", s, err)
	}
	list, err := e.a.ListSuppressions(ctx, a)
	if err != nil || len(list) != 2 || list[0].Address != "bob@gmail.example" {
		t.Fatalf("customer's own list: %+v %v", list, err)
	}
	_, err = e.b.ListSuppressions(ctx, a)
	wantAPIError(t, err, http.StatusNotFound, "")
	_, err = e.op.ListSuppressions(ctx, "NOSUCH")
	wantAPIError(t, err, http.StatusNotFound, "")
	_, err = e.a.AddSuppression(ctx, a, api.SuppressionRequest{Address: "x@y.example"})
	wantAPIError(t, err, http.StatusForbidden, "")
	_, err = e.expert.AddSuppression(ctx, a, api.SuppressionRequest{Address: "x@y.example"})
	wantAPIError(t, err, http.StatusForbidden, "")
	_, err = e.op.AddSuppression(ctx, a, api.SuppressionRequest{Address: "not an address"})
	wantAPIError(t, err, http.StatusUnprocessableEntity, "address")
	past := time.Now().Add(-time.Hour)
	_, err = e.op.AddSuppression(ctx, a, api.SuppressionRequest{Address: "x@y.example", ExpiresAt: &past})
	wantAPIError(t, err, http.StatusUnprocessableEntity, "expires_at")
	if status, ae, _ := e.call(t, "operator", "POST", "/api/v1/customers/"+a+"/suppressions", `{"address": 5}`); status != 400 || ae.Field != "address" {
		t.Fatalf("wrong type: %d %+v", status, ae)
	}

	if err := e.op.RemoveSuppression(ctx, a, "BOB@gmail.example"); err != nil {
		t.Fatal(err)
	}
	err = e.op.RemoveSuppression(ctx, a, "bob@gmail.example")
	wantAPIError(t, err, http.StatusNotFound, "address")
	if list, _ = e.op.ListSuppressions(ctx, a); len(list) != 1 || list[0].Address != "carol@gmail.example" {
		t.Fatalf("after remove: %+v", list)
	}
	if !strings.Contains(e.logs.String(), "suppression: added") {
		t.Fatal("no log line for an added suppression")
	}
}

func TestDataSubjectEndpoints(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	at := time.Date(2030, 5, 1, 8, 0, 0, 0, time.UTC)
	e.addMessage(t, "M1", e.custA.ID, "alice@acme.example", "delivered", "delivered", at, "bob@gmail.example")
	e.addMessage(t, "M2", e.custA.ID, "carol@acme.example", "delivered", "delivered", at, "bob@gmail.example", "dave@gmail.example")
	if _, err := e.op.AddSuppression(ctx, e.custB.ID, api.SuppressionRequest{Address: "bob@gmail.example"}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []*api.Client{e.expert, e.a} {
		_, err := c.DataSubject(ctx, "bob@gmail.example")
		wantAPIError(t, err, http.StatusForbidden, "")
		_, err = c.EraseDataSubject(ctx, "bob@gmail.example")
		wantAPIError(t, err, http.StatusForbidden, "")
	}
	d, err := e.op.DataSubject(ctx, "Bob@gmail.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Messages) != 2 || len(d.Suppressions) != 1 || len(d.Messages[1].Recipients) != 1 {
		t.Fatalf("export %+v", d)
	}
	var buf bytes.Buffer
	if err := e.op.ExportDataSubject(ctx, "it@acme.example", &buf); err != nil {
		t.Fatal(err)
	}
	var contact api.DataSubject
	if err := json.Unmarshal(buf.Bytes(), &contact); err != nil || len(contact.Customers) != 1 || contact.Customers[0].CustomerID != e.custA.ID {
		t.Fatalf("contact export %+v %v", contact, err)
	}
	_, err = e.op.DataSubject(ctx, "no-at-sign")
	wantAPIError(t, err, http.StatusUnprocessableEntity, "address")

	er, err := e.op.EraseDataSubject(ctx, "bob@gmail.example")
	if err != nil {
		t.Fatal(err)
	}
	if er.MessagesDeleted != 1 || er.RecipientsDeleted != 1 || er.SuppressionsDeleted != 1 {
		t.Fatalf("erasure %+v", er)
	}
	if d, err = e.op.DataSubject(ctx, "bob@gmail.example"); err != nil || len(d.Messages)+len(d.Suppressions) != 0 {
		t.Fatalf("after erasure %+v %v", d, err)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "data subject: erased") || !strings.Contains(logs, "requested_by=\"operator token ") ||
		strings.Contains(logs, "bob@gmail.example") {
		t.Fatalf("audit log:\n%s", logs)
	}
}
