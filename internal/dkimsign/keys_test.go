package dkimsign

import (
	"crypto/ed25519"
	"crypto/rsa"
	"strings"
	"testing"
	"time"
)

func TestGenerateAndParse(t *testing.T) {
	for _, alg := range []string{RSA, Ed25519} {
		k, err := generate(alg, 1024)
		if err != nil {
			t.Fatal(err)
		}
		s, err := parsePrivate(k.privatePEM)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := publicValue(s.Public())
		if err != nil || pub != k.public {
			t.Fatalf("%s: public key after a PEM round trip %q (%v), want %q", alg, pub, err, k.public)
		}
		switch alg {
		case RSA:
			if s.(*rsa.PrivateKey).N.BitLen() != 1024 {
				t.Fatal("RSA key size")
			}
		case Ed25519:
			if _, ok := s.(ed25519.PrivateKey); !ok || len(k.public) != 44 {
				t.Fatalf("Ed25519 key %T, p= %q", s, k.public)
			}
		}
		if !strings.HasPrefix(k.privatePEM, "-----BEGIN PRIVATE KEY-----") {
			t.Fatal("private key is not PKCS#8 PEM")
		}
	}
	if _, err := generate("dsa", 0); err == nil {
		t.Fatal("unknown algorithm accepted")
	}
	if _, err := parsePrivate("junk"); err == nil {
		t.Fatal("junk parsed as a key")
	}
}

func TestSelectors(t *testing.T) {
	now := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	taken := map[string]bool{}
	is := func(s string) bool { return taken[s] }
	for _, want := range []string{"em202611", "em202611-2", "em202611-3"} {
		got := newSelector(RSA, now, is)
		if got != want {
			t.Fatalf("selector %q, want %q", got, want)
		}
		taken[got] = true
	}
	if got := newSelector(Ed25519, now, is); got != "em202611e" {
		t.Fatalf("Ed25519 selector %q", got)
	}
	if RecordName("em202611", "acme.test") != "em202611._domainkey.acme.test" {
		t.Fatal("record name")
	}
}

func TestMatchRecord(t *testing.T) {
	for _, tc := range []struct {
		txts []string
		alg  string
		ok   bool
		why  string
	}{
		{[]string{"v=DKIM1; k=rsa; p=ABC"}, RSA, true, ""},
		{[]string{"v=DKIM1; p=AB C"}, RSA, true, ""},
		{[]string{"k=ed25519; p=ABC"}, Ed25519, true, ""},
		{[]string{"v=DKIM1; k=rsa; p=ABC"}, Ed25519, false, "k=rsa"},
		{[]string{"v=DKIM1; k=rsa; p=XYZ"}, RSA, false, "different public key"},
		{[]string{"v=DKIM1; k=rsa; p="}, RSA, false, "revoked"},
		{[]string{"v=spf1 -all"}, RSA, false, "not a DKIM1"},
		{[]string{"k=rsa; t=y"}, RSA, false, "no p= tag"},
		{[]string{"v=DKIM2; p=ABC"}, RSA, false, "not a DKIM1"},
		{[]string{"v=DKIM1; p=ABC", "other"}, RSA, false, "several TXT records"},
		{nil, RSA, false, "no TXT record"},
	} {
		ok, why := matchRecord(tc.txts, tc.alg, "ABC")
		if ok != tc.ok || !strings.Contains(why, tc.why) {
			t.Errorf("matchRecord(%q, %s) = %v %q, want %v %q", tc.txts, tc.alg, ok, why, tc.ok, tc.why)
		}
	}
}

func TestNewChecksOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("no DB accepted")
	}
	f := newFixture(t, nil)
	mk := testMasterKey(t)
	if _, err := New(Options{DB: f.db, Resolver: f.res}); err == nil {
		t.Fatal("no master key accepted")
	}
	if _, err := New(Options{DB: f.db, Resolver: f.res, MasterKey: mk, RSABits: 512}); err == nil {
		t.Fatal("512-bit RSA accepted")
	}
	if _, err := New(Options{DB: f.db, Resolver: f.res, MasterKey: mk, RotateEvery: -time.Hour}); err == nil {
		t.Fatal("negative rotation accepted")
	}
}
