package queue

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestEnqueueWritesTheAuthentication: the envelope's authentication result is written in the message's own
// insert (no later update); a message without one has NULL alignments, "not analysed".
func TestEnqueueWritesTheAuthentication(t *testing.T) {
	ctx := context.Background()
	q, db, sp := openTestQueue(t, t.TempDir())
	for _, id := range []string{"SIGNED", "PLAIN"} {
		spoolMessage(t, sp, id)
	}
	env := Envelope{ID: "SIGNED", Sender: "a@acme.test", Recipients: []Recipient{{Address: "b@dest.test"}}, Received: time.Now(),
		Auth: &Authentication{FromDomain: "acme.test", DKIMDomain: "acme.test", DKIMSelectors: []string{"em1", "em1e"},
			DKIMAligned: true, DMARCAligned: true, Bulk: true, ListUnsubscribe: true, OneClick: true}}
	if err := q.Enqueue(ctx, env); err != nil {
		t.Fatal(err)
	}
	env.ID, env.Auth = "PLAIN", nil
	if err := q.Enqueue(ctx, env); err != nil {
		t.Fatal(err)
	}
	var from, d, sels string
	var dkimA, spfA, dmarcA sql.NullBool
	var bulk, lu, post bool
	row := func(id string) {
		t.Helper()
		if err := db.R.QueryRow(`SELECT from_domain, dkim_domain, dkim_selectors, dkim_aligned, spf_aligned, dmarc_aligned, bulk,
			list_unsubscribe, list_unsubscribe_post FROM messages WHERE id = ?`, id).Scan(&from, &d, &sels, &dkimA, &spfA, &dmarcA,
			&bulk, &lu, &post); err != nil {
			t.Fatal(err)
		}
	}
	row("SIGNED")
	if from != "acme.test" || d != "acme.test" || sels != "em1,em1e" || !dkimA.Bool || !spfA.Valid || spfA.Bool ||
		!dmarcA.Bool || !bulk || !lu || !post {
		t.Fatalf("signed: %s %s %s %v %v %v %v %v %v", from, d, sels, dkimA, spfA, dmarcA, bulk, lu, post)
	}
	row("PLAIN")
	if from != "" || d != "" || dkimA.Valid || spfA.Valid || dmarcA.Valid || bulk || lu || post {
		t.Fatalf("plain: %q %q %v %v %v %v %v %v", from, d, dkimA, spfA, dmarcA, bulk, lu, post)
	}
}
