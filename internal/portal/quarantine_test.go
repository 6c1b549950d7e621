package portal_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"easymail/internal/store"
)

// quarantineRule is a scanning policy that quarantines the messages whose subject starts "Quarantine me",
// with customer_release as given ("" leaves it to the default).
func quarantineRule(release string) map[string]any {
	p := map[string]any{"rules": []map[string]any{{"name": "review", "type": "header", "pattern": "(?i)^subject: quarantine me",
		"action": "quarantine", "reason": "Held for review"}}}
	if release != "" {
		p["customer_release"] = release
	}
	return p
}

// TestCustomerQuarantinePolicy: a customer's user may release and delete its own customer's quarantined
// messages only as the customer's scanning policy (customer_release) allows: none by default, except_virus
// (never a virus), all; the buttons follow the policy, the server refuses with 403, another customer's
// message is 404, an expert is refused.
func TestCustomerQuarantinePolicy(t *testing.T) {
	w := newWorld(t)
	w.enablePortal(t, w.a)
	w.enablePortal(t, w.b)
	w.n.API(t, "PUT", "/customers/"+w.a+"/scan-policy", quarantineRule(""), 200, nil)
	w.n.API(t, "PUT", "/customers/"+w.b+"/scan-policy", quarantineRule("all"), 200, nil)
	w.n.API(t, "PUT", "/customers/"+w.a+"/scan-policy", map[string]any{"customer_release": "sometimes"}, 422, nil)
	var q []string
	for _, s := range []string{"Quarantine me 1", "Quarantine me 2", "Quarantine me 3"} {
		q = append(q, sendMail(t, w.n.SMTPAddr, "127.0.0.1", "alice@acme.test", "bob@dest.test", s))
	}
	qb := sendMail(t, w.n.SMTPAddr, "127.0.0.3", "bea@beta.test", "carol@dest.test", "Quarantine me B")
	for _, id := range append(append([]string{}, q...), qb) {
		waitStatus(t, w, id, "quarantined")
	}
	// The third of A's is made a virus, as clamd would have said.
	db, err := store.Open(context.Background(), filepath.Join(w.n.Config.DataDir, "easymail.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE quarantine SET verdict = 'virus' WHERE id = ?`, q[2])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ua := w.browser(t)
	ua.mustLogin("ua@acme.test")
	act := func(b *browser, id, action string) page {
		t.Helper()
		return b.post("/quarantine/"+id+"/"+action, url.Values{"csrf": {b.csrf("/quarantine")}})
	}
	buttons := func(b *browser, id string) (release, del bool) {
		t.Helper()
		p := b.get("/quarantine/" + id)
		if p.status != http.StatusOK {
			t.Fatalf("GET /quarantine/%s: %d", id, p.status)
		}
		checkHTML(t, "/quarantine/"+id, p)
		return strings.Contains(p.body, `action="/quarantine/`+id+`/release"`), strings.Contains(p.body, `action="/quarantine/`+id+`/delete"`)
	}

	// Policy none (the default): no button, 403 with the reason, nothing done.
	if r, d := buttons(ua, q[0]); r || d {
		t.Fatalf("buttons under policy none: release %v delete %v", r, d)
	}
	for _, action := range []string{"release", "delete"} {
		if p := act(ua, q[0], action); p.status != http.StatusForbidden || !strings.Contains(p.body, "scanning policy") {
			t.Fatalf("%s under policy none: %d\n%s", action, p.status, p.body)
		}
	}
	waitStatus(t, w, q[0], "quarantined")
	// Another customer's message, whose own policy is all: 404 to A's user, whatever the action.
	for _, action := range []string{"release", "delete"} {
		if p := act(ua, qb, action); p.status != http.StatusNotFound {
			t.Fatalf("%s of B's message by A's user: %d", action, p.status)
		}
	}
	waitStatus(t, w, qb, "quarantined")
	// The expert: no button, refused.
	ex := w.browser(t)
	ex.mustLogin("ex@ops.test")
	if r, d := buttons(ex, qb); r || d {
		t.Fatal("the expert has quarantine buttons")
	}
	if p := act(ex, qb, "release"); p.status != http.StatusForbidden {
		t.Fatalf("expert's release: %d", p.status)
	}

	// except_virus: the spam-like ones are released and deleted, the virus only deleted.
	w.n.API(t, "PUT", "/customers/"+w.a+"/scan-policy", quarantineRule("except_virus"), 200, nil)
	if r, d := buttons(ua, q[0]); !r || !d {
		t.Fatalf("buttons under except_virus: release %v delete %v", r, d)
	}
	if r, d := buttons(ua, q[2]); r || !d {
		t.Fatalf("buttons of a virus under except_virus: release %v delete %v", r, d)
	}
	if p := act(ua, q[2], "release"); p.status != http.StatusForbidden || !strings.Contains(p.body, "virus") {
		t.Fatalf("release of a virus under except_virus: %d\n%s", p.status, p.body)
	}
	waitStatus(t, w, q[2], "quarantined")
	if p := act(ua, q[0], "release"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/messages/"+q[0]+"?done=qrelease" {
		t.Fatalf("release under except_virus: %d %v\n%s", p.status, p.header, p.body)
	}
	waitStatus(t, w, q[0], "delivered")
	if p := act(ua, q[1], "delete"); p.status != http.StatusSeeOther {
		t.Fatalf("delete under except_virus: %d\n%s", p.status, p.body)
	}
	waitStatus(t, w, q[1], "rejected")
	// all: the virus too.
	w.n.API(t, "PUT", "/customers/"+w.a+"/scan-policy", quarantineRule("all"), 200, nil)
	if r, d := buttons(ua, q[2]); !r || !d {
		t.Fatalf("buttons of a virus under all: release %v delete %v", r, d)
	}
	if p := act(ua, q[2], "release"); p.status != http.StatusSeeOther {
		t.Fatalf("release of a virus under all: %d\n%s", p.status, p.body)
	}
	waitStatus(t, w, q[2], "delivered")
	// The operator releases B's whatever B's policy says.
	op := w.browser(t)
	op.mustLogin("op@ops.test")
	w.n.API(t, "PUT", "/customers/"+w.b+"/scan-policy", quarantineRule("none"), 200, nil)
	if p := act(op, qb, "release"); p.status != http.StatusSeeOther {
		t.Fatalf("operator's release: %d", p.status)
	}
	waitStatus(t, w, qb, "delivered")
}
