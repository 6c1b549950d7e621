package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/audit"
	"easymail/internal/authz"
)

// TestTerminationAndAudit schedules and cancels a termination through the API and checks the audit log:
// every successful change is there with its actor, route, target and before/after snapshots; refused
// requests are not; a new token's secret never is; operators and experts read the log, customers do not.
func TestTerminationAndAudit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	A := e.custA.ID
	if _, err := e.op.AddDomain(ctx, A, "acme.example"); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(60 * 24 * time.Hour).Truncate(time.Second).UTC()
	c, err := e.op.ScheduleTermination(ctx, A, at)
	if err != nil || c.Status != api.StatusTerminating || c.DeactivateAt == nil || !c.DeactivateAt.Equal(at) {
		t.Fatalf("schedule: %+v %v", c, err)
	}
	// The customer sees its own schedule; the status cannot be forced meanwhile.
	if own, err := e.a.GetCustomer(ctx, A); err != nil || own.DeactivateAt == nil {
		t.Fatalf("A sees %+v %v", own, err)
	}
	active := api.StatusActive
	var ae *api.Error
	if _, err := e.op.UpdateCustomer(ctx, A, api.CustomerUpdate{Status: &active}); !errors.As(err, &ae) || ae.Status != 409 || ae.Field != "status" {
		t.Fatalf("PATCH status while terminating: %v", err)
	}
	if c, err = e.op.CancelTermination(ctx, A); err != nil || c.Status != api.StatusPending || c.DeactivateAt != nil {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	nt, err := e.op.CreateToken(ctx, api.TokenRequest{Role: authz.RoleExpert, Name: "audit test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.op.RevokeToken(ctx, nt.ID); err != nil {
		t.Fatal(err)
	}
	if c, err = e.op.UpdateCustomer(ctx, A, api.CustomerUpdate{Status: &active}); err != nil || c.Status != active || c.ActivatedAt == nil {
		t.Fatalf("activate: %+v %v", c, err)
	}

	list, err := e.expert.Audit(ctx, api.AuditQuery{Customer: A})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range list {
		actions = append(actions, a.Action)
		if a.ActorRole != authz.RoleOperator || a.ActorToken == "" || a.Target == "" || a.Status < 200 || a.Status > 299 {
			t.Errorf("entry %+v", a)
		}
	}
	want := []string{"PATCH /api/v1/customers/{id}", "DELETE /api/v1/customers/{id}/termination",
		"POST /api/v1/customers/{id}/termination", "POST /api/v1/customers/{id}/domains", "POST /api/v1/customers"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit of A: %v, want %v", actions, want)
	}
	var before, after api.Customer
	sched := list[2]
	if json.Unmarshal(sched.Before, &before) != nil || json.Unmarshal(sched.After, &after) != nil ||
		before.Status != api.StatusPending || after.Status != api.StatusTerminating || after.DeactivateAt == nil {
		t.Fatalf("termination snapshots: before %s after %s", sched.Before, sched.After)
	}
	if list[4].Before != nil || !strings.Contains(string(list[4].After), `"Acme"`) {
		t.Fatalf("creation snapshots: %s / %s", list[4].Before, list[4].After)
	}
	all, err := e.op.Audit(ctx, api.AuditQuery{Action: "tokens"})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 2 || strings.Contains(string(all[len(all)-1].After), nt.Secret) || !strings.Contains(string(all[len(all)-1].After), nt.ID) {
		t.Fatalf("token entries: %+v", all)
	}
	// The refused PATCH left no entry; a customer may not read the log.
	if n := len(list); n != 5 {
		t.Fatalf("%d entries", n)
	}
	if _, err := e.a.Audit(ctx, api.AuditQuery{}); !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("customer reads the audit log: %v", err)
	}
}

