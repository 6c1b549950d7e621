package cli

import (
	"strings"
	"testing"
	"time"
)

// TestLifecycleCommands: contacts, activation, termination and its cancellation, the SPF records and the
// audit log, in text output; usage and API errors give a non-zero exit.
func TestLifecycleCommands(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok(t, "customer", "add", "--name", "Acme SA", "--contact", "it@acme.example", "--admin", "cfo@acme.example")
	id := field(t, out, "id")
	if field(t, out, "technical_contact") != "it@acme.example" || field(t, out, "admin_contact") != "cfo@acme.example" {
		t.Fatalf("contacts:\n%s", out)
	}
	out = e.ok(t, "customer", "activate", id)
	if field(t, out, "status") != "active" || field(t, out, "activated") == "" {
		t.Fatalf("activate:\n%s", out)
	}
	if code, _, errs := e.run(t, "customer", "terminate", id); code != 2 || !strings.Contains(errs, "--at is required") {
		t.Fatalf("terminate without --at: %d %s", code, errs)
	}
	if code, _, errs := e.run(t, "customer", "terminate", id, "--at", "soon"); code != 2 || !strings.Contains(errs, "--at") {
		t.Fatalf("terminate --at soon: %d %s", code, errs)
	}
	out = e.ok(t, "customer", "terminate", id, "--at", "720h")
	at, err := time.Parse(time.RFC3339, field(t, out, "deactivate_at"))
	if field(t, out, "status") != "terminating" || err != nil || at.Before(time.Now().Add(719*time.Hour)) || at.After(time.Now().Add(721*time.Hour)) {
		t.Fatalf("terminate (%v):\n%s", err, out)
	}
	if code, _, errs := e.run(t, "customer", "update", id, "--status", "active"); code != 1 || !strings.Contains(errs, "409") {
		t.Fatalf("status change while terminating: %d %s", code, errs)
	}
	out = e.ok(t, "customer", "terminate-cancel", id)
	if field(t, out, "status") != "active" || strings.Contains(out, "deactivate_at") {
		t.Fatalf("terminate-cancel:\n%s", out)
	}
	if code, _, errs := e.run(t, "customer", "terminate-cancel", id); code != 1 || !strings.Contains(errs, "no termination to cancel") {
		t.Fatalf("second cancel: %d %s", code, errs)
	}
	out = e.ok(t, "dns", "spf")
	mustContain(t, out, "include:_spf.example.net", `_spf.example.net. IN TXT "v=spf1 ip4:127.0.0.1 ~all"`)
	out = e.ok(t, "audit", "list", "--customer", id)
	mustContain(t, out, "DELETE /api/v1/customers/{id}/termination", "POST /api/v1/customers/{id}/termination",
		"PATCH /api/v1/customers/{id}", "POST /api/v1/customers ", "operator")
	if strings.Count(out, "\n") != 5 {
		t.Fatalf("audit list: want a header and 4 entries:\n%s", out)
	}
	out = e.ok(t, "audit", "list", "--action", "termination", "--limit", "1")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "DELETE") {
		t.Fatalf("audit list --action --limit:\n%s", out)
	}
}
