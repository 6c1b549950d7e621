package dkimsign

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const testMsg = "From: Alice <alice@acme.test>\r\n" +
	"To: bob@dest.test\r\n" +
	"Subject: hello\r\n" +
	"Date: Fri, 20 Nov 2026 10:00:00 +0000\r\n" +
	"Message-Id: <1@acme.test>\r\n" +
	"\r\n" +
	"Hello,\r\n  trailing spaces and   runs   \r\n\r\n\r\n"

// dkimParams returns the tags of each DKIM-Signature field of msg, in order.
func dkimParams(t *testing.T, msg string) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, f := range strings.Split(strings.SplitN(msg, "\r\n\r\n", 2)[0], "\r\n") {
		if strings.HasPrefix(f, " ") || strings.HasPrefix(f, "\t") {
			if len(out) > 0 && out[len(out)-1]["_open"] == "1" {
				out[len(out)-1]["_raw"] += f
			}
			continue
		}
		if len(out) > 0 {
			delete(out[len(out)-1], "_open")
		}
		if v, ok := strings.CutPrefix(f, "DKIM-Signature:"); ok {
			out = append(out, map[string]string{"_raw": v, "_open": "1"})
		}
	}
	for _, p := range out {
		delete(p, "_open")
		for k, v := range parseTags(p["_raw"]) {
			p[k] = strings.Join(strings.Fields(v), "")
		}
	}
	return out
}

func TestSignRSAVerifies(t *testing.T) {
	f := newFixture(t, nil)
	id := f.customer(t, "Acme", "acme.test")
	f.publish(f.key(t, "acme.test", StateActive, RSA))

	signed, s := f.sign(t, id, "alice@acme.test", testMsg)
	vs := f.verify(t, signed)
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "acme.test" {
		t.Fatalf("verifications %+v\n%s", vs, signed)
	}
	p := dkimParams(t, signed)[0]
	if p["a"] != "rsa-sha256" || p["c"] != "relaxed/relaxed" || p["s"] != f.key(t, "acme.test", StateActive, RSA).Selector {
		t.Fatalf("signature tags %v", p)
	}
	// From is over-signed: listed once more than it occurs.
	h := strings.Split(strings.ToLower(p["h"]), ":")
	n := 0
	for _, k := range h {
		if k == "from" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("h=%s lists From %d times, want 2", p["h"], n)
	}
	for _, want := range []string{"to", "subject", "date", "message-id"} {
		if !slices.Contains(h, want) {
			t.Errorf("h=%s lacks %s", p["h"], want)
		}
	}
	r := s.Result
	if r.FromDomain != "acme.test" || r.DKIMDomain != "acme.test" || !r.DKIMAligned || !r.SPFAligned || !r.DMARCAligned {
		t.Fatalf("result %+v", r)
	}

	// A From added after signing breaks the signature (over-signing at work), as does a changed body.
	tampered := strings.Replace(signed, "From: Alice", "From: Mallory <m@evil.test>\r\nFrom: Alice", 1)
	if vs := f.verify(t, tampered); vs[0].Err == nil {
		t.Fatal("a second From did not break the signature")
	}
	if vs := f.verify(t, strings.Replace(signed, "Hello,", "Hullo,", 1)); vs[0].Err == nil {
		t.Fatal("a changed body did not break the signature")
	}
	// Relaxed canonicalization: whitespace changes in transit are tolerated.
	if vs := f.verify(t, strings.Replace(signed, "Subject: hello", "Subject:   hello", 1)); vs[0].Err != nil {
		t.Fatalf("relaxed header canonicalization: %v", vs[0].Err)
	}
}

