package ratelimit

import "time"

// CustomerLimits are one customer's rate limits; 0 is unlimited. Burst sizes the per-minute buckets (0: the
// per-minute limit); the per-hour buckets burst to their own limit.
type CustomerLimits struct {
	MessagesPerMinute   int
	MessagesPerHour     int
	RecipientsPerMinute int
	RecipientsPerHour   int
	Burst               int
}

// MessageRules returns the rules for the customer's messages.
func (l CustomerLimits) MessageRules() []Rule {
	return rules(l.MessagesPerMinute, l.MessagesPerHour, l.Burst)
}

// RecipientRules returns the rules for the customer's recipients.
func (l CustomerLimits) RecipientRules() []Rule {
	return rules(l.RecipientsPerMinute, l.RecipientsPerHour, l.Burst)
}

func rules(perMinute, perHour, burst int) []Rule {
	var out []Rule
	if perMinute > 0 {
		out = append(out, Rule{Limit: perMinute, Per: time.Minute, Burst: burst})
	}
	if perHour > 0 {
		out = append(out, Rule{Limit: perHour, Per: time.Hour})
	}
	return out
}

// CustomerPolicy is what the SMTP side enforces for one customer: its rate limits, and whether its mail is
// held.
type CustomerPolicy struct {
	Limits CustomerLimits
	// Held: the customer's new messages are accepted and queued held, not delivered.
	Held bool
}
