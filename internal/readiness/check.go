package readiness

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dmarc"

	"easymail/internal/config"
	"easymail/internal/dkimsign"
	"easymail/internal/resolver"
	"easymail/internal/store"
)

// StatsWindow is the period of traffic that the readiness report counts.
const StatsWindow = 30 * 24 * time.Hour

// ErrUnknownDomain is returned by Readiness for a domain that is not the customer's.
var ErrUnknownDomain = errors.New("no such domain")

// Keys is what the checker needs of the DKIM keys: the live DNS check of each key's record.
// *dkimsign.Manager implements it.
type Keys interface {
	// KeyRecords looks up the record of each active, pending and retiring key of the domain, active keys
	// first.
	KeyRecords(ctx context.Context, domain string) ([]dkimsign.KeyRecord, error)
}

// Options configure a Checker.
type Options struct {
	// DB holds the customers' domains and the message log, whose recent traffic the report counts; required.
	DB *store.DB
	// Resolver looks up the SPF and DMARC records; required.
	Resolver resolver.Resolver
	// Keys checks the records of the domains' DKIM keys; required.
	Keys Keys
	// SPFDomain is the operator's SPF domain (config.Config.SPFDomain): the customers' SPF records should
	// hold include:<SPFDomain>; required.
	SPFDomain string
	// Pools are the operator's outbound IPs, each of which the customers' SPF records must authorise.
	Pools []config.Pool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Checker makes the readiness reports. It is safe for concurrent use.
type Checker struct {
	o Options
}

// New returns a checker.
func New(o Options) (*Checker, error) {
	if o.DB == nil || o.Resolver == nil || o.Keys == nil || o.SPFDomain == "" {
		return nil, errors.New("readiness: DB, Resolver, Keys and SPFDomain are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Checker{o: o}, nil
}

// SPFInclude is the mechanism the customers' SPF records should hold to authorise the operator's IPs:
// include:<Options.SPFDomain>.
func (ck *Checker) SPFInclude() string { return "include:" + ck.o.SPFDomain }

// Readiness checks whether a domain of the customer meets what large mailbox providers require of bulk
// senders: SPF authorising every outbound IP of the operator, DKIM records matching the keys, a DMARC
// policy, one-click unsubscription in bulk mail, and it reports the bounce rate. DNS is queried live.
// A domain that is not the customer's is ErrUnknownDomain.
func (ck *Checker) Readiness(ctx context.Context, customerID, domain string) (*Report, error) {
	var owner string
	err := ck.o.DB.R.QueryRowContext(ctx, `SELECT customer_id FROM customer_domains WHERE domain = ?`, domain).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && owner != customerID) {
		return nil, ErrUnknownDomain
	}
	if err != nil {
		return nil, err
	}
	now := ck.o.Now()
	rep := &Report{Domain: domain, CheckedAt: now.UTC()}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); rep.SPF = ck.checkSPF(ctx, domain) }()
	go func() { defer wg.Done(); rep.DMARC = ck.checkDMARC(ctx, domain) }()
	var dkimErr error
	go func() { defer wg.Done(); rep.DKIM, dkimErr = ck.checkDKIM(ctx, domain) }()
	wg.Wait()
	if dkimErr != nil {
		return nil, dkimErr
	}
	if rep.Unsubscribe, rep.Rates, err = ck.traffic(ctx, customerID, domain, now.Add(-StatsWindow)); err != nil {
		return nil, err
	}
	ok := func(s string) bool { return s == Pass || s == Warn }
	rep.Ready = rep.SPF.Status == Pass && ok(rep.DKIM.Status) && ok(rep.DMARC.Status) && ok(rep.Unsubscribe.Status)
	return rep, nil
}

