// Package bounce classifies delivery failures and keeps each customer's suppression list.
//
// A failure's class (bad-mailbox, bad-domain, mailbox-full, policy, spam, reputation, tls, dns, timeout,
// other) is read from its reply code, its enhanced status code (RFC 3463) and its text, with an ordered table
// of rules that is data: rules.yaml, embedded in the binary. The queue records the class of every failed
// attempt; statistics count bounces by class.
//
// A hard bounce of a bad mailbox puts the recipient on the customer's suppression list for a configurable
// time: later mail of that customer to it is refused at RCPT with 550 5.1.1, so that the customer's server
// returns it at once instead of Easymail bouncing it again at the receiver's expense (and the shared IPs'
// reputation).
package bounce

import (
	"regexp"
	"strconv"
	"strings"
)

// Class is a bounce class.
type Class = string

// The bounce classes.
const (
	// BadMailbox: the recipient address does not exist, is disabled or is malformed.
	BadMailbox Class = "bad-mailbox"
	// BadDomain: the recipient domain does not exist or accepts no mail (no MX, null MX).
	BadDomain Class = "bad-domain"
	// MailboxFull: the recipient's mailbox is over quota.
	MailboxFull Class = "mailbox-full"
	// Policy: refused by the receiver's policy: relaying, authentication (SPF, DKIM, DMARC), size limits,
	// sender checks, greylisting, reverse DNS.
	Policy Class = "policy"
	// Spam: the content was judged spam, a virus or phishing.
	Spam Class = "spam"
	// Reputation: the sending IP or domain is blocked or throttled (DNSBL, block lists, poor reputation,
	// volume or complaint deferrals).
	Reputation Class = "reputation"
	// TLS: TLS was required by the receiver or failed.
	TLS Class = "tls"
	// DNS: a DNS lookup for the destination failed (temporarily).
	DNS Class = "dns"
	// Timeout: the remote host could not be reached, did not answer in time, or dropped the connection.
	Timeout Class = "timeout"
	// Other: none of the above.
	Other Class = "other"
)

// Classes returns every class, in a stable order.
func Classes() []Class {
	return []Class{BadMailbox, BadDomain, MailboxFull, Policy, Spam, Reputation, TLS, DNS, Timeout, Other}
}

// IsClass reports whether s is a class.
func IsClass(s string) bool {
	for _, c := range Classes() {
		if c == s {
			return true
		}
	}
	return false
}

// defaultRules is the embedded rule table, parsed once; it is never changed after.
var defaultRules = mustParse(embeddedRules)

// Default returns the classifier of the embedded rule table.
func Default() *Classifier { return defaultRules }

// Classify classifies a failure with the embedded rules: the reply code (550), the enhanced status code
// ("5.1.1"; "" or the class followed by ".0.0" when the reply had none) and the reply text.
func Classify(code int, enhanced, text string) Class {
	return defaultRules.Classify(code, enhanced, text)
}

// remotePrefix is the "remote host mx.example.net said: " that the delivery puts before a receiver's reply;
// the host name is no part of what the receiver said.
var remotePrefix = regexp.MustCompile(`(?i)^remote host \S+ said: `)

// textEnhanced finds an enhanced status code written in the text, as qmail does ("(#5.1.1)") and as a
// receiver's reply quoted after our prefix starts ("550 5.1.1 ...").
var textEnhanced = regexp.MustCompile(`\(#([245]\.\d{1,3}\.\d{1,3})\)|^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b`)

// reply is a failure prepared for matching.
type reply struct {
	code     int
	enhanced [3]int // {0,0,0} when unknown
	text     string
}

func newReply(code int, enhanced, text string) reply {
	r := reply{code: code, text: remotePrefix.ReplaceAllString(strings.TrimSpace(text), "")}
	r.enhanced, _ = parseEnhanced(enhanced)
	if r.enhanced[1] == 0 && r.enhanced[2] == 0 {
		// No detail in the enhanced code: take one from the text if it has one.
		if m := textEnhanced.FindStringSubmatch(r.text); m != nil {
			s := m[1]
			if s == "" {
				s = m[2]
			}
			if e, ok := parseEnhanced(s); ok {
				r.enhanced = e
			}
		}
	}
	if r.enhanced[0] == 0 && code >= 200 && code < 600 {
		r.enhanced[0] = code / 100
	}
	return r
}

// parseEnhanced reads "class.subject.detail" (RFC 3463 §2).
func parseEnhanced(s string) ([3]int, bool) {
	var e [3]int
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 {
		return e, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 || p == "" {
			return [3]int{}, false
		}
		e[i] = n
	}
	if e[0] != 2 && e[0] != 4 && e[0] != 5 {
		return [3]int{}, false
	}
	return e, true
}