func TestSignRSAAndEd25519(t *testing.T) {
	f := newFixture(t, nil)
	id := f.customer(t, "Acme", "acme.test")
	if err := f.m.AddEd25519(context.Background(), "acme.test"); err != nil {
		t.Fatal(err)
	}
	ed := f.key(t, "acme.test", StatePending, Ed25519)
	if !strings.HasSuffix(ed.Selector, "e") || !strings.Contains(ed.Record.Value, "k=ed25519") {
		t.Fatalf("ed25519 key %+v", ed)
	}
	// Not signing with it until its record is there.
	signed, _ := f.sign(t, id, "alice@acme.test", testMsg)
	if n := len(dkimParams(t, signed)); n != 1 {
		t.Fatalf("%d signatures before the Ed25519 record is published, want 1", n)
	}
	f.publish(ed)
	f.publish(f.key(t, "acme.test", StateActive, RSA))
	f.m.Tick(context.Background())
	f.key(t, "acme.test", StateActive, Ed25519)

	signed, s := f.sign(t, id, "alice@acme.test", testMsg)
	vs := f.verify(t, signed)
	if len(vs) != 2 {
		t.Fatalf("%d verifications, want 2:\n%s", len(vs), signed)
	}
	algs := map[string]bool{}
	for i, p := range dkimParams(t, signed) {
		if vs[i].Err != nil {
			t.Fatalf("signature %d (%s): %v", i, p["a"], vs[i].Err)
		}
		algs[p["a"]] = true
	}
	if !algs["rsa-sha256"] || !algs["ed25519-sha256"] || len(s.Result.Selectors) != 2 {
		t.Fatalf("algorithms %v, selectors %v", algs, s.Result.Selectors)
	}
	if err := f.m.AddEd25519(context.Background(), "acme.test"); err != ErrHasEd25519 {
		t.Fatalf("second AddEd25519: %v, want ErrHasEd25519", err)
	}
}

func TestSigningDomainChoice(t *testing.T) {
	f := newFixture(t, nil)
	acme := f.customer(t, "Acme", "acme.test", "acme-mail.test", "bücher.test")
	other := f.customer(t, "Other", "other.test")
	for _, d := range []string{"acme.test", "acme-mail.test", "xn--bcher-kva.test", "other.test"} {
		f.publish(f.key(t, d, StateActive, RSA))
	}
	for _, tc := range []struct {
		name, customer, sender, from string
		dkimDomain                   string
		dkimAligned, spfAligned      bool
	}{
		{"From domain", acme, "alice@acme.test", "alice@acme.test", "acme.test", true, true},
		{"subdomain signs with the registered parent", acme, "news@mail.acme.test", "news@mail.acme.test", "acme.test", true, true},
		{"upper case", acme, "alice@acme.test", "Alice <alice@ACME.TEST>", "acme.test", true, true},
		{"From of another domain of the customer", acme, "alice@acme.test", "alice@acme-mail.test", "acme-mail.test", true, false},
		{"internationalized domain: d= is the A-label", acme, "jürgen@bücher.test", "Jürgen <jürgen@BÜCHER.test>", "xn--bcher-kva.test", true, true},
		{"null sender", acme, "", "MAILER-DAEMON@acme.test", "acme.test", true, false},
		{"foreign From: signed with the sender's domain, not aligned", acme, "alice@acme.test", "ceo@bank.test", "acme.test", false, false},
		{"another customer's domain is never used", acme, "x@other.test", "x@other.test", "", false, true},
		{"no From", other, "x@other.test", "", "other.test", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := strings.Replace(testMsg, "From: Alice <alice@acme.test>\r\n", "", 1)
			if tc.from != "" {
				msg = "From: " + tc.from + "\r\n" + msg
			}
			signed, s := f.sign(t, tc.customer, tc.sender, msg)
			r := s.Result
			if r.DKIMDomain != tc.dkimDomain || r.DKIMAligned != tc.dkimAligned || r.SPFAligned != tc.spfAligned ||
				r.DMARCAligned != (tc.dkimAligned || tc.spfAligned) {
				t.Fatalf("result %+v, want d=%q dkim aligned %v spf aligned %v", r, tc.dkimDomain, tc.dkimAligned, tc.spfAligned)
			}
			if tc.dkimDomain == "" {
				if strings.Contains(signed, "DKIM-Signature") {
					t.Fatalf("signed although it should not:\n%s", signed)
				}
				return
			}
			if tc.from == "" {
				// A signer must sign From (RFC 6376 §5.4); go-msgauth signs its absence, which verifies.
				return
			}
			vs := f.verify(t, signed)
			if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != tc.dkimDomain {
				t.Fatalf("verifications %+v", vs)
			}
		})
	}
}

