package readiness

import (
	"context"
	"strings"
	"testing"
	"time"

	"easymail/internal/dkimsign"
	"easymail/internal/store"
)

func TestReadiness(t *testing.T) {
	const good = "good"
	for _, tc := range []struct {
		name    string
		spf     string // the domain's SPF record; "" for none
		dkim    string // good, broken, missing
		dmarc   string // the DMARC record; "" for none
		ready   bool
		spfWant string
		dkim_   string
		dmarc_  string
		detail  string // a substring of the failing check's detail
	}{
		{name: "good", spf: "v=spf1 mx include:_spf.example.net -all", dkim: good, dmarc: "v=DMARC1; p=reject; rua=mailto:d@acme.test",
			ready: true, spfWant: Pass, dkim_: Pass, dmarc_: Pass},
		{name: "missing include", spf: "v=spf1 mx ~all", dkim: good, dmarc: "v=DMARC1; p=quarantine",
			spfWant: Fail, dkim_: Pass, dmarc_: Pass, detail: "add include:_spf.example.net"},
		{name: "no SPF", dkim: good, dmarc: "v=DMARC1; p=reject",
			spfWant: Fail, dkim_: Pass, dmarc_: Pass, detail: "has no SPF record"},
		{name: "SPF by address, no include", spf: "v=spf1 ip4:192.0.2.0/28 -all", dkim: good, dmarc: "v=DMARC1; p=reject",
			ready: true, spfWant: Pass, dkim_: Pass, dmarc_: Pass},
		{name: "broken DKIM", spf: "v=spf1 include:_spf.example.net -all", dkim: "broken", dmarc: "v=DMARC1; p=reject",
			spfWant: Pass, dkim_: Fail, dmarc_: Pass, detail: "different public key"},
		{name: "missing DKIM", spf: "v=spf1 include:_spf.example.net -all", dkim: "missing", dmarc: "v=DMARC1; p=reject",
			spfWant: Pass, dkim_: Fail, dmarc_: Pass, detail: "no record at"},
		{name: "no DMARC", spf: "v=spf1 include:_spf.example.net -all", dkim: good,
			spfWant: Pass, dkim_: Pass, dmarc_: Fail, detail: "no DMARC record"},
		{name: "p=none", spf: "v=spf1 include:_spf.example.net -all", dkim: good, dmarc: "v=DMARC1; p=none; rua=mailto:d@acme.test",
			ready: true, spfWant: Pass, dkim_: Pass, dmarc_: Warn, detail: "only monitors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			id := f.customer(t, "Acme", "acme.test")
			// The operator's SPF record covers the pool 192.0.2.10-11.
			f.dns.AddTXT("_spf.example.net", "v=spf1 ip4:192.0.2.8/29 -all")
			if tc.spf != "" {
				f.dns.AddTXT("acme.test", tc.spf)
			}
			f.dns.AddTXT("acme.test", "google-site-verification=abc")
			f.dns.AddMX("acme.test", "mx.acme.test", 10)
			f.dns.AddA("mx.acme.test", "198.51.100.1")
			k := f.key(t, "acme.test", dkimsign.StateActive, dkimsign.RSA)
			switch tc.dkim {
			case good:
				f.publish(k)
			case "broken":
				f.dns.AddTXT(k.Record.Name, strings.Replace(k.Record.Value, "p=MI", "p=MA", 1))
			}
			if tc.dmarc != "" {
				f.dns.AddTXT("_dmarc.acme.test", tc.dmarc)
			}
			rep, err := f.c.Readiness(context.Background(), id, "acme.test")
			if err != nil {
				t.Fatal(err)
			}
			if rep.SPF.Status != tc.spfWant || rep.DKIM.Status != tc.dkim_ || rep.DMARC.Status != tc.dmarc_ || rep.Ready != tc.ready {
				t.Fatalf("spf %s (%s), dkim %s (%s), dmarc %s (%s), ready %v; want %s %s %s %v",
					rep.SPF.Status, rep.SPF.Detail, rep.DKIM.Status, rep.DKIM.Detail, rep.DMARC.Status, rep.DMARC.Detail,
					rep.Ready, tc.spfWant, tc.dkim_, tc.dmarc_, tc.ready)
			}
			if tc.detail != "" {
				all := rep.SPF.Detail + "|" + rep.DKIM.Detail + "|" + rep.DMARC.Detail + "|" + strings.Join(func() []string {
					var d []string
					for _, k := range rep.DKIM.Keys {
						d = append(d, k.Detail)
					}
					return d
				}(), "|")
				if !strings.Contains(all, tc.detail) {
					t.Fatalf("details %q lack %q", all, tc.detail)
				}
			}
			if tc.spf != "" && rep.SPF.Record != tc.spf {
				t.Fatalf("SPF record %q", rep.SPF.Record)
			}
			if len(rep.SPF.Results) != 2 {
				if tc.spf != "" {
					t.Fatalf("SPF results %+v, want one per pool IP", rep.SPF.Results)
				}
			}
			if tc.name == "missing include" && (rep.SPF.Results[0].Result != "softfail" || rep.SPF.Results[1].IP != "192.0.2.11") {
				t.Fatalf("SPF results %+v", rep.SPF.Results)
			}
			if tc.name == "p=none" && (rep.DMARC.Policy != "none" || rep.DMARC.Strength != "monitoring") {
				t.Fatalf("DMARC %+v", rep.DMARC)
			}
			if tc.name == "good" && (rep.DMARC.Strength != "full" || !rep.DKIM.Keys[0].Published) {
				t.Fatalf("DMARC %+v, DKIM %+v", rep.DMARC, rep.DKIM)
			}
		})
	}
}