// checkSPF evaluates the domain's SPF record (RFC 7208 §4) for each outbound IP, as a receiver would for
// mail from postmaster@domain sent by that IP with its HELO name.
func (ck *Checker) checkSPF(ctx context.Context, domain string) SPFCheck {
	c := SPFCheck{Include: ck.SPFInclude(), Results: []SPFResult{}}
	txts, err := ck.o.Resolver.LookupTXT(ctx, domain)
	if err != nil && !errors.Is(err, resolver.ErrNotFound) {
		c.Status, c.Detail = Error, "DNS lookup of "+domain+" failed: "+err.Error()
		return c
	}
	var records []string
	for _, t := range txts {
		if l := strings.ToLower(t); l == "v=spf1" || strings.HasPrefix(l, "v=spf1 ") {
			records = append(records, t)
		}
	}
	switch len(records) {
	case 0:
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s has no SPF record: publish a TXT record such as \"v=spf1 mx %s ~all\"", domain, c.Include)
		return c
	case 1:
		c.Record = records[0]
	default:
		c.Status = Fail
		c.Record = strings.Join(records, " | ")
		c.Detail = domain + " has several SPF records, which is a permanent error (RFC 7208 §4.5): merge them into one"
		return c
	}
	seen := map[string]bool{}
	var failing []string
	tempErr := false
	for _, p := range ck.o.Pools {
		for _, a := range p.IPs {
			ip := net.ParseIP(a.Address)
			if ip == nil || seen[ip.String()] {
				continue
			}
			seen[ip.String()] = true
			res, err := spf.CheckHostWithSender(ip, a.HELO, "postmaster@"+domain,
				spf.WithResolver(spfDNS{ck.o.Resolver}), spf.WithContext(ctx))
			r := SPFResult{IP: ip.String(), Result: string(res)}
			if res != spf.Pass {
				if err != nil {
					r.Error = err.Error()
				}
				failing = append(failing, ip.String()+" "+string(res))
				tempErr = tempErr || res == spf.TempError
			}
			c.Results = append(c.Results, r)
		}
	}
	switch {
	case len(failing) == 0:
		c.Status, c.Detail = Pass, "the record authorises every outbound IP"
	case tempErr:
		c.Status, c.Detail = Error, "DNS failed during the evaluation: "+strings.Join(failing, ", ")
	default:
		c.Status = Fail
		c.Detail = "the record does not authorise every outbound IP (" + strings.Join(failing, ", ") + ")"
		if !slices.ContainsFunc(strings.Fields(strings.ToLower(c.Record)), func(f string) bool {
			return strings.TrimLeft(f, "+") == strings.ToLower(c.Include)
		}) {
			c.Detail += ": add " + c.Include + " before the final all"
		}
	}
	return c
}

// checkDKIM looks up the record of each active, pending and retiring key.
func (ck *Checker) checkDKIM(ctx context.Context, domain string) (DKIMCheck, error) {
	c := DKIMCheck{Keys: []DKIMKeyCheck{}}
	keys, err := ck.o.Keys.KeyRecords(ctx, domain)
	if err != nil {
		return c, err
	}
	var activeBad, otherBad, failed []string
	active := 0
	for _, k := range keys {
		kc := DKIMKeyCheck{Selector: k.Selector, Algorithm: k.Algorithm, State: k.State,
			Name: k.Name, Published: k.Published, Detail: k.Detail}
		c.Keys = append(c.Keys, kc)
		if k.State == dkimsign.StateActive {
			active++
		}
		switch {
		case k.LookupFailed:
			failed = append(failed, k.Selector)
		case !k.Published && k.State == dkimsign.StateActive:
			activeBad = append(activeBad, k.Selector+" ("+k.Detail+")")
		case !k.Published:
			otherBad = append(otherBad, k.Selector+" ("+k.State+": "+k.Detail+")")
		}
	}
	switch {
	case active == 0:
		c.Status, c.Detail = Fail, "the domain has no active DKIM key"
	case len(activeBad) > 0:
		c.Status = Fail
		c.Detail = "the record of the signing key does not verify: " + strings.Join(activeBad, "; ") +
			"; publish the record shown for it"
	case len(failed) > 0:
		c.Status, c.Detail = Error, "DNS lookup failed for "+strings.Join(failed, ", ")
	case len(otherBad) > 0:
		c.Status = Warn
		c.Detail = "signatures verify, but publish the record of " + strings.Join(otherBad, "; ")
	default:
		c.Status, c.Detail = Pass, "the published records match the keys"
	}
	return c, nil
}

