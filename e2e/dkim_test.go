package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"easymail/internal/api"
	"easymail/internal/resolver"
	"easymail/internal/testkit"
)

// dkimKeys returns a domain's keys, through the CLI.
func (r *relay) dkimKeys(t *testing.T, args ...string) api.DomainDKIM {
	t.Helper()
	var d api.DomainDKIM
	out := r.cli(t, append(append([]string{"customer", "domain"}, args...), "--json")...)
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("%v printed %q: %v", args, out, err)
	}
	return d
}

// verifyAt verifies the DKIM signatures of data against the fake DNS.
func verifyAt(t *testing.T, d *testkit.DNS, data []byte) []*dkim.Verification {
	t.Helper()
	res, err := resolver.New([]string{d.Addr()}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			txts, err := res.LookupTXT(context.Background(), name)
			if errors.Is(err, resolver.ErrNotFound) {
				return nil, errors.New("no key record at " + name)
			}
			return txts, err
		},
	})
	if err != nil {
		t.Fatalf("verifying: %v\n%s", err, data)
	}
	return vs
}

// TestPostfixRelaysSignedMessages sends mail through a real Postfix (the customer's server) relaying to the
// easymail binary, and verifies the RSA and Ed25519 signatures of what reaches the MX.
func TestPostfixRelaysSignedMessages(t *testing.T) {
	need(t, "postfix")
	w := newWorld(t)
	mx := w.mx(t, "dest.test", 11)
	r := w.start(t, t.TempDir())
	id := r.customer(t, "Acme", "acme.test", "127.0.0.50")

	// Publish the RSA key given at provisioning; add an Ed25519 key, publish it and have it checked now.
	keys := r.dkimKeys(t, "dkim", id, "acme.test")
	if len(keys.Keys) != 1 || keys.Keys[0].State != "active" || keys.Keys[0].Algorithm != "rsa" {
		t.Fatalf("keys after provisioning %+v", keys)
	}
	w.dns.AddTXT(keys.Keys[0].Record.Name, keys.Keys[0].Record.Value)
	keys = r.dkimKeys(t, "add-ed25519", id, "acme.test")
	var ed api.DKIMKey
	for _, k := range keys.Keys {
		if k.Algorithm == "ed25519" {
			ed = k
		}
	}
	if ed.State != "pending" {
		t.Fatalf("Ed25519 key %+v, want pending", ed)
	}
	w.dns.AddTXT(ed.Record.Name, ed.Record.Value)
	keys = r.dkimKeys(t, "check-dkim", id, "acme.test")
	active := 0
	for _, k := range keys.Keys {
		if k.State == "active" {
			active++
		}
	}
	if active != 2 {
		t.Fatalf("keys after the check %+v, want two active", keys)
	}

	pf := testkit.StartPostfix(t, testkit.PostfixOptions{
		ListenAddr: "127.0.0.50:0",
		RelayHost:  "[127.0.0.1]:" + strings.Split(r.smtpAddr, ":")[1],
		Extra:      map[string]string{"smtp_bind_address": "127.0.0.50", "smtp_tls_security_level": "may"},
	})
	bodies := []string{
		"plain ASCII body\nsecond line",
		"8-bit body: Grüße aus Luxemburg — ✓",
	}
	for i, body := range bodies {
		out, err := swaks(t, "--server", pf.Addr(), "--from", "alice@acme.test", "--to", fmt.Sprintf("user%d@dest.test", i),
			"--h-From", "Alice <alice@acme.test>", "--h-Subject", fmt.Sprint("signed via postfix ", i),
			"--add-header", "MIME-Version: 1.0", "--add-header", "Content-Type: text/plain; charset=utf-8",
			"--body", body)
		if err != nil {
			t.Fatalf("swaks to postfix: %v\n%s", err, out)
		}
	}
	got := mx.WaitMessages(t, len(bodies), 60*time.Second)
	for _, m := range got {
		vs := verifyAt(t, w.dns, m.Data)
		algs := map[string]bool{}
		for _, v := range vs {
			if v.Err != nil || v.Domain != "acme.test" {
				t.Fatalf("signature of %s does not verify: %v\n%s", v.Domain, v.Err, m.Data)
			}
		}
		h, _, _ := strings.Cut(strings.ReplaceAll(string(m.Data), "\r\n ", " "), "\r\n\r\n")
		for _, f := range strings.Split(h, "\r\n") {
			if strings.HasPrefix(f, "DKIM-Signature:") {
				for _, a := range []string{"rsa-sha256", "ed25519-sha256"} {
					if strings.Contains(f, "a="+a) {
						algs[a] = true
					}
				}
			}
		}
		if len(vs) != 2 || !algs["rsa-sha256"] || !algs["ed25519-sha256"] {
			t.Fatalf("%d signatures (%v), want RSA and Ed25519:\n%s", len(vs), algs, m.Data)
		}
	}

	// The readiness report, from the CLI.
	w.dns.AddTXT("acme.test", "v=spf1 include:_spf.e2e.test -all")
	w.dns.AddTXT("_spf.e2e.test", "v=spf1 ip4:127.0.0.3 -all")
	w.dns.AddTXT("_dmarc.acme.test", "v=DMARC1; p=reject")
	out := r.cli(t, "customer", "domain", "readiness", id, "acme.test")
	checks := regexp.MustCompile(`(?m)^(SPF|DKIM|DMARC|unsubscribe) +(pass|warn|fail|error) `).FindAllStringSubmatch(out, -1)
	if !regexp.MustCompile(`(?m)^ready:\s+true$`).MatchString(out) || len(checks) != 4 {
		t.Fatalf("readiness:\n%s", out)
	}
	for _, c := range checks {
		if c[2] != "pass" {
			t.Fatalf("readiness check %s: %s\n%s", c[1], c[2], out)
		}
	}
}
