// Package quarantine keeps messages that a scan verdict or a content rule sent to quarantine: their content
// stays in the spool of the node that received them (fsynced like any queued message) with their
// recipients in status "quarantined", and a row here keeps their header section, verdicts and a safe text
// preview. A quarantined message can be listed, shown, released (it is then queued and delivered normally)
// or deleted; the retention job deletes it after the configured time (30 days by default).
package quarantine

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"easymail/internal/contentrules"
	"easymail/internal/queue"
	"easymail/internal/scan"
	"easymail/internal/store"
)

// Queue is the part of the queue the quarantine uses. *queue.Queue implements it. The queue writes the
// quarantine table's rows (queue.QuarantineRecord) in the transactions that change the messages; this
// package only reads them.
type Queue interface {
	EnqueueQuarantined(ctx context.Context, env queue.Envelope, rec queue.QuarantineRecord) error
	ReleaseQuarantined(ctx context.Context, id string) error
	DeleteQuarantined(ctx context.Context, id, reason string) error
}

// ErrNotFound is returned for an id that names no quarantined message.
var ErrNotFound = errors.New("no such quarantined message")

// Sizes of what is kept beside the content.
const (
	maxHeader  = 16 << 10
	maxPreview = 2 << 10
	// maxPreviewSource is how much of the text part the preview is made from (before markup is removed).
	maxPreviewSource = 64 << 10
)

// Reasons recorded when a quarantined message is deleted.
const (
	DeletedReason = "Deleted from the quarantine"
	ExpiredReason = "Deleted from the quarantine after its retention period"
)

