package portal_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
)

// deferredWorld is newWorld plus messages to later.test, whose MX refuses connections (nothing listens on
// 127.0.0.40): three of customer A's and one of B's, each deferred, so that they wait in the queue.
func deferredWorld(t *testing.T) (*world, []string, string) {
	t.Helper()
	w := newWorld(t)
	w.n.DNS.AddMX("later.test", "mx.later.test", 10)
	w.n.DNS.AddA("mx.later.test", "127.0.0.40")
	var idsA []string
	for _, s := range []string{"Later one", "Later two", "Later three"} {
		idsA = append(idsA, sendMail(t, w.n.SMTPAddr, "127.0.0.1", "alice@acme.test", "x@later.test", s))
	}
	idB := sendMail(t, w.n.SMTPAddr, "127.0.0.3", "bea@beta.test", "y@later.test", "Later from Beta")
	for _, id := range append(append([]string{}, idsA...), idB) {
		waitStatus(t, w, id, "deferred")
	}
	return w, idsA, idB
}

// waitStatus waits until the API shows message id in status.
func waitStatus(t *testing.T, w *world, id, status string) api.Trace {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var tr api.Trace
		w.n.API(t, "GET", "/messages/"+id, nil, 200, &tr)
		if tr.Status == status {
			return tr
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s is %s, not %s", id, tr.Status, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func held(t *testing.T, w *world, id string) bool {
	t.Helper()
	var tr api.Trace
	w.n.API(t, "GET", "/messages/"+id, nil, 200, &tr)
	return tr.Held
}

// bulkCounts reads the counts of a bulk action's result page.
func bulkCounts(t *testing.T, p page) (selected, changed, skipped string) {
	t.Helper()
	if p.status != http.StatusOK {
		t.Fatalf("bulk action: %d\n%s", p.status, p.body)
	}
	get := func(id string) string {
		i := strings.Index(p.body, `id="`+id+`">`)
		if i < 0 {
			t.Fatalf("no %s in\n%s", id, p.body)
		}
		rest := p.body[i+len(id)+6:]
		return rest[:strings.Index(rest, "<")]
	}
	return get("bulk-selected"), get("bulk-changed"), get("bulk-skipped")
}

// TestBulkActions: an operator acts on the messages ticked on a search's page, or on every message the
// search matches, through the real queue; a ticked id the search does not match (another customer's, an
// unknown one) is skipped, never acted on; experts see no checkbox and are refused, customers' users get 404;
// each action is audited with its counts.
func TestBulkActions(t *testing.T) {
	w, idsA, idB := deferredWorld(t)
	w.enablePortal(t, w.a)

	op := w.browser(t)
	op.mustLogin("op@ops.test")
	search := "/messages?domain=later.test&customer=" + w.a
	p := op.get(search)
	checkHTML(t, search, p)
	for _, id := range idsA {
		if !strings.Contains(p.body, `type="checkbox" form="bulk" name="id" value="`+id+`"`) {
			t.Fatalf("no checkbox for %s:\n%s", id, p.body)
		}
	}
	if !strings.Contains(p.body, `action="/messages/bulk"`) || !strings.Contains(p.body, `name="scope" value="all"`) ||
		!strings.Contains(p.body, `type="hidden" name="customer" value="`+w.a+`"`) {
		t.Fatalf("no bulk form on %s:\n%s", search, p.body)
	}
	tok := csrfField.FindStringSubmatch(p.body)[1]

	// The expert sees no checkbox, and is refused.
	ex := w.browser(t)
	ex.mustLogin("ex@ops.test")
	if p := ex.get(search); p.status != http.StatusOK || strings.Contains(p.body, `name="id"`) || strings.Contains(p.body, "/messages/bulk") {
		t.Fatalf("expert's search: %d\n%s", p.status, p.body)
	}
	exForm := url.Values{"csrf": {ex.csrf("/messages")}, "action": {"hold"}, "scope": {"ticked"}, "id": {idsA[0]}}
	if p := ex.post("/messages/bulk", exForm); p.status != http.StatusForbidden {
		t.Fatalf("expert's bulk hold: %d", p.status)
	}
	// Customer A's user, with its own and B's ids: 404, nothing held.
	ua := w.browser(t)
	ua.mustLogin("ua@acme.test")
	if p := ua.get("/messages?domain=later.test"); strings.Contains(p.body, `name="id"`) {
		t.Fatalf("a customer's user has checkboxes:\n%s", p.body)
	}
	for _, scope := range []string{"ticked", "all"} {
		f := url.Values{"csrf": {ua.csrf("/messages")}, "action": {"hold"}, "scope": {scope}, "id": {idB, idsA[0]}, "domain": {"later.test"}}
		if p := ua.post("/messages/bulk", f); p.status != http.StatusNotFound {
			t.Fatalf("customer's bulk hold (%s): %d", scope, p.status)
		}
	}
	for _, id := range append([]string{idB}, idsA...) {
		if held(t, w, id) {
			t.Fatalf("%s held by a refused request", id)
		}
	}

	// Ticked: A's first message, B's (outside the search on customer A) and an unknown id.
	f := url.Values{"csrf": {tok}, "action": {"hold"}, "scope": {"ticked"}, "customer": {w.a}, "domain": {"later.test"},
		"id": {idsA[0], idB, "NOSUCHID"}}
	sel, ch, sk := bulkCounts(t, op.post("/messages/bulk", f))
	if sel != "3" || ch != "1" || sk != "2" {
		t.Fatalf("ticked hold: selected %s changed %s skipped %s", sel, ch, sk)
	}
	if !held(t, w, idsA[0]) || held(t, w, idB) || held(t, w, idsA[1]) {
		t.Fatal("the ticked hold held the wrong messages")
	}
	// Every match of domain=later.test (both customers): 4, one already held.
	f = url.Values{"csrf": {tok}, "action": {"hold"}, "scope": {"all"}, "domain": {"later.test"}}
	r := op.post("/messages/bulk", f)
	sel, ch, sk = bulkCounts(t, r)
	if sel != "4" || ch != "3" || sk != "1" || !strings.Contains(r.body, "already held") {
		t.Fatalf("hold of every match: selected %s changed %s skipped %s\n%s", sel, ch, sk, r.body)
	}
	// Release A's only, in French.
	op.lang = "fr"
	f = url.Values{"csrf": {tok}, "action": {"release"}, "scope": {"all"}, "customer": {w.a}, "domain": {"later.test"}}
	r = op.post("/messages/bulk", f)
	if sel, ch, sk = bulkCounts(t, r); sel != "3" || ch != "3" || sk != "0" || !strings.Contains(r.body, "Libérer") {
		t.Fatalf("release of A's: selected %s changed %s skipped %s\n%s", sel, ch, sk, r.body)
	}
	op.lang = ""
	for _, id := range idsA {
		if held(t, w, id) {
			t.Fatalf("%s still held", id)
		}
	}
	if !held(t, w, idB) {
		t.Fatal("B's message released by a release of A's")
	}
	// Every match needs a search; a bad action is refused.
	if p := op.post("/messages/bulk", url.Values{"csrf": {tok}, "action": {"delete"}, "scope": {"all"}}); p.status != http.StatusUnprocessableEntity {
		t.Fatalf("delete of everything without a search: %d", p.status)
	}
	if p := op.post("/messages/bulk", url.Values{"csrf": {tok}, "action": {"purge"}, "scope": {"ticked"}, "id": {idB}}); p.status != http.StatusUnprocessableEntity {
		t.Fatalf("unknown action: %d", p.status)
	}

	// The audit log has each action with its counts.
	var entries []api.AuditEntry
	w.n.API(t, "GET", "/audit?action="+url.QueryEscape("portal POST /messages/bulk"), nil, 200, &entries)
	if len(entries) != 3 {
		t.Fatalf("%d audit entries of bulk actions: %+v", len(entries), entries)
	}
	var counts []string
	for _, e := range entries {
		var d struct {
			Action   string `json:"action"`
			Selected int    `json:"selected"`
			Changed  int    `json:"changed"`
		}
		if err := json.Unmarshal(e.After, &d); err != nil {
			t.Fatal(err)
		}
		counts = append(counts, fmt.Sprintf("%s %d %d", d.Action, d.Selected, d.Changed))
	}
	got := strings.Join(counts, ",")
	if !strings.Contains(got, "hold 3 1") || !strings.Contains(got, "hold 4 3") || !strings.Contains(got, "release 3 3") {
		t.Fatalf("audited counts: %s", got)
	}
}
