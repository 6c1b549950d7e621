package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"easymail/internal/api"
	"easymail/internal/config"
	"easymail/internal/resolver"
	"easymail/internal/testkit"
)

// dkimConfig makes the rotation loop fast enough for a test.
func dkimConfig(c *config.Config) {
	c.DKIM.CheckInterval = 100 * time.Millisecond
	c.DKIM.RetireAfter = time.Second
}

// domainDKIM returns the keys of the env's customer's acme.test.
func (e *env) domainDKIM(t *testing.T) api.DomainDKIM {
	t.Helper()
	var d api.DomainDKIM
	e.n.API(t, "GET", "/customers/"+e.custID+"/domains/acme.test/dkim", nil, 200, &d)
	return d
}

// keyIn returns the key of acme.test in state with the algorithm, or nil.
func (e *env) keyIn(t *testing.T, state, algorithm string) *api.DKIMKey {
	t.Helper()
	var found *api.DKIMKey
	for _, k := range e.domainDKIM(t).Keys {
		if k.State == state && k.Algorithm == algorithm {
			if found != nil {
				t.Fatalf("two %s %s keys", state, algorithm)
			}
			found = &k
		}
	}
	return found
}

// waitKey waits until acme.test has a key of the selector in state.
func (e *env) waitKey(t *testing.T, selector, state string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got []string
		for _, k := range e.domainDKIM(t).Keys {
			if k.Selector == selector && k.State == state {
				return
			}
			got = append(got, k.Selector+"="+k.State)
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %s never became %s: %v", selector, state, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// publishKey puts a key's record in the fake DNS.
func (e *env) publishKey(k api.DKIMKey) {
	e.dns.AddTXT(k.Record.Name, k.Record.Value)
}

// verifyDKIM verifies the DKIM signatures of a message against the fake DNS with go-msgauth.
func verifyDKIM(t *testing.T, d *testkit.DNS, data []byte) []*dkim.Verification {
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

// sendWith sends msg with the given MAIL options (8BITMIME, SMTPUTF8) and returns the queue id.
func sendWith(t *testing.T, addr, from string, to []string, opts *smtp.MailOptions, msg string) string {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("mail.acme.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, opts); err != nil {
		t.Fatal(err)
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, msg); err != nil {
		t.Fatal(err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	return queueID(t, resp.StatusText)
}

// authTrace is the authentication part of a message's trace.
type authTrace struct {
	Status        string `json:"status"`
	FromDomain    string `json:"from_domain"`
	DKIMDomain    string `json:"dkim_domain"`
	DKIMSelectors string `json:"dkim_selectors"`
	DKIMAligned   *bool  `json:"dkim_aligned"`
	SPFAligned    *bool  `json:"spf_aligned"`
	DMARCAligned  *bool  `json:"dmarc_aligned"`
	Bulk          bool   `json:"bulk"`
	OneClick      bool   `json:"list_unsubscribe_post"`
}

// waitAuth waits until the message's authentication result is in the log (it is written after the 250).
func (e *env) waitAuth(t *testing.T, id string) authTrace {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var a authTrace
		e.n.API(t, "GET", "/messages/"+id, nil, 200, &a)
		if a.DMARCAligned != nil {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: no authentication result in the log: %+v", id, a)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// headerOf returns the header section of a message.
func headerOf(data []byte) string {
	h, _, _ := strings.Cut(string(data), "\r\n\r\n")
	return h
}

func TestDKIMSignaturesVerifyAtTheMX(t *testing.T) {
	e := newEnv(t, dkimConfig)
	mx := e.mx(t, "dest.test", 11)

	// POST /domains answered with the record; GET customer shows it too.
	var c api.Customer
	e.n.API(t, "GET", "/customers/"+e.custID, nil, 200, &c)
	if len(c.Domains) != 1 || c.Domains[0].DKIM == nil || !strings.HasPrefix(c.Domains[0].DKIM.Value, "v=DKIM1; k=rsa; p=MII") {
		t.Fatalf("customer domains %+v", c.Domains)
	}
	rsaKey := e.keyIn(t, "active", "rsa")
	if rsaKey == nil || rsaKey.Record.Name != c.Domains[0].DKIM.Name {
		t.Fatalf("active RSA key %+v, domain record %+v", rsaKey, c.Domains[0].DKIM)
	}
	e.publishKey(*rsaKey)

	// Ed25519 on request: pending until its record is published, then a second signature.
	var d api.DomainDKIM
	e.n.API(t, "POST", "/customers/"+e.custID+"/domains/acme.test/dkim/ed25519", nil, 200, &d)
	ed := e.keyIn(t, "pending", "ed25519")
	if ed == nil {
		t.Fatalf("no pending Ed25519 key: %+v", d)
	}
	e.n.API(t, "POST", "/customers/"+e.custID+"/domains/acme.test/dkim/ed25519", nil, 409, nil)
	e.publishKey(*ed)
	e.waitKey(t, ed.Selector, "active")
	// The rotation loop activates the key in the database, then loads the keys it signs with, then counts
	// them (easymail_dkim_keys): two active keys counted means they sign.
	waitFor(t, "two active DKIM keys loaded", func() bool {
		return strings.Contains(metricsText(t, e.n), `easymail_dkim_keys{state="active"} 2`+"\n")
	})

	custSig := "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=acme.test; s=corp;\r\n" +
		" h=From:Subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=Y29ycG9yYXRlIHNpZ25hdHVyZQ=="
	cases := []struct {
		name string
		from string
		opts *smtp.MailOptions
		msg  string
	}{
		{"7bit", "alice@acme.test", nil,
			message("Alice <alice@acme.test>", "bob@dest.test", "plain ASCII", "Date: Fri, 20 Nov 2026 10:00:00 +0000")},
		{"8bit", "alice@acme.test", &smtp.MailOptions{Body: smtp.Body8BitMIME},
			"From: Alice <alice@acme.test>\r\nTo: bob@dest.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
				"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
				"Grüße aus Luxemburg — 8 bits   \r\nZweite Zeile\r\n\r\n"},
		{"SMTPUTF8", "josé@acme.test", &smtp.MailOptions{Body: smtp.Body8BitMIME, UTF8: true},
			"From: José Müller <josé@acme.test>\r\nTo: bob@dest.test\r\nSubject: Überprüfung ✓\r\n" +
				"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
				"Ünïcödé body ✓\r\n"},
		{"customer's own signature kept", "alice@acme.test", nil,
			custSig + "\r\n" + message("alice@acme.test", "bob@dest.test", "pre-signed")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(mx.Messages())
			id := sendWith(t, e.n.SMTPAddr, tc.from, []string{"bob@dest.test"}, tc.opts, tc.msg)
			got := mx.WaitMessages(t, before+1, 10*time.Second)[before]
			if _, body, _ := strings.Cut(tc.msg, "\r\n\r\n"); !bytes.Contains(got.Data, []byte(body)) {
				t.Fatalf("the body did not arrive as sent:\n%s", got.Data)
			}
			h := headerOf(got.Data)
			if !strings.HasPrefix(h, "Received: ") || strings.Index(h, "DKIM-Signature:") < strings.Index(h, "by relay.easymail.test") {
				t.Fatalf("DKIM-Signature not after our Received field:\n%s", h)
			}
			vs := verifyDKIM(t, e.dns, got.Data)
			algs := map[string]bool{}
			ours := 0
			for _, v := range vs {
				if v.Domain == "acme.test" && v.Err == nil {
					ours++
				}
			}
			for _, f := range strings.Split(strings.ReplaceAll(h, "\r\n ", " "), "\r\n") {
				if strings.HasPrefix(f, "DKIM-Signature:") && strings.Contains(f, "a=ed25519-sha256") {
					algs["ed25519"] = true
				}
				if strings.HasPrefix(f, "DKIM-Signature:") && strings.Contains(f, "a=rsa-sha256") && !strings.Contains(f, "s=corp") {
					algs["rsa"] = true
				}
			}
			if ours != 2 || !algs["rsa"] || !algs["ed25519"] {
				for _, v := range vs {
					t.Logf("verification d=%s err=%v", v.Domain, v.Err)
				}
				t.Fatalf("%d valid signatures of acme.test (algorithms %v), want RSA and Ed25519:\n%s", ours, algs, got.Data)
			}
			if tc.name == "customer's own signature kept" {
				if len(vs) != 3 || !strings.Contains(string(got.Data), custSig+"\r\n") {
					t.Fatalf("the customer's DKIM-Signature was not kept as it was (%d signatures):\n%s", len(vs), got.Data)
				}
			}
			a := e.waitAuth(t, id)
			if a.FromDomain != "acme.test" || a.DKIMDomain != "acme.test" || !*a.DKIMAligned || !*a.SPFAligned || !*a.DMARCAligned ||
				!strings.Contains(a.DKIMSelectors, rsaKey.Selector) || !strings.Contains(a.DKIMSelectors, ed.Selector) {
				t.Fatalf("trace %+v", a)
			}
		})
	}
}

func TestKeyStoreIsPrivate(t *testing.T) {
	e := newEnv(t, nil)
	for _, name := range []string{"easymail.db", "easymail.db-wal"} {
		st, err := os.Stat(filepath.Join(e.n.Config.DataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v; it holds DKIM private keys and must be 0600", name, st.Mode().Perm())
		}
	}
}

func TestDKIMRotationEndToEnd(t *testing.T) {
	e := newEnv(t, dkimConfig)
	mx := e.mx(t, "dest.test", 11)
	old := e.keyIn(t, "active", "rsa")
	e.publishKey(*old)

	// sendAndCheck sends a message and returns the selector it arrived signed with, verified.
	sendAndCheck := func(subject string) string {
		t.Helper()
		before := len(mx.Messages())
		sendWith(t, e.n.SMTPAddr, "alice@acme.test", []string{"bob@dest.test"}, nil,
			message("alice@acme.test", "bob@dest.test", subject))
		got := mx.WaitMessages(t, before+1, 10*time.Second)[before]
		vs := verifyDKIM(t, e.dns, got.Data)
		if len(vs) != 1 || vs[0].Err != nil {
			t.Fatalf("%q: verifications %+v", subject, vs)
		}
		for _, f := range strings.Split(strings.ReplaceAll(headerOf(got.Data), "\r\n ", " "), ";") {
			if s, ok := strings.CutPrefix(strings.TrimSpace(f), "s="); ok {
				return s
			}
		}
		t.Fatalf("no s= tag:\n%s", got.Data)
		return ""
	}
	if s := sendAndCheck("before"); s != old.Selector {
		t.Fatalf("signed with %s, want %s", s, old.Selector)
	}

	var d api.DomainDKIM
	e.n.API(t, "POST", "/customers/"+e.custID+"/domains/acme.test/dkim/rotate", nil, 200, &d)
	next := e.keyIn(t, "pending", "rsa")
	if next == nil {
		t.Fatalf("no pending key after rotate: %+v", d)
	}
	e.n.API(t, "POST", "/customers/"+e.custID+"/domains/acme.test/dkim/rotate", nil, 409, nil)

	// The new record is missing: several check rounds later, signing is still on the old key.
	time.Sleep(500 * time.Millisecond)
	if k := e.keyIn(t, "pending", "rsa"); k == nil || k.Selector != next.Selector {
		t.Fatalf("pending key gone without its record: %+v", e.domainDKIM(t))
	}
	if s := sendAndCheck("record missing"); s != old.Selector {
		t.Fatalf("signed with %s while the new record is missing, want %s", s, old.Selector)
	}

	// Published: the switch happens; the old key retires after retire_after.
	e.publishKey(*next)
	e.waitKey(t, next.Selector, "active")
	// The loop loads the keys it signs with a moment after it records the switch: a message sent in between
	// is still signed with the old key (it verifies, its record is still published); the next ones with the
	// new key.
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		s := sendAndCheck(fmt.Sprint("after the switch ", i))
		if s == next.Selector {
			break
		}
		if s != old.Selector || time.Now().After(deadline) {
			t.Fatalf("signed with %s after the switch, want %s", s, next.Selector)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The old key was retiring (published, no longer signing) for retire_after from the switch, then retired.
	// Its timestamps say so; watching for the retiring state itself would race the one-second delay.
	e.waitKey(t, old.Selector, "retired")
	var oldK, nextK api.DKIMKey
	for _, k := range e.domainDKIM(t).Keys {
		switch k.Selector {
		case old.Selector:
			oldK = k
		case next.Selector:
			nextK = k
		}
	}
	if nextK.ActivatedAt == nil || oldK.RetireAt == nil || oldK.RetiredAt == nil ||
		!oldK.RetireAt.Equal(nextK.ActivatedAt.Add(time.Second)) || oldK.RetiredAt.Before(*oldK.RetireAt) {
		t.Fatalf("old key %+v after the switch to %+v, want retiring for 1s from the switch, then retired", oldK, nextK)
	}
}

func TestReadinessAndOnboardingPage(t *testing.T) {
	e := newEnv(t, dkimConfig)
	mx := e.mx(t, "dest.test", 11)
	k := e.keyIn(t, "active", "rsa")
	e.publishKey(*k)
	e.dns.AddTXT("acme.test", "v=spf1 mx include:_spf.easymail.test -all")
	e.dns.AddTXT("_spf.easymail.test", "v=spf1 ip4:127.0.0.1 -all")
	e.dns.AddTXT("_dmarc.acme.test", "v=DMARC1; p=none; rua=mailto:dmarc@acme.test")

	bulk := message("News <news@acme.test>", "bob@dest.test", "newsletter", "List-Id: <news.acme.test>",
		"List-Unsubscribe: <https://acme.test/u?id=1>, <mailto:u@acme.test>",
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click")
	id := sendWith(t, e.n.SMTPAddr, "news@acme.test", []string{"bob@dest.test"}, nil, bulk)
	mx.WaitMessages(t, 1, 10*time.Second)
	if a := e.waitAuth(t, id); !a.Bulk || !a.OneClick {
		t.Fatalf("bulk markers not recorded: %+v", a)
	}
	e.waitStatus(t, id, "delivered")

	var r api.Readiness
	e.n.API(t, "GET", "/customers/"+e.custID+"/domains/acme.test/readiness", nil, 200, &r)
	if !r.Ready || r.SPF.Status != "pass" || r.DKIM.Status != "pass" || r.DMARC.Status != "warn" ||
		r.Unsubscribe.Bulk != 1 || r.Unsubscribe.OneClick != 1 || r.Rates.FinalRecipients != 1 || *r.Rates.BounceRate != 0 {
		t.Fatalf("readiness %+v", r)
	}
	e.n.API(t, "GET", "/customers/"+e.custID+"/domains/other.test/readiness", nil, 404, nil)

	var o api.Onboarding
	e.n.API(t, "POST", "/customers/"+e.custID+"/onboarding", nil, 200, &o)
	url := o.URL
	if !strings.Contains(url, "://") {
		url = e.n.APIURL + url // test nodes leave api.public_url empty
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{k.Record.Name, "k=rsa; p=MII", "ready", "monitors", "include:_spf.easymail.test"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("onboarding page lacks %q", want)
		}
	}
}

// With dkim.sign: false the keys are still made (and shown), but messages leave as the customer sent them.
func TestSigningCanBeTurnedOff(t *testing.T) {
	off := false
	e := newEnv(t, func(c *config.Config) { c.DKIM.Sign = &off })
	mx := e.mx(t, "dest.test", 11)
	rsaKey := e.keyIn(t, "active", "rsa")
	if rsaKey == nil {
		t.Fatal("no RSA key made for the domain while signing is off")
	}
	e.publishKey(*rsaKey)
	sendWith(t, e.n.SMTPAddr, "alice@acme.test", []string{"bob@dest.test"}, nil,
		message("alice@acme.test", "bob@dest.test", "unsigned"))
	got := mx.WaitMessages(t, 1, 10*time.Second)[0]
	if h := headerOf(got.Data); strings.Contains(h, "DKIM-Signature:") {
		t.Fatalf("signed although dkim.sign is false:\n%s", h)
	}
}
