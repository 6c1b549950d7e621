package api

import (
	"easymail/internal/contentrules"
	"easymail/internal/quarantine"
	"easymail/internal/scan"
)

// Content rule types (ContentRule.Type); see package contentrules.
const (
	RuleExtension       = contentrules.TypeExtension
	RuleDoubleExtension = contentrules.TypeDoubleExtension
	RuleMIMEType        = contentrules.TypeMIMEType
	RuleHeader          = contentrules.TypeHeader
	RuleBody            = contentrules.TypeBody
	RuleSize            = contentrules.TypeSize
)

// Scan actions: what a verdict or a content rule does to a message.
const (
	ActionReject     = contentrules.ActionReject
	ActionQuarantine = contentrules.ActionQuarantine
	ActionTag        = contentrules.ActionTag
)

// Scanner failure modes (ScanPolicy.OnFailure).
const (
	FailTempfail = scan.FailTempfail
	FailBypass   = scan.FailBypass
)

// What a customer's own portal users may do with its quarantine (ScanPolicy.CustomerRelease).
const (
	ReleaseNone        = scan.ReleaseNone
	ReleaseExceptVirus = scan.ReleaseExceptVirus
	ReleaseAll         = scan.ReleaseAll
)

// Origins of an effective content rule (EffectiveRule.Origin).
const (
	OriginDefault  = scan.OriginDefault
	OriginCustomer = scan.OriginCustomer
)

// ContentRule is one content rule (contentrules.Rule).
type ContentRule = contentrules.Rule

// ScanPolicy is a customer's scanning policy (scan.Policy).
type ScanPolicy = scan.Policy

// EffectiveRule is a content rule in force for a customer (scan.EffectiveRule).
type EffectiveRule = scan.EffectiveRule

// ScanVerdict is what one scanner said about a message (scan.Verdict).
type ScanVerdict = scan.Verdict

// ScanReport is the result of scanning one message (scan.Report).
type ScanReport = scan.Report

// QuarantineEntry is a quarantined message (quarantine.Entry).
type QuarantineEntry = quarantine.Entry

// QuarantineMessage is a quarantined message with its header, verdicts and preview (quarantine.Message).
type QuarantineMessage = quarantine.Message

// QuarantineAction is the answer to a release or delete (quarantine.Action).
type QuarantineAction = quarantine.Action

// CustomerScanPolicy is a customer's scanning policy as the API shows it (scan.CustomerPolicy).
type CustomerScanPolicy = scan.CustomerPolicy
