package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestDeliveryTLS(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "easymail.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("hostname: relay.example.net\ndns:\n  trust_ad: true\ndelivery:\n  tls_policy: encrypt\n  tls_policies:\n    Bank.Example: verify\n  mta_sts:\n    enabled: false\n")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Delivery
	if d.TLSPolicy != "encrypt" || d.TLSPolicies["bank.example"] != "verify" || d.MTASTS.Enabled || !c.DNS.TrustAD ||
		!d.TLSRPT.Enabled || d.TLSRPT.Contact != "postmaster@relay.example.net" {
		t.Fatalf("delivery TLS = %+v, trust_ad %v", d.DeliveryTLS, c.DNS.TrustAD)
	}
	for body, key := range map[string]string{
		"delivery:\n  tls_policy: strict\n":                   "delivery.tls_policy",
		"delivery:\n  tls_policies:\n    a.example: always\n": "delivery.tls_policies.a.example",
		"delivery:\n  tls_ca_file: /nonexistent/ca.pem\n":     "delivery.tls_ca_file",
		"delivery:\n  mta_sts:\n    refresh: 0s\n":            "delivery.mta_sts.fetch_timeout",
	} {
		write(body)
		_, err := Load(path)
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != key {
			t.Errorf("%q: %v, want an error for %s", body, err, key)
		}
	}
}
