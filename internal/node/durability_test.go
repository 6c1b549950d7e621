package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/cli"
	"easymail/internal/config"
	"easymail/internal/datadir"
	"easymail/internal/testkit"
	"easymail/internal/testkit/testnode"
)

// spoolFile is the path of message id's content in the spool of data directory dir.
func spoolFile(dir, id string) string { return filepath.Join(dir, "spool", id) }

func mustExist(t *testing.T, path, what string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// queueOne sends one message from alice@acme.test to bob@dest.test and returns its queue id.
func queueOne(t *testing.T, n *testnode.Node, subject string) string {
	t.Helper()
	reply, err := send(t, n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", subject))
	if err != nil {
		t.Fatal(err)
	}
	return queueID(t, reply)
}

// TestNodeIDBelongsToTheDataDir: a data directory keeps the node id it was first started with. Started again
// under another id (the host was renamed and node_id follows it), the node once swept the spool files of
// every queued message while the API still showed them queued; now it refuses to start, saying how to keep
// or change the id, and the mail is still there. `easymail rename-node` moves the queue to the new id, and
// the node then delivers it.
func TestNodeIDBelongsToTheDataDir(t *testing.T) {
	dns := testkit.NewDNS(t)
	mxp := testkit.ReserveMXPort(t)
	dir := t.TempDir()
	named := func(id string) func(*config.Config) { return func(c *config.Config) { c.NodeID = id } }
	n := testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), DataDir: dir, Configure: named("vm-old")})
	n.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	// No MX listening yet: the message waits in the queue.
	dns.AddMX("dest.test", "mx.dest.test", 10)
	dns.AddA("mx.dest.test", "127.0.0.11")
	id := queueOne(t, n, "renamed host")
	n.Stop(t)
	if b, err := os.ReadFile(filepath.Join(dir, datadir.NodeIDFile)); err != nil || string(b) != "vm-old\n" {
		t.Fatalf("node-id file %q (%v), want the node id written at the first start", b, err)
	}

	_, err := testnode.StartErr(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), DataDir: dir, Configure: named("vm-new")})
	if !errors.Is(err, datadir.ErrNodeIDChanged) {
		t.Fatalf("start under another node id: %v, want a refusal", err)
	}
	for _, want := range []string{dir, `"vm-old"`, `"vm-new"`, "node_id: vm-old", "easymail rename-node"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	mustExist(t, spoolFile(dir, id), "the queued message's content after the refused start")

	// The rename, as an operator runs it: the same configuration file, with the new id.
	cfgPath := filepath.Join(t.TempDir(), "easymail.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("data_dir: %s\nnode_id: vm-new\n", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if code := cli.Main(context.Background(), []string{"rename-node", "--config", cfgPath}, &out, &errs); code != 0 ||
		!strings.Contains(out.String(), `now belongs to node "vm-new" (was vm-old)`) {
		t.Fatalf("rename-node: exit %d\n%s%s", code, out.String(), errs.String())
	}
	mx := mxp.NewMX(t, "127.0.0.11")
	testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), DataDir: dir, Configure: named("vm-new")})
	got := mx.WaitMessages(t, 1, 20*time.Second)
	if !strings.Contains(string(got[0].Data), "Subject: renamed host") {
		t.Fatalf("delivered after the rename:\n%s", got[0].Data)
	}
}

// TestSecondNodeOnTheDataDirIsRefused: a second node on a data directory in use (other ports) refuses to
// start, naming the directory and the holder's pid, and the first one's queue is untouched.
func TestSecondNodeOnTheDataDirIsRefused(t *testing.T) {
	dns := testkit.NewDNS(t)
	mxp := testkit.ReserveMXPort(t)
	dir := t.TempDir()
	first := testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), DataDir: dir})
	first.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	dns.AddMX("dest.test", "mx.dest.test", 10)
	dns.AddA("mx.dest.test", "127.0.0.11")
	id := queueOne(t, first, "first node's")

	_, err := testnode.StartErr(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), DataDir: dir,
		Configure: func(c *config.Config) { c.NodeID = "another" }})
	if !errors.Is(err, datadir.ErrLocked) {
		t.Fatalf("second node on the data dir: %v, want a refusal", err)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("refusal %q names neither the data dir nor the holder's pid", err)
	}
	mustExist(t, spoolFile(dir, id), "the first node's queued message after the refused start")
	mx := mxp.NewMX(t, "127.0.0.11")
	mx.WaitMessages(t, 1, 20*time.Second)
}