// TestAuditWrapsEveryChange checks the wrapper itself, on a handler of its own: every change request that
// succeeds through endpoint() is recorded, whatever the route, and failures and reads are not. New
// endpoints are therefore audited without code of their own.
func TestAuditWrapsEveryChange(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := &server{db: e.db, cfg: e.cfg, queue: e.queue, log: slog.New(slog.DiscardHandler)}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
		writeJSON(w, http.StatusCreated, map[string]string{"made": r.PathValue("thing"), "secret": "s3cret"})
		return nil
	}
	bad := func(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
		return &api.Error{Status: 422, Message: "no", Field: "x"}
	}
	mux.Handle("POST /api/v1/widgets/{thing}", s.endpoint(operatorOnly, ok))
	mux.Handle("PUT /api/v1/widgets/{thing}", s.endpoint(operatorOnly, bad))
	mux.Handle("GET /api/v1/widgets/{thing}", s.endpoint(anyRole, ok))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, m := range []string{"POST", "PUT", "GET"} {
		req, _ := http.NewRequest(m, srv.URL+"/api/v1/widgets/w1", nil)
		req.Header.Set("Authorization", "Bearer "+e.tok["operator"])
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	list, err := audit.List(ctx, e.db, audit.Query{Action: "widgets"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Action != "POST /api/v1/widgets/{thing}" || list[0].Target != "/api/v1/widgets/w1" ||
		list[0].Status != 201 || !strings.Contains(string(list[0].After), `"made":"w1"`) || strings.Contains(string(list[0].After), "s3cret") {
		t.Fatalf("audit %+v", list)
	}
}

// TestCheckAndSPFRecords: a customer checks its own setup (no DKIM on this server: each domain reports the
// error, nothing verifies, the status stays); staff get the SPF records of the pools' IPs.
func TestCheckAndSPFRecords(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	A := e.custA.ID
	if _, err := e.op.AddDomain(ctx, A, "acme.example"); err != nil {
		t.Fatal(err)
	}
	chk, err := e.a.CheckCustomer(ctx, A)
	if err != nil {
		t.Fatal(err)
	}
	if chk.Verified || chk.Activated || chk.Status != api.StatusPending || chk.RelayHost != "relay.example.net" ||
		chk.RelayPort != "2525" || chk.Senders != "fail" || chk.SPFInclude != "include:_spf.example.net" ||
		len(chk.Domains) != 1 || chk.Domains[0].Error == "" {
		t.Fatalf("check %+v", chk)
	}
	r, err := e.expert.SPFRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "_spf.example.net" || len(r.Records) != 1 || r.Records[0].Value != "v=spf1 ip4:127.0.0.1 ip4:127.0.0.2 ~all" {
		t.Fatalf("spf %+v", r)
	}
}

// TestRefusePrivateIPs: with the operator's refusal on, private, loopback and shared ranges are refused as
// source IPs and relay hosts with a 422 naming the field; public ones and host names pass.
func TestRefusePrivateIPs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	h, err := New(Options{DB: e.db, Config: e.cfg, Queue: e.queue, RefusePrivateIPs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	op := &api.Client{BaseURL: srv.URL, Token: e.tok["operator"], HTTP: srv.Client()}
	A := e.custA.ID
	for _, cidr := range []string{"10.1.0.0/16", "192.168.1.7", "127.0.0.1", "100.64.0.1", "fd00::/64", "172.16.0.0/12"} {
		var ae *api.Error
		if _, err := op.AddSourceIP(ctx, A, cidr); !errors.As(err, &ae) || ae.Status != 422 || ae.Field != "cidr" {
			t.Errorf("source IP %s: %v", cidr, err)
		}
	}
	var ae *api.Error
	if _, err := op.AddRelayHost(ctx, A, "192.168.0.10"); !errors.As(err, &ae) || ae.Status != 422 || ae.Field != "host" {
		t.Errorf("relay host 192.168.0.10: %v", err)
	}
	if _, err := op.AddSourceIP(ctx, A, "198.51.100.0/24"); err != nil {
		t.Errorf("public source IP: %v", err)
	}
	if _, err := op.AddRelayHost(ctx, A, "mta.acme.example"); err != nil {
		t.Errorf("relay host by name: %v", err)
	}
	// Allowed by default (the test env's server).
	if _, err := e.op.AddSourceIP(ctx, e.custB.ID, "10.9.0.0/16"); err != nil {
		t.Errorf("private source IP where allowed: %v", err)
	}
}
