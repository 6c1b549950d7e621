package cli

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/apiserver"
	"easymail/internal/queue"
	"easymail/internal/spool"
	"easymail/internal/store"
)

// queueNow is the clock of the queue tests' API server: the ages of --older-than and --younger-than count
// back from it.
var queueNow = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

// newQueueCLIEnv is a CLI environment whose API server runs the real queue operations (not started: no
// delivery happens) on a real spool, with its clock at queueNow.
func newQueueCLIEnv(t *testing.T) (*cliEnv, *queue.Queue) {
	t.Helper()
	dir := t.TempDir()
	db := openDB(t, dir)
	sp, err := spool.Open(filepath.Join(dir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	q := queue.New(queue.Options{DB: db, Spool: sp, NodeID: "n", Hostname: "relay.example.net",
		Retry: []time.Duration{time.Hour}, MaxLifetime: 48 * time.Hour})
	return serveCLI(t, apiserver.Options{DB: db, Queue: q, Spool: sp, Now: func() time.Time { return queueNow }}), q
}

// queued is a message row for addQueued: its recipients are address=status pairs.
type queued struct {
	id, customer, sender, status string
	held                         bool
	size                         int64
	age                          time.Duration
	rcpts                        [][2]string
}

// addQueued writes messages into the log as the queue does, received age before queueNow.
func (e *cliEnv) addQueued(t *testing.T, msgs ...queued) {
	t.Helper()
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		for _, m := range msgs {
			ts := store.Millis(queueNow.Add(-m.age))
			if _, err := tx.Exec(`INSERT INTO messages (id, node_id, customer_id, sender, message_id, subject, size, status,
				held, received_at, expires_at) VALUES (?, 'n', ?, ?, ?, 'subject', ?, ?, ?, ?, ?)`,
				m.id, m.customer, m.sender, "<"+m.id+"@acme.example>", m.size, m.status, m.held, ts, ts+int64(48*time.Hour/time.Millisecond)); err != nil {
				return err
			}
			for i, r := range m.rcpts {
				_, dom, _ := strings.Cut(r[0], "@")
				if _, err := tx.Exec(`INSERT INTO recipients (message_id, idx, address, domain, status, next_attempt_at, updated_at)
					VALUES (?, ?, ?, ?, ?, ?, ?)`, m.id, i, r[0], dom, r[1], ts+int64(time.Hour/time.Millisecond), ts); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ids returns the lines of a --format ids listing.
func ids(out string) []string { return strings.Fields(out) }

// TestQueueListFiltersAndFormats: queue list shows only the queue, oldest first, with the recipients still to
// deliver and the mailq total line; each filter selects what it says (through the API's GET /queue filters);
// the ids, csv and json formats carry the same messages.
func TestQueueListFiltersAndFormats(t *testing.T) {
	e, _ := newQueueCLIEnv(t)
	c1 := field(t, e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example"), "id")
	c2 := field(t, e.ok(t, "customer", "add", "--name", "Bolt", "--contact", "it@bolt.example"), "id")
	if got := e.ok(t, "queue", "list"); strings.TrimSpace(got) != "Mail queue is empty" {
		t.Fatalf("empty queue: %q", got)
	}
	e.addQueued(t,
		queued{id: "Q1", customer: c1, sender: "alice@acme.example", status: "deferred", size: 1000, age: 3 * time.Hour,
			rcpts: [][2]string{{"bob@dest.example", "deferred"}, {"carol@other.example", "delivered"}}},
		queued{id: "Q2", customer: c1, sender: "alice@acme.example", status: "queued", size: 2000, age: 2 * time.Hour,
			rcpts: [][2]string{{"dave@dest.example", "queued"}}},
		queued{id: "Q3", customer: c2, sender: "news@bolt.example", status: "held", held: true, size: 3000, age: 30 * time.Minute,
			rcpts: [][2]string{{"erin@far.example", "queued"}}},
		queued{id: "D1", customer: c1, sender: "alice@acme.example", status: "delivered", size: 500, age: 4 * time.Hour,
			rcpts: [][2]string{{"bob@dest.example", "delivered"}}},
	)

	out := e.ok(t, "queue", "list")
	if q1, q2, q3 := rowIndex(out, "Q1"), rowIndex(out, "Q2"), rowIndex(out, "Q3"); q1 < 0 || q2 < q1 || q3 < q2 || rowIndex(out, "D1") >= 0 {
		t.Fatalf("queue list is not the queue oldest first:\n%s", out)
	}
	if strings.Contains(out, "carol@other.example") {
		t.Fatalf("a delivered recipient is in the recipient column:\n%s", out)
	}
	mustContain(t, out, "bob@dest.example", "-- 6 Kbytes in 3 Requests.")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--status", "deferred"}, "Q1"},
		{[]string{"--status", "queued"}, "Q2"},
		{[]string{"--status", "held"}, "Q3"},
		{[]string{"--held"}, "Q3"},
		{[]string{"--customer", c1}, "Q1 Q2"},
		{[]string{"--customer", c2}, "Q3"},
		{[]string{"--domain", "dest.example"}, "Q1 Q2"},
		{[]string{"--domain", "other.example"}, ""}, // carol is delivered: not pending
		{[]string{"--recipient", "bob@dest.example"}, "Q1"},
		{[]string{"--recipient", "far.example"}, "Q3"},
		{[]string{"--sender", "bolt.example"}, "Q3"},
		{[]string{"--sender", "Alice@acme.example"}, "Q1 Q2"},
		{[]string{"--older-than", "150m"}, "Q1"},
		{[]string{"--younger-than", "1h"}, "Q3"},
		{[]string{"--older-than", "1h", "--younger-than", "2h30m"}, "Q2"},
		{[]string{"--domain", "dest.example", "--status", "queued"}, "Q2"},
	} {
		got := strings.Join(ids(e.ok(t, append([]string{"queue", "list", "--format", "ids"}, c.args...)...)), " ")
		if got != c.want {
			t.Errorf("queue list %s: %q, want %q", strings.Join(c.args, " "), got, c.want)
		}
	}
	mustContain(t, e.ok(t, "queue", "list", "--domain", "other.example"), "-- 0 Kbytes in 0 Requests.")
	mustContain(t, e.ok(t, "queue", "list", "--customer", c1), "-- 3 Kbytes in 2 Requests.")

	var page api.QueuePage
	if err := json.Unmarshal([]byte(e.ok(t, "queue", "list", "--format", "json")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 3 || page.Total != (api.QueueTotal{Messages: 3, Size: 6000}) ||
		strings.Join(page.Messages[0].Recipients, ",") != "bob@dest.example" {
		t.Fatalf("json: %+v", page)
	}
	var viaJSON api.QueuePage
	if err := json.Unmarshal([]byte(e.ok(t, "queue", "list", "--json", "--held")), &viaJSON); err != nil || len(viaJSON.Messages) != 1 {
		t.Fatalf("--json: %v %+v", err, viaJSON)
	}
	rows, err := csv.NewReader(strings.NewReader(e.ok(t, "queue", "list", "--format", "csv"))).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][0] != "id" || rows[1][0] != "Q1" || rows[1][len(rows[1])-1] != "bob@dest.example" {
		t.Fatalf("csv: %v %q", err, rows)
	}

	// Mistakes are usage errors (exit 2) naming the CLI's flags; the API's refusals name them too.
	for _, args := range [][]string{
		{"--format", "xml"}, {"--status", "bounced"}, {"--older-than", "soon"}, {"--held", "--status", "queued"},
	} {
		if code, _, errs := e.run(t, append([]string{"queue", "list"}, args...)...); code != 2 || !strings.Contains(errs, args[0]) {
			t.Errorf("queue list %s: exit %d, %s", strings.Join(args, " "), code, errs)
		}
	}
	code, _, errs := e.run(t, "queue", "list", "--after", "NOPE")
	if code != 1 || !strings.HasPrefix(errs, `easymail queue list: --after: message "NOPE" not found`) {
		t.Fatalf("unknown cursor: exit %d, %s", code, errs)
	}
}

// TestQueueListPagesBeyondAThousand: GET /queue pages with limit and the after cursor; queue list follows
// the cursor to list a queue of more than 1000 messages whole, each once, in order, and --limit stops it.
func TestQueueListPagesBeyondAThousand(t *testing.T) {
	e, _ := newQueueCLIEnv(t)
	const n = 1205
	var msgs []queued
	var want []string
	for i := range n {
		id := fmt.Sprintf("P%05d", i)
		// Two messages per millisecond: the cursor must break ties by id.
		msgs = append(msgs, queued{id: id, sender: "s@acme.example", status: "queued", size: 1024,
			age: time.Duration(n-i/2) * time.Millisecond, rcpts: [][2]string{{"r@dest.example", "queued"}}})
		want = append(want, id)
	}
	e.addQueued(t, msgs...)
	c := &api.Client{BaseURL: e.url, Token: e.token}
	p, err := c.QueuePage(context.Background(), api.QueueFilter{}, 1000, "")
	if err != nil || len(p.Messages) != 1000 || p.Next != want[999] || p.Total.Messages != n {
		t.Fatalf("first page: %v %d next %q total %+v", err, len(p.Messages), p.Next, p.Total)
	}
	p, err = c.QueuePage(context.Background(), api.QueueFilter{}, 1000, p.Next)
	if err != nil || len(p.Messages) != n-1000 || p.Next != "" || p.Messages[0].ID != want[1000] {
		t.Fatalf("second page: %v %d next %q", err, len(p.Messages), p.Next)
	}

	got := ids(e.ok(t, "queue", "list", "--format", "ids"))
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("queue list --format ids: %d ids, want %d in order", len(got), n)
	}
	out := e.ok(t, "queue", "list")
	mustContain(t, out, "-- 1205 Kbytes in 1205 Requests.")
	if got := ids(e.ok(t, "queue", "list", "--format", "ids", "--limit", "1001")); len(got) != 1001 || got[1000] != want[1000] {
		t.Fatalf("--limit 1001: %d", len(got))
	}
	out = e.ok(t, "queue", "list", "--limit", "2")
	mustContain(t, out, "--after "+want[1], "in 1205 Requests.")
	if got := ids(e.ok(t, "queue", "list", "--format", "ids", "--after", want[1203])); len(got) != 1 || got[0] != want[1204] {
		t.Fatalf("--after: %q", got)
	}
}

// withTerminal makes the CLI see a terminal that answers answer to a confirmation, for the test's duration.
func withTerminal(t *testing.T, answer string) {
	t.Helper()
	old := terminal
	terminal = func() (io.Reader, bool) { return strings.NewReader(answer), true }
	t.Cleanup(func() { terminal = old })
}

// TestBulkQueueVerbs: the bulk verbs act on what the filter matches through POST /queue/bulk, under each
// message's rules (a held message is not retried, only held ones are released), say what they skipped and
// why, need --yes or a terminal's confirmation, and leave one audit entry with the filter and the counts.
func TestBulkQueueVerbs(t *testing.T) {
	e, q := newQueueCLIEnv(t)
	c1 := field(t, e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example"), "id")
	e.addQueued(t,
		queued{id: "Q1", customer: c1, sender: "alice@acme.example", status: "deferred", size: 1000, age: 3 * time.Hour,
			rcpts: [][2]string{{"bob@dest.example", "deferred"}}},
		queued{id: "Q2", customer: c1, sender: "alice@acme.example", status: "queued", size: 2000, age: 2 * time.Hour,
			rcpts: [][2]string{{"dave@dest.example", "queued"}}},
		queued{id: "Q3", customer: c1, sender: "news@acme.example", status: "queued", size: 3000, age: time.Hour,
			rcpts: [][2]string{{"erin@far.example", "queued"}}},
	)
	listed := func(args ...string) string {
		t.Helper()
		return strings.Join(ids(e.ok(t, append([]string{"queue", "list", "--format", "ids"}, args...)...)), " ")
	}

	// Without --yes and without a terminal nothing is done: exit 2, saying how many would be.
	code, _, errs := e.run(t, "queue", "hold", "--all")
	if code != 2 || !strings.Contains(errs, "hold 3 messages") || !strings.Contains(errs, "--yes") {
		t.Fatalf("hold --all without --yes: exit %d, %s", code, errs)
	}
	if listed("--held") != "" {
		t.Fatal("a refused bulk hold held messages")
	}
	for _, args := range [][]string{{"queue", "hold"}, {"queue", "hold", "Q1", "--all"}, {"queue", "hold", "Q1", "--domain", "dest.example"},
		{"queue", "hold", "--all", "--domain", "dest.example"}, {"queue", "hold", "Q1", "Q2"}} {
		if code, _, _ := e.run(t, args...); code != 2 {
			t.Errorf("%s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}

	// postsuper -h on a domain.
	out := e.ok(t, "queue", "hold", "--domain", "dest.example", "--yes")
	mustContain(t, out, "hold: 2 matched, 2 changed, 0 skipped")
	if listed("--held") != "Q1 Q2" {
		t.Fatalf("held: %s", listed("--held"))
	}
	// postqueue -f: the held ones are skipped, and the reason said.
	out = e.ok(t, "queue", "retry", "--all", "--yes")
	mustContain(t, out, "retry: 3 matched, 1 changed, 2 skipped", "skipped 2: held")
	// A terminal's "no" does nothing (exit 1); its "yes" goes ahead.
	withTerminal(t, "n\n")
	code, _, errs = e.run(t, "queue", "release", "--held")
	if code != 1 || !strings.Contains(errs, "release 2 messages (3 Kbytes)? [y/N]") || !strings.Contains(errs, "not confirmed") {
		t.Fatalf("release declined: exit %d, %s", code, errs)
	}
	if listed("--held") != "Q1 Q2" {
		t.Fatal("a declined release released")
	}
	withTerminal(t, "y\n")
	mustContain(t, e.ok(t, "queue", "release", "--held"), "release: 2 matched, 2 changed")
	if listed("--held") != "" {
		t.Fatal("not released")
	}
	// release of messages that are not held: each skipped as not held.
	mustContain(t, e.ok(t, "queue", "release", "--domain", "far.example", "--yes"), "1 matched, 0 changed, 1 skipped", "skipped 1: not held")

	// postqueue -s DOMAIN: only that domain's messages are made due now.
	far := store.Millis(queueNow.Add(24 * time.Hour))
	if err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE recipients SET next_attempt_at = ?`, far)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, e.ok(t, "queue", "retry", "--domain", "far.example", "--yes"), "retry: 1 matched, 1 changed")
	due := func(id string) bool {
		var n int64
		if err := e.db.R.QueryRow(`SELECT next_attempt_at FROM recipients WHERE message_id = ?`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n < far
	}
	if !due("Q3") || due("Q1") || due("Q2") {
		t.Fatalf("retry --domain far.example: Q1 %v Q2 %v Q3 %v", due("Q1"), due("Q2"), due("Q3"))
	}

	// postsuper -d ALL deferred.
	var res api.BulkResult
	if err := json.Unmarshal([]byte(e.ok(t, "queue", "delete", "--status", "deferred", "--yes", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Action != "delete" || res.Matched != 1 || res.Changed != 1 || res.Filter.Status != "deferred" {
		t.Fatalf("delete deferred: %+v", res)
	}
	if listed() != "Q2 Q3" {
		t.Fatalf("after delete deferred: %s", listed())
	}
	// A filter matching nothing does nothing, without asking.
	mustContain(t, e.ok(t, "queue", "delete", "--domain", "nowhere.example"), "nothing to do")

	// One audit entry per bulk request, with the filter and the counts.
	var audit []api.AuditEntry
	if err := json.Unmarshal([]byte(e.ok(t, "audit", "list", "--action", "POST /api/v1/queue/bulk", "--json")), &audit); err != nil {
		t.Fatal(err)
	}
	var last api.BulkResult
	if len(audit) != 6 || json.Unmarshal(audit[0].After, &last) != nil || last.Matched != 1 || last.Changed != 1 ||
		last.Filter.Status != "deferred" || last.Action != "delete" {
		t.Fatalf("%d audit entries, the last: %s", len(audit), audit[0].After)
	}

	// postsuper -d ALL: the queue is empty afterwards; the one-message verbs still work as before.
	id, err := q.Submit(context.Background(), "postmaster@relay.example.net", "noc@ops.example", "Spool check", "body\n")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, e.ok(t, "queue", "cat", id), "Subject: Spool check", "body")
	mustContain(t, e.ok(t, "queue", "hold", id), "held")
	mustContain(t, e.ok(t, "queue", "delete", "--all", "--yes"), "delete: 3 matched, 3 changed")
	if got := strings.TrimSpace(e.ok(t, "queue", "list")); got != "Mail queue is empty" {
		t.Fatalf("after delete --all: %s", got)
	}
	code, _, errs = e.run(t, "queue", "cat", id)
	if code != 1 || !strings.Contains(errs, "no content in this node's spool") {
		t.Fatalf("cat of a deleted message: exit %d, %s", code, errs)
	}
	if code, _, errs := e.run(t, "queue", "cat", "NOPE"); code != 1 || !strings.Contains(errs, `message "NOPE" not found`) {
		t.Fatalf("cat of an unknown message: exit %d, %s", code, errs)
	}
}