// checkDMARC finds the DMARC policy of the domain: at _dmarc.<domain>, else at its organizational domain
// (RFC 7489 §6.6.3).
func (ck *Checker) checkDMARC(ctx context.Context, domain string) DMARCCheck {
	c := DMARCCheck{}
	names := []string{domain}
	if od := dkimsign.OrgDomain(domain); od != domain {
		names = append(names, od)
	}
	var txt string
	for _, n := range names {
		txts, err := ck.o.Resolver.LookupTXT(ctx, "_dmarc."+n)
		if err != nil && !errors.Is(err, resolver.ErrNotFound) {
			c.Status, c.Detail = Error, "DNS lookup of _dmarc."+n+" failed: "+err.Error()
			return c
		}
		var recs []string
		for _, t := range txts {
			if strings.HasPrefix(t, "v=DMARC1") {
				recs = append(recs, t)
			}
		}
		if len(recs) > 1 {
			// RFC 7489 §6.6.3: several records mean no policy.
			c.Status, c.Record = Fail, strings.Join(recs, " | ")
			c.Detail = "_dmarc." + n + " has several DMARC records, so none applies: keep one"
			return c
		}
		if len(recs) == 1 {
			txt = recs[0]
			break
		}
	}
	if txt == "" {
		c.Status = Fail
		c.Detail = "no DMARC record: publish at _dmarc." + domain + " at least \"v=DMARC1; p=none; rua=mailto:<address>\""
		return c
	}
	c.Record = txt
	rec, err := dmarc.Parse(txt)
	if err != nil {
		c.Status, c.Detail = Fail, "the DMARC record does not parse: "+err.Error()
		return c
	}
	c.Policy, c.SubdomainPolicy, c.Percent = string(rec.Policy), string(rec.SubdomainPolicy), 100
	if rec.Percent != nil {
		c.Percent = *rec.Percent
	}
	switch rec.Policy {
	case dmarc.PolicyNone:
		c.Status, c.Strength = Warn, "monitoring"
		c.Detail = "p=none only monitors: it meets the bulk-sender rules but protects nothing; move to quarantine, then reject"
	case dmarc.PolicyQuarantine:
		c.Status, c.Strength, c.Detail = Pass, "partial", "failing mail goes to spam (p=quarantine)"
	case dmarc.PolicyReject:
		c.Status, c.Strength, c.Detail = Pass, "full", "failing mail is refused (p=reject)"
	}
	if c.Percent < 100 && rec.Policy != dmarc.PolicyNone {
		c.Strength = "partial"
		c.Detail += fmt.Sprintf(", for %d%% of it", c.Percent)
	}
	return c
}

// traffic counts the domain's messages (From the domain or its subdomains) accepted since since: their bulk
// markers, and the final outcomes of their recipients.
func (ck *Checker) traffic(ctx context.Context, customerID, domain string, since time.Time) (UnsubscribeCheck, Rates, error) {
	u := UnsubscribeCheck{Since: since.UTC()}
	r := Rates{Since: since.UTC()}
	// A normalised domain holds only letters, digits, hyphens and dots: no LIKE wildcard.
	sub := "%." + domain
	err := ck.o.DB.R.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(bulk), 0),
		COALESCE(SUM(CASE WHEN bulk = 1 AND list_unsubscribe = 1 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN bulk = 1 AND list_unsubscribe_post = 1 THEN 1 ELSE 0 END), 0)
		FROM messages WHERE customer_id = ? AND received_at >= ? AND dmarc_aligned IS NOT NULL
		AND (from_domain = ? OR from_domain LIKE ?)`, customerID, store.Millis(since), domain, sub).
		Scan(&u.Messages, &u.Bulk, &u.ListUnsubscribe, &u.OneClick)
	if err != nil {
		return u, r, err
	}
	switch {
	case u.Bulk == 0:
		u.Status, u.Detail = Pass, "no bulk mail from this domain in the period"
	case u.OneClick == u.Bulk:
		u.Status, u.Detail = Pass, "every bulk message offers one-click unsubscription"
	case u.OneClick > 0:
		u.Status = Warn
		u.Detail = fmt.Sprintf("%d of %d bulk messages lack one-click unsubscription (List-Unsubscribe with an https URI and List-Unsubscribe-Post: List-Unsubscribe=One-Click, RFC 8058)",
			u.Bulk-u.OneClick, u.Bulk)
	default:
		u.Status = Fail
		u.Detail = "no bulk message offers one-click unsubscription (List-Unsubscribe with an https URI and List-Unsubscribe-Post: List-Unsubscribe=One-Click, RFC 8058)"
	}
	if u.Bulk > 0 {
		share := float64(u.OneClick) / float64(u.Bulk)
		u.OneClickShare = &share
	}
	err = ck.o.DB.R.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN r.status = 'bounced' THEN 1 ELSE 0 END), 0)
		FROM recipients r JOIN messages m ON m.id = r.message_id
		WHERE m.customer_id = ? AND m.received_at >= ? AND (m.from_domain = ? OR m.from_domain LIKE ?)
		AND r.status IN ('delivered', 'bounced')`, customerID, store.Millis(since), domain, sub).Scan(&r.FinalRecipients, &r.Bounced)
	if err != nil {
		return u, r, err
	}
	if r.FinalRecipients > 0 {
		rate := float64(r.Bounced) / float64(r.FinalRecipients)
		r.BounceRate = &rate
	}
	return u, r, nil
}
