// Package readiness is the bulk-sender readiness of a domain: SPF, DKIM, DMARC, one-click unsubscribe and
// bounce and complaint rates checked against what the big mailbox providers require of bulk senders.
//
// A Checker makes the report live: the domain's SPF record is evaluated (RFC 7208) for every outbound IP
// of the operator's pools, with the IP's HELO name; the record of each active, pending and retiring DKIM
// key is looked up (through package dkimsign, which owns the keys); the DMARC policy is read at
// _dmarc.<domain>, else at the organizational domain (RFC 7489 §6.6.3); and the domain's messages of the
// last StatsWindow are counted for their one-click unsubscription (RFC 8058) and bounces.
package readiness

import "time"

// Report check statuses.
const (
	Pass  = "pass"
	Warn  = "warn"
	Fail  = "fail"
	Error = "error" // the check could not be made (DNS failure); try again later
)

// Report is the bulk-sender readiness report of one domain: what large mailbox providers require of
// senders of bulk mail (SPF and DKIM passing, DMARC published, one-click unsubscribe, low bounce and
// complaint rates), checked live in DNS and over the domain's recent traffic.
type Report struct {
	Domain    string    `json:"domain"`
	CheckedAt time.Time `json:"checked_at"`
	// Ready is set when SPF and DKIM pass and neither DMARC nor unsubscription fails.
	Ready       bool             `json:"ready"`
	SPF         SPFCheck         `json:"spf"`
	DKIM        DKIMCheck        `json:"dkim"`
	DMARC       DMARCCheck       `json:"dmarc"`
	Unsubscribe UnsubscribeCheck `json:"unsubscribe"`
	Rates       Rates            `json:"rates"`
}

// SPFCheck is the domain's SPF record evaluated (RFC 7208) for each of the operator's outbound IPs.
type SPFCheck struct {
	Status string `json:"status"`
	// Record is the domain's SPF record, "" when it has none.
	Record string `json:"record"`
	// Include is the mechanism the record should contain to authorise the operator's IPs.
	Include string      `json:"include"`
	Results []SPFResult `json:"results"`
	Detail  string      `json:"detail"`
}

// SPFResult is the SPF result for one outbound IP: pass, fail, softfail, neutral, none, temperror or
// permerror.
type SPFResult struct {
	IP     string `json:"ip"`
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

// DKIMCheck compares the domain's published DKIM records with its keys.
type DKIMCheck struct {
	Status string         `json:"status"`
	Keys   []DKIMKeyCheck `json:"keys"`
	Detail string         `json:"detail"`
}

// DKIMKeyCheck is the DNS check of one key's record.
type DKIMKeyCheck struct {
	Selector  string `json:"selector"`
	Algorithm string `json:"algorithm"`
	State     string `json:"state"`
	Name      string `json:"name"`
	// Published is set when the record at Name holds this key.
	Published bool   `json:"published"`
	Detail    string `json:"detail"`
}

// DMARCCheck is the domain's DMARC policy (RFC 7489 §6.3), found at _dmarc.<domain> or at its
// organizational domain.
type DMARCCheck struct {
	Status string `json:"status"`
	Record string `json:"record"`
	// Policy is none, quarantine or reject; "" without a record. Strength says what it protects:
	// "monitoring" (p=none), "partial" (quarantine, or a pct below 100), "full" (reject).
	Policy          string `json:"policy"`
	SubdomainPolicy string `json:"subdomain_policy,omitempty"`
	Percent         int    `json:"percent"`
	Strength        string `json:"strength"`
	Detail          string `json:"detail"`
}

// UnsubscribeCheck is the share of the domain's recent bulk messages that offer one-click unsubscription
// (List-Unsubscribe with List-Unsubscribe-Post, RFC 8058).
type UnsubscribeCheck struct {
	Status string    `json:"status"`
	Since  time.Time `json:"since"`
	// Messages counts the messages from the domain accepted since Since, Bulk those that look like bulk mail.
	Messages        int `json:"messages"`
	Bulk            int `json:"bulk"`
	ListUnsubscribe int `json:"list_unsubscribe"`
	OneClick        int `json:"one_click"`
	// OneClickShare is OneClick / Bulk; null without bulk messages.
	OneClickShare *float64 `json:"one_click_share"`
	Detail        string   `json:"detail"`
}

// Rates are the domain's bounce and complaint rates over its recent messages.
type Rates struct {
	Since time.Time `json:"since"`
	// FinalRecipients counts the recipients delivered or bounced; Bounced those bounced.
	FinalRecipients int `json:"final_recipients"`
	Bounced         int `json:"bounced"`
	// BounceRate is Bounced / FinalRecipients; null without final recipients.
	BounceRate *float64 `json:"bounce_rate"`
	// ComplaintRate is null: complaints (feedback loops) are not collected yet.
	ComplaintRate *float64 `json:"complaint_rate"`
}