func TestReadinessDMARCAtOrganizationalDomain(t *testing.T) {
	f := newFixture(t)
	id := f.customer(t, "Acme", "mail.acme.test")
	f.dns.AddTXT("_dmarc.acme.test", "v=DMARC1; p=quarantine; pct=50")
	rep, err := f.c.Readiness(context.Background(), id, "mail.acme.test")
	if err != nil {
		t.Fatal(err)
	}
	if rep.DMARC.Status != Pass || rep.DMARC.Percent != 50 || rep.DMARC.Strength != "partial" {
		t.Fatalf("DMARC %+v", rep.DMARC)
	}
	// Another customer's domain is not found, whoever asks.
	other := f.customer(t, "Other", "other.test")
	if _, err := f.c.Readiness(context.Background(), other, "mail.acme.test"); err != ErrUnknownDomain {
		t.Fatalf("readiness of another customer's domain: %v", err)
	}
}

func TestReadinessTraffic(t *testing.T) {
	f := newFixture(t)
	id := f.customer(t, "Acme", "acme.test")
	now := f.clock.Now()
	n := 0
	add := func(from string, bulk, lu, post, analysed bool, at time.Time, rcpts ...string) {
		n++
		mid := "m" + string(rune('a'+n))
		var aligned any
		if analysed {
			aligned = 1
		}
		f.exec(t, `INSERT INTO messages (id, node_id, customer_id, sender, status, received_at, expires_at, from_domain,
			dmarc_aligned, bulk, list_unsubscribe, list_unsubscribe_post) VALUES (?, 'n', ?, 's@acme.test', 'delivered', ?, ?, ?, ?, ?, ?, ?)`,
			mid, id, store.Millis(at), store.Millis(at), from, aligned, bulk, lu, post)
		for i, st := range rcpts {
			f.exec(t, `INSERT INTO recipients (message_id, idx, address, domain, status, next_attempt_at, updated_at)
				VALUES (?, ?, 'r@dest.test', 'dest.test', ?, 0, 0)`, mid, i, st)
		}
	}
	add("acme.test", true, true, true, true, now.Add(-time.Hour), "delivered", "delivered")
	add("news.acme.test", true, true, false, true, now.Add(-time.Hour), "bounced", "delivered")
	add("acme.test", true, false, false, true, now.Add(-time.Hour), "deferred")
	add("acme.test", false, false, false, true, now.Add(-time.Hour), "delivered", "bounced")
	add("acme.test", true, true, true, true, now.Add(-31*24*time.Hour), "bounced") // too old
	add("notacme.test", true, false, false, true, now.Add(-time.Hour), "bounced")  // another domain
	add("acme.test", false, false, false, false, now.Add(-time.Hour), "delivered") // refused, never analysed: not counted as a message
	rep, err := f.c.Readiness(context.Background(), id, "acme.test")
	if err != nil {
		t.Fatal(err)
	}
	u := rep.Unsubscribe
	if u.Messages != 4 || u.Bulk != 3 || u.ListUnsubscribe != 2 || u.OneClick != 1 || u.Status != Warn ||
		u.OneClickShare == nil || *u.OneClickShare < 0.33 || *u.OneClickShare > 0.34 {
		t.Fatalf("unsubscribe %+v", u)
	}
	r := rep.Rates
	if r.FinalRecipients != 7 || r.Bounced != 2 || r.BounceRate == nil || *r.BounceRate < 0.28 || *r.BounceRate > 0.29 ||
		r.ComplaintRate != nil {
		t.Fatalf("rates %+v", r)
	}
}

func TestSPFInclude(t *testing.T) {
	f := newFixture(t)
	if got := f.c.SPFInclude(); got != "include:_spf.example.net" {
		t.Fatalf("SPF include %q", got)
	}
	if _, err := New(Options{DB: f.db, Resolver: f.res, Keys: f.dk}); err == nil {
		t.Fatal("no SPF domain accepted")
	}
}
