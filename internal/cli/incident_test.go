package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
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
	"easymail/internal/incident"
	"easymail/internal/queue"
	"easymail/internal/sla"
	"easymail/internal/spool"
	"easymail/internal/store"
)

// TestIncidentCommands drives incident open|list|show|ack|comment|priority|resolve|confirm and sla report
// against an API server with a real incident service.
func TestIncidentCommands(t *testing.T) {
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
	svc, err := incident.New(incident.Options{DB: db, DefaultSLA: "standard", Mailer: q, From: "postmaster@relay.test",
		SLATypes: map[string]incident.SLAType{"standard": {Window: sla.DefaultWindow(), Response: map[string]time.Duration{"phone": 15 * time.Minute}}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Hostname, cfg.DataDir = "relay.example.net", t.TempDir()
	h, err := apiserver.New(apiserver.Options{DB: db, Config: &cfg, Queue: q, Incidents: svc})
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
	cust := field(t, e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example"), "id")

	var inc api.Incident
	if err := json.Unmarshal([]byte(e.ok(t, "incident", "open", "--title", "Mail stuck", "--priority", "P2", "--customer", cust,
		"--channel", "phone", "--json")), &inc); err != nil {
		t.Fatal(err)
	}
	if inc.ID != "INC-1" || inc.Priority != "P2" || inc.Channel != "phone" || inc.CustomerID != cust || inc.SLA.ResponseTarget != 900 {
		t.Fatalf("opened: %+v", inc)
	}
	if out := e.ok(t, "incident", "list"); !strings.Contains(out, "INC-1") || !strings.Contains(out, "Mail stuck") {
		t.Fatalf("list:\n%s", out)
	}
	e.ok(t, "incident", "ack", "INC-1")
	e.ok(t, "incident", "comment", "INC-1", "Looking at it", "--internal")
	e.ok(t, "incident", "priority", "INC-1", "P1")
	e.ok(t, "incident", "resolve", "INC-1", "--note", "Fixed")
	out := e.ok(t, "incident", "show", "INC-1")
	for _, want := range []string{"INC-1  P1  resolved  Mail stuck", "Looking at it", "P2 -> P1", "Fixed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("show lacks %q:\n%s", want, out)
		}
	}
	e.ok(t, "incident", "confirm", "INC-1")
	if code, _, errs := e.run(t, "incident", "resolve", "INC-1"); code == 0 || !strings.Contains(errs, "cannot become resolved") {
		t.Fatalf("resolving a confirmed incident: %d %s", code, errs)
	}
	month := inc.OpenedAt.In(sla.DefaultWindow().Location).Format("2006-01")
	if out := e.ok(t, "sla", "report", "--customer", cust, "--month", month); !strings.Contains(out, "incidents: 1  responded: 1") {
		t.Fatalf("report:\n%s", out)
	}
	recs, err := csv.NewReader(strings.NewReader(e.ok(t, "sla", "report", "--customer", cust, "--month", month, "--csv"))).ReadAll()
	if err != nil || len(recs) != 2 || recs[1][0] != "INC-1" || recs[1][1] != "P1" {
		t.Fatalf("csv: %v %v", err, recs)
	}
	if code, _, _ := e.run(t, "sla", "report", "--customer", cust); code == 0 {
		t.Fatal("a report without --month succeeded")
	}
}