// metric returns the value of an unlabelled metric on the node's /metrics, "" when absent.
func metric(t *testing.T, n *testnode.Node, name string) string {
	t.Helper()
	for _, l := range strings.Split(metricsText(t, n), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestLostContentGetsADSN: a queued message whose content is gone from the spool (found when it is due, or at
// start) is closed with status lost, not bounced, and its sender gets a DSN, with an ERROR in the log and the
// easymail_queue_lost_total metric. It was closed as bounced, silently.
func TestLostContentGetsADSN(t *testing.T) {
	dns := testkit.NewDNS(t)
	mxp := testkit.ReserveMXPort(t)
	dir := t.TempDir()
	log := &testkit.SyncBuffer{}
	opts := testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), DataDir: dir, Log: log,
		Configure: func(c *config.Config) { c.Delivery.Retry = []time.Duration{time.Hour} }}
	n := testnode.Start(t, opts)
	n.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	e := &env{n: n, dns: dns, mxp: mxp}
	dest := e.mx(t, "dest.test", 11)
	senderMX := e.mx(t, "acme.test", 12)
	dest.FailNext(2, 451, [3]int{4, 3, 0}, "busy")
	atDelivery := queueOne(t, n, "lost at delivery")
	atStart := queueOne(t, n, "lost at start")
	e.waitStatus(t, atDelivery, "deferred")
	e.waitStatus(t, atStart, "deferred")

	// Found when due.
	if err := os.Remove(spoolFile(dir, atDelivery)); err != nil {
		t.Fatal(err)
	}
	n.API(t, "POST", "/queue/"+atDelivery+"/retry", nil, 200, nil)
	e.waitStatus(t, atDelivery, "lost")
	reports := waitDSN(t, senderMX, 1)
	if r := reports[0]; r.QueueID != atDelivery || len(r.Recipients) != 1 || r.Recipients[0].Action != "failed" ||
		r.Recipients[0].Status != "5.3.0" {
		t.Fatalf("DSN for the lost message: %+v", r)
	}
	if v := metric(t, n, "easymail_queue_lost_total"); v != "1" {
		t.Fatalf("easymail_queue_lost_total = %q, want 1", v)
	}
	if !strings.Contains(log.String(), "level=ERROR msg=\"queue: an accepted message's content is missing from the spool; closed as lost\" queue_id="+atDelivery) {
		t.Fatalf("no ERROR for the lost message in the log:\n%s", log)
	}

	// Found at start.
	n.Stop(t)
	if err := os.Remove(spoolFile(dir, atStart)); err != nil {
		t.Fatal(err)
	}
	n = testnode.Start(t, opts)
	e.n = n
	e.waitStatus(t, atStart, "lost")
	waitDSN(t, senderMX, 2)
	if v := metric(t, n, "easymail_queue_lost_total"); v != "1" {
		t.Fatalf("easymail_queue_lost_total after the restart = %q, want 1", v)
	}
	var st api.Stats
	n.API(t, "GET", "/stats", nil, 200, &st)
	if tot := st.Series[0].Total; tot.Lost != 2 || tot.Bounced != 0 {
		t.Fatalf("stats: lost %d, bounced %d; want 2 lost, no bounce", tot.Lost, tot.Bounced)
	}
}

// TestDeletedIsNotABounce: a message deleted from the queue by an operator has status deleted, counted as
// deleted in the statistics and out of the bounce figures and of the domain's bounce rate (it counted as a
// bounce).
func TestDeletedIsNotABounce(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Delivery.Retry = []time.Duration{time.Hour} })
	mx := e.mx(t, "dest.test", 11)
	mx.FailNext(1, 451, [3]int{4, 3, 0}, "busy")
	id := queueOne(t, e.n, "delete me")
	e.waitStatus(t, id, "deferred")
	e.n.API(t, "DELETE", "/queue/"+id, nil, 204, nil)
	tr := e.waitStatus(t, id, "deleted")
	if tr.Recipients[0].Status != "deleted" {
		t.Fatalf("recipient %+v, want deleted", tr.Recipients[0])
	}
	var found []api.MessageSummary
	e.n.API(t, "GET", "/messages?status=deleted", nil, 200, &found)
	if len(found) != 1 || found[0].ID != id {
		t.Fatalf("search by status deleted: %+v", found)
	}
	var st api.Stats
	e.n.API(t, "GET", "/stats", nil, 200, &st)
	if tot := st.Series[0].Total; tot.Deleted != 1 || tot.Bounced != 0 || len(tot.BouncedByClass) != 0 {
		t.Fatalf("stats: deleted %d, bounced %d %v; want 1 deleted, no bounce", tot.Deleted, tot.Bounced, tot.BouncedByClass)
	}
	var rd api.Readiness
	e.n.API(t, "GET", "/customers/"+e.custID+"/domains/acme.test/readiness", nil, 200, &rd)
	if rd.Rates.Bounced != 0 || rd.Rates.FinalRecipients != 0 {
		t.Fatalf("readiness rates %+v: a deleted message counted in the bounce rate", rd.Rates)
	}
}

// TestErasureKeepsQuarantinedMessages: a quarantined message was accepted with 250 and is pending. A
// data-subject erasure deleted its rows and left its content in the spool; now it is kept whole (rows and
// content) and listed in messages_pending, and once it is deleted from the quarantine the erasure removes it.
func TestErasureKeepsQuarantinedMessages(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Scan.Rules = append(c.Scan.Rules, config.ContentRule{Name: "review", Type: api.RuleHeader,
			Pattern: "^Subject: review me$", Action: api.ActionQuarantine, Reason: "held for review"})
	})
	e.mx(t, "dest.test", 11)
	id := queueOne(t, e.n, "review me")
	e.waitStatus(t, id, "quarantined")
	dir := e.n.Config.DataDir

	var er api.Erasure
	e.n.API(t, "DELETE", "/data-subjects/bob@dest.test", nil, 200, &er)
	if er.MessagesDeleted != 0 || len(er.MessagesPending) != 1 || er.MessagesPending[0] != id {
		t.Fatalf("erasure %+v, want the quarantined message kept and listed pending", er)
	}
	e.waitStatus(t, id, "quarantined")
	e.n.API(t, "GET", "/quarantine/"+id, nil, 200, nil)
	mustExist(t, spoolFile(dir, id), "the quarantined message's content after the erasure")

	e.n.API(t, "DELETE", "/quarantine/"+id, nil, 200, nil)
	e.n.API(t, "DELETE", "/data-subjects/bob@dest.test", nil, 200, &er)
	if er.MessagesDeleted != 1 || len(er.MessagesPending) != 0 {
		t.Fatalf("erasure after the quarantine delete %+v, want the message deleted", er)
	}
	e.n.API(t, "GET", "/messages/"+id, nil, 404, nil)
	if _, err := os.Stat(spoolFile(dir, id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("content of the erased message: %v, want it gone", err)
	}
}
