package api

import "time"

// Content rule types (ContentRule.Type).
const (
	// RuleExtension matches an attachment whose file name ends in one of Values ("exe"), also inside a zip.
	RuleExtension = "extension"
	// RuleDoubleExtension matches a file name with two extensions whose last is one of Values
	// ("invoice.pdf.exe"), also inside a zip.
	RuleDoubleExtension = "double_extension"
	// RuleMIMEType matches a part whose Content-Type is one of Values ("application/x-msdownload"; a value
	// ending in "/*" matches a whole top-level type).
	RuleMIMEType = "mime_type"
	// RuleHeader matches Pattern (a Go regexp) against each header field, as "Name: value" (decoded).
	RuleHeader = "header"
	// RuleBody matches Pattern against each text part (decoded, at most the first 1 MiB of each).
	RuleBody = "body"
	// RuleSize matches a message larger than MaxBytes.
	RuleSize = "size"
)

// Scan actions: what a verdict or a content rule does to a message.
const (
	ActionReject     = "reject"
	ActionQuarantine = "quarantine"
	ActionTag        = "tag"
)

// Scanner failure modes (ScanPolicy.OnFailure).
const (
	// FailTempfail answers 451 4.7.1 while a scanner is down: the customer's server retries.
	FailTempfail = "tempfail"
	// FailBypass accepts the message unscanned by the failed scanner and tags it "X-Easymail-Scan: bypassed".
	FailBypass = "bypass"
)

// What a customer's own portal users may do with its quarantine (ScanPolicy.CustomerRelease). Operators
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

// ContentRule is one content rule: a match and what to do with a matching message.
type ContentRule struct {
	// Name identifies the rule in logs and traces; defaults to its type.
	Name string `json:"name,omitempty" yaml:"name"`
	// Type is extension, double_extension, mime_type, header, body or size.
	Type string `json:"type" yaml:"type"`
	// Values are the extensions (without the dot, case-insensitive) or MIME types of the rule.
	Values []string `json:"values,omitempty" yaml:"values"`
	// Pattern is the regular expression (Go syntax, RE2) of a header or body rule.
	Pattern string `json:"pattern,omitempty" yaml:"pattern"`
	// MaxBytes is the size limit of a size rule.
	MaxBytes int64 `json:"max_bytes,omitempty" yaml:"max_bytes"`
	// Action is reject, quarantine or tag.
	Action string `json:"action" yaml:"action"`
	// Reason is the text given in the SMTP reply and recorded in the message log.
	Reason string `json:"reason" yaml:"reason"`
}

// ScanPolicy is a customer's scanning policy. Every field is optional: a null field takes the configured
// default (the scan section of the configuration), and a null Rules list the configured rules.
type ScanPolicy struct {
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
	Rules *[]ContentRule `json:"rules"`
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
	ContentRule
	// Origin is default or customer.
	Origin string `json:"origin"`
}

// ScanVerdict is what one scanner said about a message.
type ScanVerdict struct {
	// Scanner is clamd or rspamd.
	Scanner string `json:"scanner"`
	// Result is clean, virus, spam or error.
	Result string `json:"result"`
	// Name is the virus name (clamd).
	Name string `json:"name,omitempty"`
	// Score and Action are rspamd's score and action; Symbols its symbols, by name.
	Score   float64  `json:"score,omitempty"`
	Action  string   `json:"action,omitempty"`
	Symbols []string `json:"symbols,omitempty"`
	// Error is the failure of a scanner that gave no verdict.
	Error string `json:"error,omitempty"`
	// Millis is how long the scan took.
	Millis int64 `json:"ms"`
}

// RuleHit is a content rule that matched a message.
type RuleHit struct {
	Rule   string `json:"rule"`
	Type   string `json:"type"`
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Where says what matched: a file name (with the archive it is in), a MIME type, a header name.
	Where string `json:"where,omitempty"`
}

// ScanReport is the result of scanning one message, kept in the message log.
type ScanReport struct {
	// Verdict sums it up: clean, tagged, spam, virus, rule, bypassed.
	Verdict string `json:"verdict"`
	// Action is what was done: accept, tag, quarantine, reject or tempfail.
	Action string `json:"action"`
	// Reason is the text given to the client (with reject, quarantine and tempfail).
	Reason   string        `json:"reason,omitempty"`
	Verdicts []ScanVerdict `json:"verdicts"`
	Rules    []RuleHit     `json:"rules,omitempty"`
}

// QuarantineEntry is a quarantined message.
type QuarantineEntry struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id"`
	Sender     string    `json:"sender"`
	Recipients []string  `json:"recipients"`
	Subject    string    `json:"subject"`
	HeaderFrom string    `json:"header_from"`
	Size       int64     `json:"size"`
	Reason     string    `json:"reason"`
	Verdict    string    `json:"verdict"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// QuarantineMessage is a quarantined message with its header, verdicts and a safe text preview.
type QuarantineMessage struct {
	QuarantineEntry
	// Header is the message's header section as received (after the relay's clean-up).
	Header string `json:"header"`
	// Preview is the start of the first text part, decoded, with control characters and HTML markup
	// removed; never more than 2 KiB.
	Preview string      `json:"preview"`
	Scan    *ScanReport `json:"scan"`
}

// QuarantineAction is the answer to a release or delete.
type QuarantineAction struct {
	ID     string `json:"id"`
	Action string `json:"action"`
}

// CustomerScanPolicy is a customer's scanning policy as the API shows it: its own settings (null fields
// take the defaults) beside the configured defaults, and the content rules in force for it, in the order
// they are checked: the defaults (unless the policy replaces them), then the customer's.
type CustomerScanPolicy struct {
	CustomerID     string          `json:"customer_id"`
	Policy         ScanPolicy      `json:"policy"`
	Defaults       ScanPolicy      `json:"defaults"`
	EffectiveRules []EffectiveRule `json:"effective_rules"`
}
