package customer

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOnboardingTokens(t *testing.T) {
	dir := t.TempDir()
	o, err := LoadOnboarding(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, OnboardingKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Fatalf("key file mode %v size %d", fi.Mode(), fi.Size())
	}
	now := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	o.Now = func() time.Time { return now }

	link := o.Link("http://relay.example.net:8025/", "CUST1")
	prefix := "http://relay.example.net:8025/onboard/"
	if !strings.HasPrefix(link.URL, prefix) {
		t.Fatalf("url %q", link.URL)
	}
	if want := now.Add(DefaultOnboardingValidity); !link.ExpiresAt.Equal(want) {
		t.Fatalf("expires %v, want %v", link.ExpiresAt, want)
	}
	tok := strings.TrimPrefix(link.URL, prefix)
	id, err := o.Verify(tok)
	if err != nil || id != "CUST1" {
		t.Fatalf("Verify = %q, %v", id, err)
	}

	// The same key is used after a restart.
	o2, err := LoadOnboarding(dir)
	if err != nil {
		t.Fatal(err)
	}
	o2.Now = o.Now
	if id, err := o2.Verify(tok); err != nil || id != "CUST1" {
		t.Fatalf("after reload: %q, %v", id, err)
	}

	// Another key does not verify it.
	o3, err := LoadOnboarding(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o3.Now = o.Now
	if _, err := o3.Verify(tok); !errors.Is(err, ErrBadOnboardingToken) {
		t.Fatalf("other key: %v", err)
	}

	// Tampering with the customer id or the expiry breaks the signature.
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	parts := strings.Split(string(raw), ".")
	for _, forged := range []string{
		"CUST2." + parts[1] + "." + parts[2],
		parts[0] + ".9999999999." + parts[2],
		parts[0] + "." + parts[1],
		"",
	} {
		if _, err := o.Verify(base64.RawURLEncoding.EncodeToString([]byte(forged))); !errors.Is(err, ErrBadOnboardingToken) {
			t.Errorf("forged %q: %v", forged, err)
		}
	}
	if _, err := o.Verify("!!!"); !errors.Is(err, ErrBadOnboardingToken) {
		t.Errorf("garbage: %v", err)
	}

	// Expired.
	now = now.Add(DefaultOnboardingValidity)
	if _, err := o.Verify(tok); !errors.Is(err, ErrBadOnboardingToken) {
		t.Fatalf("expired token: %v", err)
	}
}

func TestOnboardingBadKey(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, OnboardingKeyFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOnboarding(dir); err == nil {
		t.Fatal("a truncated key was accepted")
	}
}
