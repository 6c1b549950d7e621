package api

import (
	"context"
	"net/http"

	"easymail/internal/dkimsign"
	"easymail/internal/readiness"
)

// DomainDKIM returns a domain's DKIM keys.
func (c *Client) DomainDKIM(ctx context.Context, id, domain string) (*DomainDKIM, error) {
	var out DomainDKIM
	return &out, c.do(ctx, http.MethodGet, "/customers/"+esc(id)+"/domains/"+esc(domain)+"/dkim", nil, nil, &out)
}

// RotateDKIM starts a rotation of a domain's DKIM keys and returns the keys as they now are.
func (c *Client) RotateDKIM(ctx context.Context, id, domain string) (*DomainDKIM, error) {
	var out DomainDKIM
	return &out, c.do(ctx, http.MethodPost, "/customers/"+esc(id)+"/domains/"+esc(domain)+"/dkim/rotate", nil, nil, &out)
}

// CheckDKIM checks the records of a domain's pending keys now, activating those that are published, and
// returns the keys as they now are.
func (c *Client) CheckDKIM(ctx context.Context, id, domain string) (*DomainDKIM, error) {
	var out DomainDKIM
	return &out, c.do(ctx, http.MethodPost, "/customers/"+esc(id)+"/domains/"+esc(domain)+"/dkim/check", nil, nil, &out)
}

// AddEd25519 gives a domain an Ed25519 key (a second signature, RFC 8463) and returns the keys as they now are.
func (c *Client) AddEd25519(ctx context.Context, id, domain string) (*DomainDKIM, error) {
	var out DomainDKIM
	return &out, c.do(ctx, http.MethodPost, "/customers/"+esc(id)+"/domains/"+esc(domain)+"/dkim/ed25519", nil, nil, &out)
}

// Readiness returns the bulk-sender readiness report of a domain.
func (c *Client) Readiness(ctx context.Context, id, domain string) (*Readiness, error) {
	var out Readiness
	return &out, c.do(ctx, http.MethodGet, "/customers/"+esc(id)+"/domains/"+esc(domain)+"/readiness", nil, nil, &out)
}

// DKIMStatePending is dkimsign.StatePending.
const DKIMStatePending = dkimsign.StatePending

// DKIMStateRetiring is dkimsign.StateRetiring.
const DKIMStateRetiring = dkimsign.StateRetiring

// DKIMStateRetired is dkimsign.StateRetired.
const DKIMStateRetired = dkimsign.StateRetired

// DKIMKey is dkimsign.Key.
type DKIMKey = dkimsign.Key

// DomainDKIM is dkimsign.DomainDKIM.
type DomainDKIM = dkimsign.DomainDKIM

// ReadinessPass is readiness.Pass.
const ReadinessPass = readiness.Pass

// ReadinessWarn is readiness.Warn.
const ReadinessWarn = readiness.Warn

// ReadinessFail is readiness.Fail.
const ReadinessFail = readiness.Fail

// Readiness is readiness.Report.
type Readiness = readiness.Report

// SPFCheck is readiness.SPFCheck.
type SPFCheck = readiness.SPFCheck

// DKIMCheck is readiness.DKIMCheck.
type DKIMCheck = readiness.DKIMCheck

// DMARCCheck is readiness.DMARCCheck.
type DMARCCheck = readiness.DMARCCheck

// Rates is readiness.Rates.
type Rates = readiness.Rates
