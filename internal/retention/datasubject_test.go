package retention

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"easymail/internal/bounce"
	"easymail/internal/fielderr"
	"easymail/internal/msglog"
)

const subject = "Alice@Example.org"

func subjectFixture(t *testing.T) (*Subjects, *bytes.Buffer) {
	t.Helper()
	db := openDB(t)
	ctx := context.Background()
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		for _, c := range [][2]string{{"C1", "alice@example.org"}, {"C2", "boss@example.org"}} {
			if _, err := tx.Exec(`INSERT INTO customers (id, name, contact_email, pool, status, created_at, updated_at)
				VALUES (?, ?, ?, 'default', 'active', 0, 0)`, c[0], c[0]+" Ltd", c[1]); err != nil {
				return err
			}
		}
		for _, s := range [][2]string{{"C1", "ALICE@example.org"}, {"C2", "alice@example.org"}, {"C1", "bob@x.example"}} {
			if err := bounce.Suppress(tx, s[0], s[1], "Q0", "550 5.1.1 <"+s[1]+">: no such user", now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	at := now.Add(-48 * time.Hour)
	insertLog(t, db,
		logMsg{id: "M1", sender: "alice@example.org", headerFrom: "Alice <alice@example.org>", subject: "hello", received: at, done: true,
			rcpts: []logRcpt{{address: "bob@x.example", attempts: 1, reply: "550 5.7.1 sender alice@example.org refused"},
				{address: "carol@y.example", attempts: 1}}},
		logMsg{id: "M2", sender: "news@example.org", headerFrom: `"Alice" <ALICE@example.org>, boss@example.org`, subject: "news", received: at, done: true,
			rcpts: []logRcpt{{address: "dave@x.example"}}},
		logMsg{id: "M3", sender: "other@z.example", headerFrom: "other@z.example", subject: "to alice", received: at, done: true,
			rcpts: []logRcpt{{address: "alice@example.org", attempts: 2, reply: "250 ok alice@example.org"}}},
		logMsg{id: "M4", sender: "other@z.example", headerFrom: "other@z.example", subject: "to both", received: at, done: true,
			rcpts: []logRcpt{{address: "erin@x.example", attempts: 1}, {address: "Alice@example.ORG", attempts: 2}}},
		logMsg{id: "M5", sender: "alice@example.org", headerFrom: "alice@example.org", subject: "note to self", received: at, done: true,
			rcpts: []logRcpt{{address: "alice@example.org", attempts: 1}}},
		logMsg{id: "M6", sender: "other@z.example", headerFrom: "other@z.example", subject: "pending", received: at, status: "deferred",
			rcpts: []logRcpt{{address: "alice@example.org", status: "deferred", attempts: 1}}},
		logMsg{id: "M7", sender: "jimalice@example.org", headerFrom: "jimalice@example.org, alice@example.org.evil.example", subject: "not hers",
			received: at, done: true, rcpts: []logRcpt{{address: "xalice@example.org"}}},
		logMsg{id: "M8", sender: "alice@example.org", status: "rejected", reason: "550 5.7.1 Sender domain is not registered",
			received: at, done: true},
	)
	var audit bytes.Buffer
	return &Subjects{DB: db, Suppressions: bounce.NewList(bounce.ListOptions{DB: db, TTL: 720 * time.Hour, Now: func() time.Time { return now }}),
		Logger: slog.New(slog.NewTextHandler(&audit, nil)), Now: func() time.Time { return now }}, &audit
}

func export(t *testing.T, s *Subjects, addr string) DataSubject {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteExport(context.Background(), addr, "token:T1", &buf); err != nil {
		t.Fatal(err)
	}
	var d DataSubject
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("export is not one JSON document: %v\n%s", err, buf.String())
	}
	return d
}

func traceIDs(d DataSubject) string {
	var ids []string
	for _, m := range d.Messages {
		ids = append(ids, m.ID)
	}
	return strings.Join(ids, ",")
}

func TestExportCoversEveryTable(t *testing.T) {
	s, audit := subjectFixture(t)
	d := export(t, s, subject)
	if d.Address != subject || !d.ExportedAt.Equal(now) {
		t.Fatalf("head %+v", d)
	}
	if len(d.Customers) != 1 || d.Customers[0].CustomerID != "C1" || d.Customers[0].Name != "C1 Ltd" {
		t.Fatalf("customers %+v", d.Customers)
	}
	if len(d.Suppressions) != 2 || d.Suppressions[0].CustomerID != "C1" || d.Suppressions[1].CustomerID != "C2" ||
		d.Suppressions[0].Address != "alice@example.org" || !d.Suppressions[0].ExpiresAt.Equal(now.Add(720*time.Hour)) {
		t.Fatalf("suppressions %+v", d.Suppressions)
	}
	if got := traceIDs(d); got != "M1,M2,M3,M4,M5,M6,M8" {
		t.Fatalf("messages %s", got)
	}
	byID := map[string]msglog.MessageTrace{}
	for _, m := range d.Messages {
		byID[m.ID] = m
	}
	// Sent by the subject: every recipient. Received: only the subject's entries.
	if m := byID["M1"]; len(m.Recipients) != 2 || len(m.Attempts) != 2 {
		t.Fatalf("M1 %+v", m)
	}
	if m := byID["M4"]; len(m.Recipients) != 1 || m.Recipients[0].Address != "Alice@example.ORG" || len(m.Attempts) != 2 ||
		m.Attempts[0].Recipient != "Alice@example.ORG" {
		t.Fatalf("M4 shows other recipients: %+v", m)
	}
	if !strings.Contains(audit.String(), "data subject: export") || !strings.Contains(audit.String(), "requested_by=token:T1") ||
		strings.Contains(strings.ToLower(audit.String()), "alice@") || !strings.Contains(audit.String(), SubjectHash(subject)) {
		t.Fatalf("audit line: %s", audit.String())
	}

	// Nothing for an unknown address: empty lists, not nulls.
	var buf bytes.Buffer
	if err := s.WriteExport(context.Background(), "nobody@nowhere.example", "op", &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"customers":[]`) || !strings.Contains(buf.String(), `"suppressions":[]`) ||
		!strings.Contains(buf.String(), `"messages":[`) {
		t.Fatalf("empty export %s", buf.String())
	}
	var ie *fielderr.Error
	if err := s.WriteExport(context.Background(), "not an address", "op", &buf); !errors.As(err, &ie) {
		t.Fatalf("bad address: %v", err)
	}
}

func TestEraseCoversEveryTable(t *testing.T) {
	ctx := context.Background()
	s, audit := subjectFixture(t)
	db := s.DB
	e, err := s.Erase(ctx, subject, "token:T1")
	if err != nil {
		t.Fatal(err)
	}
	if e.MessagesDeleted != 3 || e.MessagesBlanked != 2 || e.RecipientsDeleted != 1 || e.AttemptsDeleted != 2 ||
		e.SuppressionsDeleted != 2 || strings.Join(e.ContactsBlanked, ",") != "C1" || strings.Join(e.MessagesPending, ",") != "M6" {
		t.Fatalf("erasure %+v", e)
	}
	if got := strings.Join(messageIDs(t, db), ","); got != "M1,M2,M4,M6,M7" {
		t.Fatalf("messages left %s", got)
	}
	// Nothing left that names the subject, except the pending message.
	for _, q := range []string{
		`SELECT COUNT(*) FROM messages WHERE id NOT IN ('M6', 'M7') AND (lower(sender) LIKE '%alice@example.org%' OR lower(header_from) LIKE '%<alice@example.org>%'
			OR lower(header_from) LIKE 'alice@example.org%' OR lower(reason) LIKE '%alice@example.org%' OR lower(prefix) LIKE '%alice@example.org%')`,
		`SELECT COUNT(*) FROM recipients WHERE message_id <> 'M6' AND (lower(address) = 'alice@example.org' OR lower(last_reply) LIKE '%alice@example.org%'
			OR lower(last_remote_reply) LIKE '%alice@example.org%')`,
		`SELECT COUNT(*) FROM attempts WHERE message_id <> 'M6' AND (lower(reply) LIKE '%alice@example.org%' OR lower(remote_reply) LIKE '%alice@example.org%')`,
		`SELECT COUNT(*) FROM suppressions WHERE address = 'alice@example.org'`,
		`SELECT COUNT(*) FROM customers WHERE lower(contact_email) = 'alice@example.org'`,
	} {
		if n := count(t, db, q); n != 0 {
			t.Errorf("%d rows still name the subject: %s", n, q)
		}
	}
	// What belongs to others stays.
	var sender, from, subj, reply string
	db.R.QueryRow(`SELECT sender, header_from, subject FROM messages WHERE id = 'M1'`).Scan(&sender, &from, &subj)
	if sender != Erased || from != Erased || subj != Erased {
		t.Fatalf("M1 not blanked: %q %q %q", sender, from, subj)
	}
	db.R.QueryRow(`SELECT last_reply FROM recipients WHERE message_id = 'M1' AND idx = 0`).Scan(&reply)
	if reply != "550 5.7.1 sender [erased] refused" {
		t.Fatalf("reply %q", reply)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM recipients WHERE message_id IN ('M1', 'M2', 'M4')`); n != 4 {
		t.Fatalf("%d recipients of others left, want 4", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM recipients WHERE message_id = 'M7'`); n != 1 {
		t.Fatal("a look-alike address was erased")
	}
	db.R.QueryRow(`SELECT sender FROM messages WHERE id = 'M7'`).Scan(&sender)
	if sender != "jimalice@example.org" {
		t.Fatalf("look-alike sender changed: %q", sender)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM suppressions WHERE address = 'bob@x.example'`); n != 1 {
		t.Fatal("another address's suppression was deleted")
	}
	if n := count(t, db, `SELECT COUNT(*) FROM customers WHERE contact_email = 'boss@example.org'`); n != 1 {
		t.Fatal("another contact was blanked")
	}
	if !strings.Contains(audit.String(), "data subject: erased") || !strings.Contains(audit.String(), "requested_by=token:T1") ||
		strings.Contains(strings.ToLower(audit.String()), "alice@") {
		t.Fatalf("audit line: %s", audit.String())
	}

	// The export now shows the pending message only; once it is finished, a second erasure takes it.
	if got := traceIDs(export(t, s, subject)); got != "M6" {
		t.Fatalf("export after erasure: %s", got)
	}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE recipients SET status = 'delivered' WHERE message_id = 'M6'`)
		if err == nil {
			_, err = tx.Exec(`UPDATE messages SET status = 'delivered', done_at = 1 WHERE id = 'M6'`)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if e, err = s.Erase(ctx, subject, "op"); err != nil || e.MessagesDeleted != 1 || len(e.MessagesPending) != 0 {
		t.Fatalf("second erasure %+v %v", e, err)
	}
	if d := export(t, s, subject); len(d.Messages)+len(d.Customers)+len(d.Suppressions) != 0 {
		t.Fatalf("records left: %+v", d)
	}
}

func TestNamesAddress(t *testing.T) {
	for _, c := range []struct {
		text string
		want bool
	}{
		{"alice@example.org", true},
		{"Alice <ALICE@Example.org>", true},
		{`"x" <alice@example.org>, b@c.d`, true},
		{"alice@example.org.", true},
		{"jimalice@example.org", false},
		{"alice@example.org.evil", false},
		{"alice@example.organ", false},
		{"x.alice@example.org", false},
		{"", false},
	} {
		if got := namesAddress(c.text, "alice@example.org"); got != c.want {
			t.Errorf("%q: %v, want %v", c.text, got, c.want)
		}
	}
}
