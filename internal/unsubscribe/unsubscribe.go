// Package unsubscribe is one-click unsubscription (RFC 8058) for customers that delegate it to the relay
// (docs/events.md): it makes the List-Unsubscribe and List-Unsubscribe-Post fields added to their messages,
// whose URI carries a token signed with HMAC-SHA256 naming the customer, the message and the recipient, and
// it serves POST /u/TOKEN, which puts the recipient on the customer's suppression list (source unsubscribe)
// and emits a suppressed event, once.
package unsubscribe

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"easymail/internal/bounce"
	"easymail/internal/customer"
	"easymail/internal/events"
	"easymail/internal/store"
)

// KeyFile is the name, in the data directory, of the unsubscribe links' signing key.
const KeyFile = "unsubscribe.key"

// PathPrefix is the path of the links under the public URL: PUBLIC_URL/u/TOKEN.
const PathPrefix = "/u/"

// ErrBadToken is a token that is malformed or wrongly signed.
var ErrBadToken = errors.New("invalid unsubscribe link")

// Options configures a Service.
type Options struct {
	// DB holds the suppression lists; required.
	DB *store.DB
	// DataDir holds the signing key (KeyFile), created at first use; required.
	DataDir string
	// PublicURL is the base of the links (api.public_url), e.g. "https://relay.example.net"; required.
	PublicURL string
	// Bus receives the suppressed events; nil emits none.
	Bus *events.Bus
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives a record per unsubscription; nil discards.
	Logger *slog.Logger
}

// Service makes the header fields and honours the requests. It is safe for concurrent use.
type Service struct {
	o   Options
	key []byte
}

// New loads (or creates) the signing key and returns the service.
func New(o Options) (*Service, error) {
	key, err := customer.LoadKey(filepath.Join(o.DataDir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("unsubscribe key: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	return &Service{o: o, key: key}, nil
}

// Claims are what a token names.
type Claims struct {
	CustomerID, QueueID, Recipient string
}

// Token returns the token for c: base64url(customer "\n" queue id "\n" recipient) "." base64url(HMAC-SHA256
// of the same, keyed with the service's key). The recipient is readable in it: the link is in a message
// to that recipient.
func (s *Service) Token(c Claims) string {
	payload := c.CustomerID + "\n" + c.QueueID + "\n" + strings.ToLower(c.Recipient)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(s.mac(payload))
}

func (s *Service) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("easymail-unsubscribe\n" + payload))
	return m.Sum(nil)
}

// Parse verifies a token and returns its claims, or ErrBadToken.
func (s *Service) Parse(token string) (Claims, error) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return Claims{}, ErrBadToken
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.mac(string(payload))) {
		return Claims{}, ErrBadToken
	}
	parts := strings.Split(string(payload), "\n")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return Claims{}, ErrBadToken
	}
	return Claims{CustomerID: parts[0], QueueID: parts[1], Recipient: parts[2]}, nil
}

// Fields returns the values of List-Unsubscribe ("<https://PUBLIC_URL/u/TOKEN>") and List-Unsubscribe-Post
// ("List-Unsubscribe=One-Click") for c (RFC 8058 §3.1).
func (s *Service) Fields(c Claims) (listUnsubscribe, listUnsubscribePost string) {
	return "<" + s.o.PublicURL + PathPrefix + s.Token(c) + ">", "List-Unsubscribe=One-Click"
}

// Unsubscribe puts the recipient of c on the customer's suppression list and emits a suppressed event, in
// one transaction. A recipient already unsubscribed is left as is (no second event): the request is
// idempotent. It returns ErrBadToken when the customer no longer exists.
func (s *Service) Unsubscribe(ctx context.Context, c Claims) error {
	now := s.o.Now()
	var ev *events.Event
	err := s.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		ev = nil
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM customers WHERE id = ?`, c.CustomerID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrBadToken
		}
		var source string
		err := tx.QueryRowContext(ctx, `SELECT source FROM suppressions WHERE customer_id = ? AND address = lower(?)`,
			c.CustomerID, c.Recipient).Scan(&source)
		if err == nil && source == bounce.SourceUnsubscribe {
			return nil
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := bounce.SuppressAs(tx, bounce.SourceUnsubscribe, c.CustomerID, c.Recipient, c.QueueID,
			"one-click unsubscription (RFC 8058)", now); err != nil {
			return err
		}
		var msgID string
		tx.QueryRowContext(ctx, `SELECT message_id FROM messages WHERE id = ?`, c.QueueID).Scan(&msgID)
		ev = &events.Event{Event: events.Suppressed, CustomerID: c.CustomerID, QueueID: c.QueueID, MessageID: msgID,
			Recipient: c.Recipient, Timestamp: now, Source: bounce.SourceUnsubscribe}
		if s.o.Bus == nil {
			return nil
		}
		return s.o.Bus.Emit(tx, ev)
	})
	if err != nil {
		return err
	}
	if ev != nil {
		if s.o.Bus != nil {
			s.o.Bus.Published(*ev)
		}
		s.o.Logger.Info("unsubscribe: recipient unsubscribed", "customer", c.CustomerID, "queue_id", c.QueueID)
	}
	return nil
}

// maxForm bounds the body of a POST.
const maxForm = 4096

// ServeHTTP serves PathPrefix+TOKEN. POST with the form body List-Unsubscribe=One-Click (RFC 8058 §3.2)
// unsubscribes and answers 200; another body is 400, a bad token 404, with nothing said of why. GET answers a
// page with a button making the same POST (a person who opened the link), and unsubscribes nobody: RFC 8058
// §4, a GET may come from a link checker.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	token, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok || strings.Contains(token, "/") {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if _, err := s.Parse(token); err != nil {
			http.Error(w, "No such unsubscribe link.", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>Unsubscribe</title><form method="post" action="`+
			html.EscapeString(PathPrefix+token)+`"><input type="hidden" name="List-Unsubscribe" value="One-Click">`+
			`<button type="submit">Unsubscribe</button></form>`)
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil || r.PostForm.Get("List-Unsubscribe") != "One-Click" {
			http.Error(w, "The body must be List-Unsubscribe=One-Click.", http.StatusBadRequest)
			return
		}
		c, err := s.Parse(token)
		if err == nil {
			err = s.Unsubscribe(r.Context(), c)
		}
		switch {
		case errors.Is(err, ErrBadToken):
			http.Error(w, "No such unsubscribe link.", http.StatusNotFound)
		case err != nil:
			s.o.Logger.Error("unsubscribe: recording failed", "err", err)
			http.Error(w, "The unsubscription could not be recorded; try again later.", http.StatusServiceUnavailable)
		default:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "You are unsubscribed.\n")
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
	}
}
