package retention

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"easymail/internal/bounce"
	"easymail/internal/customer"
	"easymail/internal/msglog"
	"easymail/internal/queue"
	"easymail/internal/store"
)

// Erased replaces the sender, header From and subject of a message kept for its other recipients, and the
// address wherever a reply or reason quotes it.
const Erased = "[erased]"

// Subjects answers data subjects' requests (GDPR art. 15 and 17): the export and the erasure of every record
// that names an e-mail address. Addresses match without regard to the case of their ASCII letters.
type Subjects struct {
	// DB is the database; required.
	DB *store.DB
	// Suppressions is the suppression list, for the export's expiry dates; required.
	Suppressions *bounce.List
	// Logger receives the audit line of every request; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

func (s *Subjects) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Subjects) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// SubjectHash is the form of an address in the audit log: the hex SHA-256 of its lower-case form, so that the
// log proves which request was served without keeping the address it erased.
func SubjectHash(address string) string {
	h := sha256.Sum256([]byte(asciiLower(address)))
	return hex.EncodeToString(h[:])
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// involvement is how one message names the subject.
type involvement struct {
	sent  bool         // the subject is its envelope sender or in its header From
	rcpts map[int]bool // the subject's recipient entries, by index
}

// find returns the messages that name address, by id.
func find(ctx context.Context, q querier, address string) (map[string]*involvement, error) {
	out := map[string]*involvement{}
	get := func(id string) *involvement {
		if out[id] == nil {
			out[id] = &involvement{rcpts: map[int]bool{}}
		}
		return out[id]
	}
	if err := store.Each(ctx, q, `SELECT id FROM messages WHERE lower(sender) = lower(?)`, []any{address}, func(r *sql.Rows) error {
		var id string
		if err := r.Scan(&id); err != nil {
			return err
		}
		get(id).sent = true
		return nil
	}); err != nil {
		return nil, err
	}
	// The header From holds a display name and possibly several addresses: candidates by substring (a scan of
	// the log: header From has no index), then a check of the address's bounds.
	if err := store.Each(ctx, q, `SELECT id, header_from FROM messages WHERE lower(header_from) LIKE ? ESCAPE '\'`,
		[]any{"%" + likeEscape(asciiLower(address)) + "%"}, func(r *sql.Rows) error {
			var id, from string
			if err := r.Scan(&id, &from); err != nil {
				return err
			}
			if namesAddress(from, address) {
				get(id).sent = true
			}
			return nil
		}); err != nil {
		return nil, err
	}
	if err := store.Each(ctx, q, `SELECT message_id, idx FROM recipients WHERE lower(address) = lower(?)`, []any{address}, func(r *sql.Rows) error {
		var id string
		var idx int
		if err := r.Scan(&id, &idx); err != nil {
			return err
		}
		get(id).rcpts[idx] = true
		return nil
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// namesAddress reports whether text contains address as a whole address: not inside a longer one
// ("bob@example.com" is not in "jimbob@example.com" nor in "bob@example.com.evil").
func namesAddress(text, address string) bool {
	t, a := asciiLower(text), asciiLower(address)
	if a == "" {
		return false
	}
	for i := 0; ; {
		j := strings.Index(t[i:], a)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(a)
		before := start == 0 || !isAddrChar(t[start-1])
		after := end == len(t) || !isAddrChar(t[end]) || (t[end] == '.' && (end+1 == len(t) || !isAddrChar(t[end+1])))
		if before && after {
			return true
		}
		i = start + 1
	}
}

// isAddrChar reports whether c may continue an address's local part or domain (RFC 5322 atext and dot).
func isAddrChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 0x80 || strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0
}

// asciiLower lower-cases ASCII letters only, as SQL lower() does in SQLite.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// WriteExport writes, as one JSON document (DataSubject), every record naming address: the customers
// whose contact it is, its suppression entries, and the messages it sent (with all their recipients and
// attempts) or received (with its own recipient entries and attempts only: the other recipients are other
// people's data). Messages are streamed one at a time. requester is logged for the audit.
func (s *Subjects) WriteExport(ctx context.Context, address, requester string, w io.Writer) error {
	if err := bounce.CheckAddress(address); err != nil {
		return err
	}
	msgs, err := find(ctx, s.DB.R, address)
	if err != nil {
		return err
	}
	var contacts []Contact
	if err := store.Each(ctx, s.DB.R, `SELECT id, name, contact_email FROM customers WHERE lower(contact_email) = lower(?) ORDER BY id`,
		[]any{address}, func(r *sql.Rows) error {
			var c Contact
			if err := r.Scan(&c.CustomerID, &c.Name, &c.ContactEmail); err != nil {
				return err
			}
			contacts = append(contacts, c)
			return nil
		}); err != nil {
		return err
	}
	sups, err := s.Suppressions.ForAddress(ctx, address)
	if err != nil {
		return err
	}
	s.log().Info("data subject: export", "subject_sha256", SubjectHash(address), "requested_by", requester,
		"messages", len(msgs), "customers", len(contacts), "suppressions", len(sups))

	// The head of the document, then the messages one by one, then its end.
	head, err := json.Marshal(DataSubject{Address: address, ExportedAt: s.now().UTC(), Customers: nonNil(contacts),
		Suppressions: sups})
	if err != nil {
		return err
	}
	// head ends with `"messages":null}`: the array is written in its place.
	head = head[:len(head)-len(`null}`)]
	if _, err := w.Write(append(head, '[', '\n')); err != nil {
		return err
	}
	ids := make([]string, 0, len(msgs))
	for id := range msgs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	first := true
	for _, id := range ids {
		t, err := msglog.Trace(ctx, s.DB, id)
		if err != nil {
			if errors.Is(err, msglog.ErrNotFound) {
				continue // deleted meanwhile
			}
			return err
		}
		if inv := msgs[id]; !inv.sent {
			ownOnly(t, inv.rcpts)
		}
		b, err := json.Marshal(t)
		if err != nil {
			return err
		}
		if !first {
			if _, err := w.Write([]byte(",\n")); err != nil {
				return err
			}
		}
		first = false
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	_, err = w.Write([]byte("\n]}\n"))
	return err
}

func nonNil(c []Contact) []Contact {
	if c == nil {
		return []Contact{}
	}
	return c
}

// ownOnly keeps in t the recipients and attempts of the given indexes only.
func ownOnly(t *msglog.MessageTrace, own map[int]bool) {
	rs := t.Recipients[:0]
	for _, r := range t.Recipients {
		if own[r.Index] {
			rs = append(rs, r)
		}
	}
	t.Recipients = rs
	as := t.Attempts[:0]
	for _, a := range t.Attempts {
		if own[a.RcptIndex] {
			as = append(as, a)
		}
	}
	t.Attempts = as
}

// Erase deletes, in one transaction, every record naming address, and logs who asked (requester) with the
// address's SubjectHash:
//   - a message whose every recipient is the subject is deleted whole, with its recipients and attempts;
//   - from a message with other recipients, the subject's recipient entries and their attempts are deleted,
//     and when the subject sent it, its sender, header From and subject become Erased; the address is also
//     replaced by Erased in the replies and reason the message keeps, and its stored header prefix (which
//     names a recipient) is cleared;
//   - its suppression entries are deleted, and a customer contact e-mail that is the address is blanked.
//
// A message still being delivered (queued, deferred or held) or in quarantine is left untouched and listed in
// MessagesPending: erase again once it is finished, or delete it from the queue (or the quarantine) first. A
// quarantined message was accepted with 250 and is pending like a queued one: its rows and its content in the
// spool stay together until it is released or deleted (docs/analysis.md).
func (s *Subjects) Erase(ctx context.Context, address, requester string) (*Erasure, error) {
	if err := bounce.CheckAddress(address); err != nil {
		return nil, err
	}
	out := &Erasure{Address: address, ContactsBlanked: []string{}, MessagesPending: []string{}}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		*out = Erasure{Address: address, ContactsBlanked: []string{}, MessagesPending: []string{}}
		msgs, err := find(ctx, tx, address)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(msgs))
		for id := range msgs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if err := eraseMessage(ctx, tx, id, msgs[id], address, out); err != nil {
				return err
			}
		}
		if out.SuppressionsDeleted, err = bounce.DeleteAddress(tx, address); err != nil {
			return err
		}
		out.ContactsBlanked, err = customer.BlankContact(ctx, tx, address, s.now())
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log().Info("data subject: erased", "subject_sha256", SubjectHash(address), "requested_by", requester,
		"messages_deleted", out.MessagesDeleted, "messages_blanked", out.MessagesBlanked,
		"recipients_deleted", out.RecipientsDeleted, "attempts_deleted", out.AttemptsDeleted,
		"suppressions_deleted", out.SuppressionsDeleted, "contacts_blanked", len(out.ContactsBlanked),
		"messages_pending", len(out.MessagesPending))
	return out, nil
}

// eraseMessage erases the subject from message id.
func eraseMessage(ctx context.Context, tx *sql.Tx, id string, inv *involvement, address string, out *Erasure) error {
	var held bool
	var status string
	var pending, others int
	err := tx.QueryRowContext(ctx, `SELECT held, status, (SELECT COUNT(*) FROM recipients r WHERE r.message_id = m.id AND r.status IN ('queued', 'deferred'))
		FROM messages m WHERE m.id = ?`, id).Scan(&held, &status, &pending)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if held || pending > 0 || status == queue.StatusQuarantined {
		out.MessagesPending = append(out.MessagesPending, id)
		return nil
	}
	var red queue.Redaction
	if err := store.Each(ctx, tx, `SELECT idx FROM recipients WHERE message_id = ?`, []any{id}, func(r *sql.Rows) error {
		var idx int
		if err := r.Scan(&idx); err != nil {
			return err
		}
		if inv.rcpts[idx] {
			red.Recipients = append(red.Recipients, idx)
		} else {
			others++
		}
		return nil
	}); err != nil {
		return err
	}
	if others == 0 {
		d, err := queue.Redact(ctx, tx, id, queue.Redaction{Whole: true})
		if err != nil {
			return err
		}
		out.MessagesDeleted += d.Messages
		return nil
	}
	// What the message keeps may quote the address: replies, the refusal reason, the stored header prefix.
	red.Sender, red.Quotes, red.Mark = inv.sent, []string{address, asciiLower(address)}, Erased
	d, err := queue.Redact(ctx, tx, id, red)
	if err != nil {
		return err
	}
	out.RecipientsDeleted += d.Recipients
	out.AttemptsDeleted += d.Attempts
	if inv.sent {
		out.MessagesBlanked++
	}
	return nil
}
