package scan

import "easymail/internal/contentrules"

// Scanner failure modes (Policy.OnFailure).
const (
	// FailTempfail answers 451 4.7.1 while a scanner is down: the customer's server retries.
	FailTempfail = "tempfail"
	// FailBypass accepts the message unscanned by the failed scanner and tags it "X-Easymail-Scan: bypassed".
	FailBypass = "bypass"
)

// What a customer's own portal users may do with its quarantine (Policy.CustomerRelease). Operators
// release and delete any quarantined message whatever the policy; experts never do.
const (
	// ReleaseNone: the customer's users may neither release nor delete (the default).
	ReleaseNone = "none"
	// ReleaseExceptVirus: they may delete any of the customer's quarantined messages and release those that
	// were not quarantined for a virus (spam, content rules).
	ReleaseExceptVirus = "except_virus"
	// ReleaseAll: they may release and delete any of them, viruses included.
	ReleaseAll = "all"
)

// Policy is a customer's scanning policy. Every field is optional: a null field takes the configured
// default (the scan section of the configuration), and a null Rules list the configured rules.
type Policy struct {
	// SpamRejectScore refuses a message whose rspamd score is at least this (550 5.7.1); 0 never.
	SpamRejectScore *float64 `json:"spam_reject_score"`
	// SpamQuarantineScore quarantines a message whose score is at least this; 0 never.
	SpamQuarantineScore *float64 `json:"spam_quarantine_score"`
	// SpamTagScore adds X-Spam headers to a message whose score is at least this; 0 never.
	SpamTagScore *float64 `json:"spam_tag_score"`
	// VirusAction is reject or quarantine.
	VirusAction *string `json:"virus_action"`
	// OnFailure is tempfail or bypass.
	OnFailure *string `json:"on_failure"`
	// CustomerRelease is what the customer's portal users may do with its quarantine: none, except_virus or
	// all (ReleaseNone, ReleaseExceptVirus, ReleaseAll).
	CustomerRelease *string `json:"customer_release"`
	// Rules are the customer's own content rules. They apply in addition to the configured ones, unless
	// ReplaceDefaults is set: then only they apply (null or empty: no content rules at all).
	Rules *[]contentrules.Rule `json:"rules"`
	// ReplaceDefaults makes Rules replace the configured content rules instead of adding to them.
	ReplaceDefaults bool `json:"replace_defaults"`
}

// Origins of an effective content rule (EffectiveRule.Origin).
const (
	// OriginDefault is a rule of the configuration (scan.rules), which applies to every customer whose
	// policy does not replace the defaults.
	OriginDefault = "default"
	// OriginCustomer is a rule of the customer's own policy.
	OriginCustomer = "customer"
)

// EffectiveRule is a content rule in force for a customer, with where it comes from.
type EffectiveRule struct {
	contentrules.Rule
	// Origin is default or customer.
	Origin string `json:"origin"`
}

// CustomerPolicy is a customer's scanning policy as the API shows it: its own settings (null fields
// take the defaults) beside the configured defaults, and the content rules in force for it, in the order
// they are checked: the defaults (unless the policy replaces them), then the customer's.
type CustomerPolicy struct {
	CustomerID     string          `json:"customer_id"`
	Policy         Policy          `json:"policy"`
	Defaults       Policy          `json:"defaults"`
	EffectiveRules []EffectiveRule `json:"effective_rules"`
}

// ResolvedPolicy is a customer's policy resolved over the defaults: every setting decided, the content
// rules compiled. The engine applies it.
type ResolvedPolicy struct {
	// SpamReject, SpamQuarantine and SpamTag are score thresholds; 0 turns one off.
	SpamReject, SpamQuarantine, SpamTag float64
	// VirusAction is reject or quarantine.
	VirusAction string
	// OnFailure is tempfail or bypass.
	OnFailure string
	// CustomerRelease is what the customer's portal users may do with its quarantine (ReleaseNone,
	// ReleaseExceptVirus, ReleaseAll).
	CustomerRelease string
	// Rules are the content rules.
	Rules *contentrules.Set
}

// CustomerMay reports whether the customer's own users may release, and delete, a message of its quarantine;
// virus says whether a scanner found a virus in it (Infected).
func (p *ResolvedPolicy) CustomerMay(virus bool) (release, del bool) {
	switch p.CustomerRelease {
	case ReleaseAll:
		return true, true
	case ReleaseExceptVirus:
		return !virus, true
	}
	return false, false
}
