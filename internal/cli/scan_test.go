package cli

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/apiserver"
	"easymail/internal/authz"
	"easymail/internal/config"
	"easymail/internal/quarantine"
	"easymail/internal/queue"
	"easymail/internal/scan"
	"easymail/internal/spool"
	"easymail/internal/store"
)

// TestQuarantineAndScanPolicyCommands drives quarantine list|show|release|delete and scan-policy show|set
// against an API server with a real queue, spool and quarantine.
func TestQuarantineAndScanPolicyCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sp, err := spool.Open(filepath.Join(dir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	q := queue.New(queue.Options{DB: db, Spool: sp, NodeID: "n1", Hostname: "relay.test", Retry: []time.Duration{time.Minute}, MaxLifetime: time.Hour})
	qs := &quarantine.Store{DB: db, Queue: q}
	cfg := config.Default()
	cfg.Hostname, cfg.DataDir = "relay.example.net", t.TempDir()
	rules := cfg.Scan.APIRules()
	pols, err := scan.NewPolicies(db, api.ScanPolicy{SpamRejectScore: &cfg.Scan.SpamRejectScore, VirusAction: &cfg.Scan.VirusAction,
		OnFailure: &cfg.Scan.OnFailure, Rules: &rules})
	if err != nil {
		t.Fatal(err)
	}
	h, err := apiserver.New(apiserver.Options{DB: db, Config: &cfg, Queue: q, Quarantine: qs, ScanPolicies: pols})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if err := authz.Bootstrap(ctx, db, cfg.DataDir, "", nil); err != nil {
		t.Fatal(err)
	}
	tok, _ := os.ReadFile(filepath.Join(cfg.DataDir, authz.AdminTokenFile))
	e := &cliEnv{db: db, cfg: &cfg, url: srv.URL, token: strings.TrimSpace(string(tok))}

	id := field(t, e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example"), "id")
	for _, qid := range []string{"QA", "QB"} {
		msg := "From: a@acme.example\r\nSubject: Offer " + qid + "\r\nContent-Type: text/html\r\n\r\n<p>Cheap <b>pills</b></p>\r\n"
		w, _ := sp.Create(qid)
		w.Write([]byte(msg))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		env := queue.Envelope{ID: qid, CustomerID: id, Sender: "a@acme.example", Subject: "Offer " + qid,
			Recipients: []queue.Recipient{{Address: "b@dest.example"}}, Verdict: "spam"}
		if err := qs.Put(ctx, env, api.ScanReport{Verdict: "spam", Action: "quarantine", Reason: "Spam message (score 12.0)",
			Verdicts: []api.ScanVerdict{{Scanner: "rspamd", Result: "spam", Score: 12, Action: "add header"}}}, strings.NewReader(msg), int64(len(msg))); err != nil {
			t.Fatal(err)
		}
	}
	out := e.ok(t, "quarantine", "list", "--customer", id)
	mustContain(t, out, "QA", "QB", "Spam message (score 12.0)", "b@dest.example")
	out = e.ok(t, "quarantine", "show", "QA")
	mustContain(t, out, "Subject: Offer QA", "Cheap pills", "rspamd", "quarantine")
	mustContain(t, e.ok(t, "quarantine", "release", "QA"), "QA: released")
	mustContain(t, e.ok(t, "quarantine", "delete", "QB"), "QB: deleted")
	// Rows by their first cell (the id column): a customer id may contain "QA" or "QB".
	if out := e.ok(t, "quarantine", "list"); rowIndex(out, "QA") >= 0 || rowIndex(out, "QB") >= 0 {
		t.Fatalf("list after release and delete:\n%s", out)
	}
	if code, _, errs := e.run(t, "quarantine", "release", "QA"); code == 0 || !strings.Contains(errs, "not found") {
		t.Fatalf("second release: exit %d, %s", code, errs)
	}

	f := filepath.Join(t.TempDir(), "policy.json")
	os.WriteFile(f, []byte(`{"spam_quarantine_score": 8, "on_failure": "bypass"}`), 0o600)
	out = e.ok(t, "scan-policy", "set", id, f)
	mustContain(t, out, `"spam_quarantine_score": 8`, `"on_failure": "bypass"`, `"virus_action": "reject"`)
	if pols.For(id).OnFailure != "bypass" || pols.For(id).SpamQuarantine != 8 || pols.For(id).SpamReject != 15 {
		t.Fatalf("policy in force: %+v", pols.For(id))
	}
	os.WriteFile(f, []byte(`{"rules": [{"type": "body", "pattern": "(", "action": "reject", "reason": "x"}]}`), 0o600)
	if code, _, errs := e.run(t, "scan-policy", "set", id, f); code == 0 || !strings.Contains(errs, "rules[0].pattern") {
		t.Fatalf("bad rule: exit %d, %s", code, errs)
	}
	mustContain(t, e.ok(t, "scan-policy", "show", id), `"spam_quarantine_score": 8`, `"effective_rules"`, `"origin": "default"`)

	// A customer's own rule adds to the defaults; with replace_defaults it replaces them. rules shows both.
	os.WriteFile(f, []byte(`{"rules": [{"name": "scam", "type": "header", "pattern": "(?i)^subject: overdue", "action": "reject", "reason": "Scam"}]}`), 0o600)
	e.ok(t, "scan-policy", "set", id, f)
	if n := pols.For(id).Rules.Len(); n != 2 {
		t.Fatalf("%d rules in force, want the default and the customer's", n)
	}
	out = e.ok(t, "scan-policy", "rules", id)
	mustContain(t, out, "ORIGIN", "default", "executable", "customer", "scam", "(?i)^subject: overdue")
	os.WriteFile(f, []byte(`{"replace_defaults": true, "rules": [{"name": "scam", "type": "header", "pattern": "(?i)^subject: overdue", "action": "reject", "reason": "Scam"}]}`), 0o600)
	mustContain(t, e.ok(t, "scan-policy", "set", id, f), `"replace_defaults": true`)
	if out := e.ok(t, "scan-policy", "rules", id); strings.Contains(out, "executable") || !strings.Contains(out, "scam") {
		t.Fatalf("rules with replace_defaults:\n%s", out)
	}
}
