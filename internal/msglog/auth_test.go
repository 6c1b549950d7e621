package msglog

import (
	"context"
	"database/sql"
	"testing"
)

func TestTraceAuthentication(t *testing.T) {
	db := openDB(t)
	insert(t, db, msg{id: "signed", customer: "c1", sender: "a@acme.example", status: "queued", at: t0},
		msg{id: "refused", customer: "c1", sender: "a@acme.example", status: "rejected", at: t0})
	err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE messages SET from_domain = 'acme.example', dkim_domain = 'acme.example',
			dkim_selectors = 'em203003,em203003e', dkim_aligned = 1, spf_aligned = 0, dmarc_aligned = 1, bulk = 1,
			list_unsubscribe = 1, list_unsubscribe_post = 0 WHERE id = 'signed'`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Trace(context.Background(), db, "signed")
	if err != nil {
		t.Fatal(err)
	}
	m := tr.Message
	if m.FromDomain != "acme.example" || m.DKIMDomain != "acme.example" || m.DKIMSelectors != "em203003,em203003e" ||
		m.DKIMAligned == nil || !*m.DKIMAligned || m.SPFAligned == nil || *m.SPFAligned || m.DMARCAligned == nil ||
		!*m.DMARCAligned || !m.Bulk || !m.ListUnsubscribe || m.ListUnsubscribePost {
		t.Fatalf("trace %+v", m)
	}
	tr, err = Trace(context.Background(), db, "refused")
	if err != nil {
		t.Fatal(err)
	}
	if m := tr.Message; m.DKIMAligned != nil || m.SPFAligned != nil || m.DMARCAligned != nil || m.DKIMDomain != "" {
		t.Fatalf("a message never analysed shows %+v", m)
	}
}