func TestHeaderKeys(t *testing.T) {
	h := textproto.Header{}
	h.Add("From", "a@x.test")
	h.Add("To", "b@y.test")
	h.Add("Received", "from a by b")
	h.Add("X-Mailer", "m")
	h.Add("List-Unsubscribe", "<https://x.test/u>")
	h.Add("References", "<1@x> <2@x>")
	h.Add("References", "<3@x>")
	got := strings.Join(headerKeys(h), ":")
	want := "From:From:Reply-To:Subject:Date:To:To:Cc:Message-ID:References:References:MIME-Version:Content-Type:" +
		"Content-Transfer-Encoding:List-Unsubscribe:List-Unsubscribe:List-Unsubscribe-Post"
	if got != want {
		t.Fatalf("h=\n%s\nwant\n%s", got, want)
	}
}

// TestHeaderKeysBounded: a header bomb of 55,000 To: fields gets a bounded h= (signing it in full took 37 s),
// the From is still over-signed, and the signature over the last To: fields verifies.
func TestHeaderKeysBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: Alice <alice@acme.test>\r\nSubject: bomb\r\n")
	for i := range 55000 {
		fmt.Fprintf(&b, "To: r%d@dest.test\r\n", i)
	}
	msg := b.String() + "\r\nbody\r\n"
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(msg)))
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, k := range headerKeys(h) {
		count[k]++
	}
	if count["To"] != maxSignedOccurrences || count["From"] != 2 || count["Subject"] != 2 {
		t.Fatalf("h= counts %v, want %d To, 2 From, 2 Subject", count, maxSignedOccurrences)
	}

	f := newFixture(t, nil)
	id := f.customer(t, "Acme", "acme.test")
	f.publish(f.key(t, "acme.test", StateActive, RSA))
	signed, _ := f.sign(t, id, "alice@acme.test", msg)
	p := dkimParams(t, signed)[0]
	n := 0
	for _, k := range strings.Split(p["h"], ":") {
		if strings.EqualFold(k, "To") {
			n++
		}
	}
	if n != maxSignedOccurrences {
		t.Fatalf("h=%s lists To %d times, want %d", p["h"], n, maxSignedOccurrences)
	}
	if vs := f.verify(t, signed); len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("verifications %+v", vs)
	}
}

func TestAbortReleasesSigners(t *testing.T) {
	f := newFixture(t, nil)
	id := f.customer(t, "Acme", "acme.test")
	h := textproto.Header{}
	h.Add("From", "alice@acme.test")
	s := f.m.Begin(id, "alice@acme.test", h)
	if !s.Signs() {
		t.Fatal("not signing")
	}
	// The message is abandoned half-way: Abort releases the signer without a signature.
	s.Writer(&strings.Builder{}).Write([]byte("From: alice@acme.test\r\n"))
	s.Abort()
	if s.Signs() {
		t.Fatal("still signing after Abort")
	}
}

func TestSigningMetrics(t *testing.T) {
	f := newFixture(t, nil)
	id := f.customer(t, "Acme", "acme.test")
	f.sign(t, id, "alice@acme.test", testMsg)
	f.sign(t, "someone else", "alice@acme.test", testMsg)
	f.sign(t, "someone else", "x@bank.test", testMsg)
	f.m.Tick(context.Background())
	for _, c := range []struct {
		got  float64
		want float64
		name string
	}{
		{value(t, f.m.m.messages.WithLabelValues("signed")), 1, "signed"},
		{value(t, f.m.m.messages.WithLabelValues("unsigned")), 2, "unsigned"},
		{value(t, f.m.m.aligned.WithLabelValues("aligned")), 2, "aligned"},
		{value(t, f.m.m.aligned.WithLabelValues("unaligned")), 1, "unaligned"},
		{value(t, f.m.m.keys.WithLabelValues("active")), 1, "active keys"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
