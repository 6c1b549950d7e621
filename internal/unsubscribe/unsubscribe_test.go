package unsubscribe

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"easymail/internal/store"
)

func newService(t *testing.T, dir string) *Service {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := New(Options{DB: db, DataDir: dir, PublicURL: "https://relay.example.net/"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokens: a token names its claims and survives a restart (the key is kept); a token changed in any
// part, signed with another key, or naming other claims is refused.
func TestTokens(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir)
	c := Claims{CustomerID: "cust1", QueueID: "Q1", Recipient: "Bob@Dest.example"}
	tok := s.Token(c)
	got, err := newService(t, dir).Parse(tok)
	if err != nil || got != (Claims{CustomerID: "cust1", QueueID: "Q1", Recipient: "bob@dest.example"}) {
		t.Fatalf("Parse = %+v, %v", got, err)
	}
	lu, lup := s.Fields(c)
	if lu != "<https://relay.example.net/u/"+tok+">" || lup != "List-Unsubscribe=One-Click" {
		t.Fatalf("Fields = %q, %q", lu, lup)
	}
	payload, sig, _ := strings.Cut(tok, ".")
	other := base64.RawURLEncoding.EncodeToString([]byte("cust2\nQ1\nbob@dest.example"))
	for _, bad := range []string{
		"", tok + "x", payload, "." + sig, other + "." + sig, payload + "." + sig[:len(sig)-2],
		newService(t, t.TempDir()).Token(c),
		base64.RawURLEncoding.EncodeToString([]byte("a\nb")) + "." + sig,
	} {
		if _, err := s.Parse(bad); err != ErrBadToken {
			t.Errorf("Parse(%q) = %v, want ErrBadToken", bad, err)
		}
	}
}