// Store is the quarantine. It is safe for concurrent use.
type Store struct {
	DB    *store.DB
	Queue Queue
	// Retention is how long a message stays in quarantine; 0 means 30 days.
	Retention time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Put quarantines a message whose content is committed to the spool: one transaction records the message
// (status quarantined) and its quarantine row. msg is the message as scanned (size bytes, read at any
// offset), for the header and preview.
func (s *Store) Put(ctx context.Context, env queue.Envelope, rep scan.Report, msg io.ReaderAt, size int64) error {
	ret := s.Retention
	if ret <= 0 {
		ret = 30 * 24 * time.Hour
	}
	now := s.now()
	if env.Scan == "" {
		if b, err := json.Marshal(rep); err == nil {
			env.Scan = string(b)
		}
	}
	if env.Verdict == "" {
		env.Verdict = rep.Verdict
	}
	header, preview := Extract(msg, size)
	return s.Queue.EnqueueQuarantined(ctx, env, queue.QuarantineRecord{Reason: rep.Reason, Verdict: rep.Verdict,
		Header: header, Preview: preview, CreatedAt: now, ExpiresAt: now.Add(ret)})
}

const entryColumns = `q.id, q.customer_id, m.sender, m.subject, m.header_from, m.size, q.reason, q.verdict, q.created_at, q.expires_at`

func scanEntry(r interface{ Scan(...any) error }, e *Entry, extra ...any) error {
	var created, expires int64
	if err := r.Scan(append([]any{&e.ID, &e.CustomerID, &e.Sender, &e.Subject, &e.HeaderFrom, &e.Size, &e.Reason,
		&e.Verdict, &created, &expires}, extra...)...); err != nil {
		return err
	}
	e.CreatedAt, e.ExpiresAt = store.Time(created), store.Time(expires)
	return nil
}

// List returns the quarantined messages, newest first; customer "" means every customer's.
func (s *Store) List(ctx context.Context, customer string, limit int) ([]Entry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q := `SELECT ` + entryColumns + ` FROM quarantine q JOIN messages m ON m.id = q.id`
	var args []any
	if customer != "" {
		q += ` WHERE q.customer_id = ?`
		args = append(args, customer)
	}
	q += ` ORDER BY q.created_at DESC, q.id LIMIT ?`
	args = append(args, limit)
	rows, err := s.DB.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	out := []Entry{}
	for rows.Next() {
		var e Entry
		if err := scanEntry(rows, &e); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Recipients, err = s.recipients(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) recipients(ctx context.Context, id string) ([]string, error) {
	rows, err := s.DB.R.QueryContext(ctx, `SELECT address FROM recipients WHERE message_id = ? ORDER BY idx`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Get returns a quarantined message with its header, verdicts and preview, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Message, error) {
	m := &Message{}
	var report string
	err := scanEntry(s.DB.R.QueryRowContext(ctx, `SELECT `+entryColumns+`, q.header, q.preview, m.scan
		FROM quarantine q JOIN messages m ON m.id = q.id WHERE q.id = ?`, id), &m.Entry, &m.Header, &m.Preview, &report)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if report != "" {
		m.Scan = &scan.Report{}
		if err := json.Unmarshal([]byte(report), m.Scan); err != nil {
			return nil, fmt.Errorf("quarantine %s: scan report: %w", id, err)
		}
	}
	if m.Recipients, err = s.recipients(ctx, id); err != nil {
		return nil, err
	}
	return m, nil
}

// Customer returns the customer of quarantined message id, or ErrNotFound.
func (s *Store) Customer(ctx context.Context, id string) (string, error) {
	var c string
	err := s.DB.R.QueryRowContext(ctx, `SELECT customer_id FROM quarantine WHERE id = ?`, id).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return c, err
}

// mapErr turns the queue's errors about a message that is not quarantined into ErrNotFound.
func mapErr(err error) error {
	if errors.Is(err, queue.ErrNotFound) || errors.Is(err, queue.ErrNotQueued) {
		return ErrNotFound
	}
	return err
}

// Release queues the message for delivery; it is then delivered normally.
func (s *Store) Release(ctx context.Context, id string) error {
	return mapErr(s.Queue.ReleaseQuarantined(ctx, id))
}

// Delete deletes the message without delivering it; the message log keeps its record (status rejected).
func (s *Store) Delete(ctx context.Context, id string) error {
	return mapErr(s.Queue.DeleteQuarantined(ctx, id, DeletedReason))
}

// Purge deletes the quarantined messages whose retention has ended and returns how many. The retention
// job calls it.
func (s *Store) Purge(ctx context.Context) (int64, error) {
	rows, err := s.DB.R.QueryContext(ctx, `SELECT id FROM quarantine WHERE expires_at <= ? ORDER BY expires_at LIMIT 10000`,
		store.Millis(s.now()))
	if err != nil {
		return 0, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var n int64
	for _, id := range ids {
		err := mapErr(s.Queue.DeleteQuarantined(ctx, id, ExpiredReason))
		switch {
		case err == nil:
			n++
		case errors.Is(err, ErrNotFound):
		default:
			return n, err
		}
	}
	return n, nil
}

var (
	tagRE   = regexp.MustCompile(`(?s)<(script|style)\b.*?</(script|style)\s*>|<[^>]*>`)
	spaceRE = regexp.MustCompile(`[ \t]+`)
	nlRE    = regexp.MustCompile(`\n{3,}`)
)

// Extract returns the header section of msg and a safe preview of its first text part: decoded, HTML
// markup removed, control characters replaced, valid UTF-8, at most 2 KiB. Both are plain text, meant to be
// shown as text, never rendered.
// The message (size bytes in msg) is read as a stream: only its start is held in memory.
func Extract(msg io.ReaderAt, size int64) (header, preview string) {
	// The header as shown is at most maxHeader bytes of text; a few times that covers any escaping.
	h := make([]byte, min(size, 4*maxHeader))
	n, _ := msg.ReadAt(h, 0)
	h = h[:n]
	if i := bytes.Index(h, []byte("\r\n\r\n")); i >= 0 {
		h = h[:i+2]
	}
	header = truncate(safeText(string(h)), maxHeader)
	var text []byte
	var html bool
	contentrules.Walk(io.NewSectionReader(msg, 0, size), contentrules.Limits{NoArchives: true}, func(p contentrules.Part) bool {
		if p.Text != nil && p.Filename == "" && (p.ContentType == "text/plain" || p.ContentType == "text/html") {
			// p.Text is reused by the walk: keep a copy of what the preview can use.
			text, html = bytes.Clone(p.Text[:min(len(p.Text), maxPreviewSource)]), p.ContentType == "text/html"
			return false
		}
		return true
	})
	t := string(text)
	if html {
		t = tagRE.ReplaceAllString(t, " ")
		t = strings.NewReplacer("&nbsp;", " ", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`).Replace(t)
	}
	t = safeText(t)
	t = spaceRE.ReplaceAllString(t, " ")
	t = nlRE.ReplaceAllString(t, "\n\n")
	return header, truncate(strings.TrimSpace(t), maxPreview)
}

// safeText keeps tabs and line breaks (as \n) and replaces other control characters and invalid UTF-8.
func safeText(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\r\n", "\n"), "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e' || r == '\u202d':
			return '\uFFFD'
		}
		return r
	}, s)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
