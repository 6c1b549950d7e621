package queue

import (
	"context"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/spool"
	"easymail/internal/store"
)

func TestSubmitQueuesAProperMessage(t *testing.T) {
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
	q := New(Options{DB: db, Spool: sp, NodeID: "n1", Hostname: "relay.test", Retry: []time.Duration{time.Minute}, MaxLifetime: time.Hour})
	body := "127.0.0.2 is listed in zen.example — café\nSecond line\r\n" + strings.Repeat("x", 120) + "\n.\n"
	id, err := q.Submit(ctx, "postmaster@relay.test", "noc@ops.example", "[easymail] 127.0.0.2 listed — alerte", body)
	if err != nil {
		t.Fatal(err)
	}
	f, err := sp.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(f)
	f.Close()
	for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\r\n"), "\r\n") {
		if strings.ContainsAny(line, "\r\n") || len(line) > 78 {
			t.Fatalf("bad line %q in\n%s", line, raw)
		}
		for _, c := range []byte(line) {
			if c >= 0x80 {
				t.Fatalf("8-bit byte in %q", line)
			}
		}
	}
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	h := m.Header
	subj, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if h.Get("From") != "postmaster@relay.test" || h.Get("To") != "noc@ops.example" || subj != "[easymail] 127.0.0.2 listed — alerte" ||
		h.Get("MIME-Version") != "1.0" || h.Get("Content-Type") != "text/plain; charset=utf-8" ||
		h.Get("Message-ID") != "<"+id+"@relay.test>" || h.Get("Auto-Submitted") != "auto-generated" {
		t.Fatalf("header %v", h)
	}
	if _, err := h.Date(); err != nil {
		t.Fatalf("Date: %v", err)
	}
	text, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
	want := strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")
	if string(text) != want {
		t.Fatalf("body %q, want %q", text, want)
	}
	var customer, sender, notify, status string
	var size int64
	if err := db.R.QueryRow(`SELECT m.customer_id, m.sender, m.size, r.notify, r.status FROM messages m JOIN recipients r
		ON r.message_id = m.id WHERE m.id = ? AND r.address = 'noc@ops.example'`, id).Scan(&customer, &sender, &size, &notify, &status); err != nil {
		t.Fatal(err)
	}
	if customer != "" || sender != "postmaster@relay.test" || size != int64(len(raw)) || notify != "NEVER" || status != StatusQueued {
		t.Fatalf("queued as %q %q %d %q %q", customer, sender, size, notify, status)
	}

	for _, bad := range [][4]string{
		{"postmaster@relay.test", "not an address", "s", "b"},
		{"", "noc@ops.example", "s", "b"},
		{"postmaster@relay.test", "noc@ops.example\r\nBcc: x@y.example", "s", "b"},
		{"postmaster@relay.test", "Noc <noc@ops.example>", "s", "b"},
		{"postmaster@relay.test", "noc@ops.example", "two\r\nlines", "b"},
	} {
		if _, err := q.Submit(ctx, bad[0], bad[1], bad[2], bad[3]); err == nil {
			t.Errorf("Submit(%q) accepted", bad)
		}
	}
}

// TestSubmitRawQueuesTheMessageAsIs: SubmitRaw spools the bytes it is given unchanged, queues them as operator
// mail for one recipient with NOTIFY=NEVER, takes the Message-ID and Subject from the header for the log,
// and refuses bad addresses and a message without a header, leaving nothing in the spool.
func TestSubmitRawQueuesTheMessageAsIs(t *testing.T) {
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
	q := New(Options{DB: db, Spool: sp, NodeID: "n1", Hostname: "relay.test", Retry: []time.Duration{time.Minute}, MaxLifetime: time.Hour})
	msg := "From: postmaster@relay.test\r\nTo: tlsrpt@dest.example\r\nSubject: =?utf-8?q?Report_caf=C3=A9?=\r\n" +
		"Message-ID: <r1@relay.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
	id, err := q.SubmitRaw(ctx, "postmaster@relay.test", "tlsrpt@dest.example", []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	f, err := sp.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(f)
	f.Close()
	if string(raw) != msg {
		t.Fatalf("spooled %q, want %q", raw, msg)
	}
	var customer, sender, messageID, subject, rcpt, notify, status string
	var size int64
	if err := db.R.QueryRow(`SELECT m.customer_id, m.sender, m.message_id, m.subject, m.size, r.address, r.notify, r.status
		FROM messages m JOIN recipients r ON r.message_id = m.id WHERE m.id = ?`, id).Scan(&customer, &sender, &messageID,
		&subject, &size, &rcpt, &notify, &status); err != nil {
		t.Fatal(err)
	}
	if customer != "" || sender != "postmaster@relay.test" || messageID != "r1@relay.test" || subject != "Report café" ||
		size != int64(len(msg)) || rcpt != "tlsrpt@dest.example" || notify != "NEVER" || status != StatusQueued {
		t.Fatalf("queued as %q %q %q %q %d %q %q %q", customer, sender, messageID, subject, size, rcpt, notify, status)
	}
	for _, bad := range [][3]string{
		{"postmaster@relay.test", "not an address", msg},
		{"", "tlsrpt@dest.example", msg},
		{"postmaster@relay.test", "tlsrpt@dest.example\r\nBcc: x@y.example", msg},
		{"postmaster@relay.test", "tlsrpt@dest.example", "no header at all"},
	} {
		if _, err := q.SubmitRaw(ctx, bad[0], bad[1], []byte(bad[2])); err == nil {
			t.Errorf("SubmitRaw(%q, %q) accepted", bad[0], bad[1])
		}
	}
	var n int
	if err := db.R.QueryRow(`SELECT count(*) FROM messages`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d messages queued (%v), want 1", n, err)
	}
	if entries, _ := os.ReadDir(sp.Dir()); len(entries) != 1 {
		t.Fatalf("spool holds %d entries, want 1", len(entries))
	}
}
