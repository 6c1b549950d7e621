package dkimsign

import (
	"database/sql"
	"testing"
)

func TestRecord(t *testing.T) {
	f := newFixture(t, nil)
	id := f.customer(t, "Acme", "acme.test")
	f.exec(t, `INSERT INTO messages (id, node_id, customer_id, sender, status, received_at, expires_at)
		VALUES ('q1', 'n', ?, 'a@acme.test', 'queued', 0, 0), ('q2', 'n', ?, 'a@acme.test', 'queued', 0, 0)`, id, id)
	f.m.Record("q1", Result{FromDomain: "acme.test", DKIMDomain: "acme.test", Selectors: []string{"em202611", "em202611e"},
		DKIMAligned: true, DMARCAligned: true, Bulk: true, ListUnsubscribe: true, OneClick: true})
	f.m.Close()
	// After Close, Record writes at once.
	f.m.Record("q2", Result{FromDomain: "bank.test"})
	var from, d, sels string
	var dkimA, spfA, dmarcA sql.NullBool
	var bulk, lu, post bool
	err := f.db.R.QueryRow(`SELECT from_domain, dkim_domain, dkim_selectors, dkim_aligned, spf_aligned, dmarc_aligned, bulk,
		list_unsubscribe, list_unsubscribe_post FROM messages WHERE id = 'q1'`).Scan(&from, &d, &sels, &dkimA, &spfA, &dmarcA,
		&bulk, &lu, &post)
	if err != nil {
		t.Fatal(err)
	}
	if from != "acme.test" || d != "acme.test" || sels != "em202611,em202611e" || !dkimA.Bool || !spfA.Valid || spfA.Bool ||
		!dmarcA.Bool || !bulk || !lu || !post {
		t.Fatalf("recorded %s %s %s %v %v %v %v %v %v", from, d, sels, dkimA, spfA, dmarcA, bulk, lu, post)
	}
	if err := f.db.R.QueryRow(`SELECT from_domain, dmarc_aligned FROM messages WHERE id = 'q2'`).Scan(&from, &dmarcA); err != nil ||
		from != "bank.test" || !dmarcA.Valid || dmarcA.Bool {
		t.Fatalf("after Close: %q %v (%v)", from, dmarcA, err)
	}
}
