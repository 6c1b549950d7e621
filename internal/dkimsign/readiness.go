package dkimsign

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

	"easymail/internal/readiness"
	"easymail/internal/resolver"
	"easymail/internal/store"
)

// StatsWindow is the period of traffic that the readiness report counts.
const StatsWindow = 30 * 24 * time.Hour

// SPFInclude is the mechanism the customers' SPF records should hold to authorise the operator's IPs:
// include:<Options.SPFDomain>, by default include:_spf.<operator domain>, the operator domain being the
// relay's host name without its first label.
func (m *Manager) SPFInclude() string {
	if m.o.SPFDomain != "" {
		return "include:" + m.o.SPFDomain
	}
	h := strings.TrimSuffix(m.o.Hostname, ".")
	if i := strings.IndexByte(h, '.'); i >= 0 && i < len(h)-1 {
		h = h[i+1:]
	}
	return "include:_spf." + h
}

// Readiness checks whether a domain of the customer meets what large mailbox providers require of bulk
// senders: SPF authorising every outbound IP of the operator, DKIM records matching the keys, a DMARC
// policy, one-click unsubscription in bulk mail, and it reports the bounce rate. DNS is queried live.
func (m *Manager) Readiness(ctx context.Context, customerID, domain string) (*readiness.Report, error) {
	var owner string
	err := m.db.R.QueryRowContext(ctx, `SELECT customer_id FROM customer_domains WHERE domain = ?`, domain).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && owner != customerID) {
		return nil, ErrUnknownDomain
	}
	if err != nil {
		return nil, err
	}
	now := m.now()
	rep := &readiness.Report{Domain: domain, CheckedAt: now.UTC()}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); rep.SPF = m.checkSPF(ctx, domain) }()
	go func() { defer wg.Done(); rep.DMARC = m.checkDMARC(ctx, domain) }()
	var dkimErr error
	go func() { defer wg.Done(); rep.DKIM, dkimErr = m.checkDKIM(ctx, domain) }()
	wg.Wait()
	if dkimErr != nil {
		return nil, dkimErr
	}
	if rep.Unsubscribe, rep.Rates, err = m.traffic(ctx, customerID, domain, now.Add(-StatsWindow)); err != nil {
		return nil, err
	}
	ok := func(s string) bool { return s == readiness.Pass || s == readiness.Warn }
	rep.Ready = rep.SPF.Status == readiness.Pass && ok(rep.DKIM.Status) && ok(rep.DMARC.Status) && ok(rep.Unsubscribe.Status)
	return rep, nil
}

// checkSPF evaluates the domain's SPF record (RFC 7208 §4) for each outbound IP, as a receiver would for
// mail from postmaster@domain sent by that IP with its HELO name.
func (m *Manager) checkSPF(ctx context.Context, domain string) readiness.SPFCheck {
	c := readiness.SPFCheck{Include: m.SPFInclude(), Results: []readiness.SPFResult{}}
	txts, err := m.res.LookupTXT(ctx, domain)
	if err != nil && !errors.Is(err, resolver.ErrNotFound) {
		c.Status, c.Detail = readiness.Error, "DNS lookup of "+domain+" failed: "+err.Error()
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
		c.Status = readiness.Fail
		c.Detail = fmt.Sprintf("%s has no SPF record: publish a TXT record such as \"v=spf1 mx %s ~all\"", domain, c.Include)
		return c
	case 1:
		c.Record = records[0]
	default:
		c.Status = readiness.Fail
		c.Record = strings.Join(records, " | ")
		c.Detail = domain + " has several SPF records, which is a permanent error (RFC 7208 §4.5): merge them into one"
		return c
	}
	seen := map[string]bool{}
	var failing []string
	tempErr := false
	for _, p := range m.o.Pools {
		for _, a := range p.IPs {
			ip := net.ParseIP(a.Address)
			if ip == nil || seen[ip.String()] {
				continue
			}
			seen[ip.String()] = true
			res, err := spf.CheckHostWithSender(ip, a.HELO, "postmaster@"+domain,
				spf.WithResolver(spfDNS{m.res}), spf.WithContext(ctx))
			r := readiness.SPFResult{IP: ip.String(), Result: string(res)}
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
		c.Status, c.Detail = readiness.Pass, "the record authorises every outbound IP"
	case tempErr:
		c.Status, c.Detail = readiness.Error, "DNS failed during the evaluation: "+strings.Join(failing, ", ")
	default:
		c.Status = readiness.Fail
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
func (m *Manager) checkDKIM(ctx context.Context, domain string) (readiness.DKIMCheck, error) {
	c := readiness.DKIMCheck{Keys: []readiness.DKIMKeyCheck{}}
	keys, err := selectKeys(ctx, m.db.R, `WHERE domain = ? AND state IN (?, ?, ?) ORDER BY `+stateOrder+`, algorithm DESC`,
		domain, StateActive, StatePending, StateRetiring)
	if err != nil {
		return c, err
	}
	var activeBad, otherBad, failed []string
	active := 0
	for _, k := range keys {
		pub, why := m.lookupKey(ctx, k.selector, domain, k.algorithm, k.public)
		kc := readiness.DKIMKeyCheck{Selector: k.selector, Algorithm: k.algorithm, State: k.state,
			Name: RecordName(k.selector, domain), Published: pub == published, Detail: why}
		c.Keys = append(c.Keys, kc)
		if k.state == StateActive {
			active++
		}
		switch {
		case pub == unknown:
			failed = append(failed, k.selector)
		case pub == unpublished && k.state == StateActive:
			activeBad = append(activeBad, k.selector+" ("+why+")")
		case pub == unpublished:
			otherBad = append(otherBad, k.selector+" ("+k.state+": "+why+")")
		}
	}
	switch {
	case active == 0:
		c.Status, c.Detail = readiness.Fail, "the domain has no active DKIM key"
	case len(activeBad) > 0:
		c.Status = readiness.Fail
		c.Detail = "the record of the signing key does not verify: " + strings.Join(activeBad, "; ") +
			"; publish the record shown for it"
	case len(failed) > 0:
		c.Status, c.Detail = readiness.Error, "DNS lookup failed for "+strings.Join(failed, ", ")
	case len(otherBad) > 0:
		c.Status = readiness.Warn
		c.Detail = "signatures verify, but publish the record of " + strings.Join(otherBad, "; ")
	default:
		c.Status, c.Detail = readiness.Pass, "the published records match the keys"
	}
	return c, nil
}

// checkDMARC finds the DMARC policy of the domain: at _dmarc.<domain>, else at its organizational domain
// (RFC 7489 §6.6.3).
func (m *Manager) checkDMARC(ctx context.Context, domain string) readiness.DMARCCheck {
	c := readiness.DMARCCheck{}
	names := []string{domain}
	if od := OrgDomain(domain); od != domain {
		names = append(names, od)
	}
	var txt string
	for _, n := range names {
		txts, err := m.res.LookupTXT(ctx, "_dmarc."+n)
		if err != nil && !errors.Is(err, resolver.ErrNotFound) {
			c.Status, c.Detail = readiness.Error, "DNS lookup of _dmarc."+n+" failed: "+err.Error()
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
			c.Status, c.Record = readiness.Fail, strings.Join(recs, " | ")
			c.Detail = "_dmarc." + n + " has several DMARC records, so none applies: keep one"
			return c
		}
		if len(recs) == 1 {
			txt = recs[0]
			break
		}
	}
	if txt == "" {
		c.Status = readiness.Fail
		c.Detail = "no DMARC record: publish at _dmarc." + domain + " at least \"v=DMARC1; p=none; rua=mailto:<address>\""
		return c
	}
	c.Record = txt
	rec, err := dmarc.Parse(txt)
	if err != nil {
		c.Status, c.Detail = readiness.Fail, "the DMARC record does not parse: "+err.Error()
		return c
	}
	c.Policy, c.SubdomainPolicy, c.Percent = string(rec.Policy), string(rec.SubdomainPolicy), 100
	if rec.Percent != nil {
		c.Percent = *rec.Percent
	}
	switch rec.Policy {
	case dmarc.PolicyNone:
		c.Status, c.Strength = readiness.Warn, "monitoring"
		c.Detail = "p=none only monitors: it meets the bulk-sender rules but protects nothing; move to quarantine, then reject"
	case dmarc.PolicyQuarantine:
		c.Status, c.Strength, c.Detail = readiness.Pass, "partial", "failing mail goes to spam (p=quarantine)"
	case dmarc.PolicyReject:
		c.Status, c.Strength, c.Detail = readiness.Pass, "full", "failing mail is refused (p=reject)"
	}
	if c.Percent < 100 && rec.Policy != dmarc.PolicyNone {
		c.Strength = "partial"
		c.Detail += fmt.Sprintf(", for %d%% of it", c.Percent)
	}
	return c
}

// traffic counts the domain's messages (From the domain or its subdomains) accepted since since: their bulk
// markers, and the final outcomes of their recipients.
func (m *Manager) traffic(ctx context.Context, customerID, domain string, since time.Time) (readiness.UnsubscribeCheck, readiness.Rates, error) {
	u := readiness.UnsubscribeCheck{Since: since.UTC()}
	r := readiness.Rates{Since: since.UTC()}
	// A normalised domain holds only letters, digits, hyphens and dots: no LIKE wildcard.
	sub := "%." + domain
	err := m.db.R.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(bulk), 0),
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
		u.Status, u.Detail = readiness.Pass, "no bulk mail from this domain in the period"
	case u.OneClick == u.Bulk:
		u.Status, u.Detail = readiness.Pass, "every bulk message offers one-click unsubscription"
	case u.OneClick > 0:
		u.Status = readiness.Warn
		u.Detail = fmt.Sprintf("%d of %d bulk messages lack one-click unsubscription (List-Unsubscribe with an https URI and List-Unsubscribe-Post: List-Unsubscribe=One-Click, RFC 8058)",
			u.Bulk-u.OneClick, u.Bulk)
	default:
		u.Status = readiness.Fail
		u.Detail = "no bulk message offers one-click unsubscription (List-Unsubscribe with an https URI and List-Unsubscribe-Post: List-Unsubscribe=One-Click, RFC 8058)"
	}
	if u.Bulk > 0 {
		share := float64(u.OneClick) / float64(u.Bulk)
		u.OneClickShare = &share
	}
	err = m.db.R.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN r.status = 'bounced' THEN 1 ELSE 0 END), 0)
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
