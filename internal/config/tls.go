package config

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// DeliveryTLS is the TLS of outbound delivery (docs/delivery.md), the keys under delivery: tls_policy,
// tls_policies, tls_ca_file, mta_sts and tls_rpt.
type DeliveryTLS struct {
	// TLSPolicy is the default TLS policy: may (opportunistic STARTTLS), encrypt (STARTTLS required, any
	// certificate) or verify (STARTTLS required, the certificate verified for the MX host name). Default: may.
	TLSPolicy string `yaml:"tls_policy"`
	// TLSPolicies are destinations' own policies, by domain: {"bank.example": "verify"}. Default: none.
	TLSPolicies map[string]string `yaml:"tls_policies"`
	// TLSCAFile is a PEM file of extra root certificates trusted for MX hosts and MTA-STS policy servers,
	// besides the system's. Default: "" (the system's roots only).
	TLSCAFile string `yaml:"tls_ca_file"`
	// MTASTS is the sending side of MTA-STS (RFC 8461).
	MTASTS MTASTS `yaml:"mta_sts"`
	// TLSRPT is the sending of TLS reports (RFC 8460).
	TLSRPT TLSRPT `yaml:"tls_rpt"`
}

// MTASTS configures MTA-STS.
type MTASTS struct {
	// Enabled looks destinations' MTA-STS policies up and applies them. Default: true.
	Enabled bool `yaml:"enabled"`
	// FetchTimeout bounds the HTTPS fetch of a policy. Default: 30s.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// Refresh is how often a destination's _mta-sts TXT record is checked for a new policy. Default: 1h.
	Refresh time.Duration `yaml:"refresh"`
}

// TLSRPT configures TLS reporting.
type TLSRPT struct {
	// Enabled counts sessions under MTA-STS and DANE and sends the daily reports. Default: true.
	Enabled bool `yaml:"enabled"`
	// Organization is the report's organization-name. Default: the hostname.
	Organization string `yaml:"organization"`
	// Contact is the report's contact-info and the sender of mailed reports. Default: postmaster@<hostname>.
	Contact string `yaml:"contact"`
	// Interval is how often the job looks for finished days to report. Default: 1h.
	Interval time.Duration `yaml:"interval"`
}

// DefaultDeliveryTLS returns the defaults.
func DefaultDeliveryTLS() DeliveryTLS {
	return DeliveryTLS{
		TLSPolicy: "may",
		MTASTS:    MTASTS{Enabled: true, FetchTimeout: 30 * time.Second, Refresh: time.Hour},
		TLSRPT:    TLSRPT{Enabled: true, Interval: time.Hour},
	}
}

// ValidTLSPolicy reports whether s is may, encrypt or verify.
func ValidTLSPolicy(s string) bool {
	return s == "may" || s == "encrypt" || s == "verify"
}

// fillDeliveryTLS derives the report's organization and contact from the host name, and writes the
// destinations in lower case.
func (c *Config) fillDeliveryTLS() {
	t := &c.Delivery.DeliveryTLS
	if t.TLSRPT.Organization == "" {
		t.TLSRPT.Organization = c.Hostname
	}
	if t.TLSRPT.Contact == "" {
		t.TLSRPT.Contact = "postmaster@" + strings.TrimSuffix(c.Hostname, ".")
	}
	if len(t.TLSPolicies) > 0 {
		lower := make(map[string]string, len(t.TLSPolicies))
		for d, p := range t.TLSPolicies {
			lower[strings.ToLower(strings.TrimSuffix(d, "."))] = p
		}
		t.TLSPolicies = lower
	}
}

// validateDeliveryTLS checks the TLS keys of delivery.
func (c *Config) validateDeliveryTLS() error {
	t := c.Delivery.DeliveryTLS
	bad := func(key, format string, args ...any) error {
		return &KeyError{Key: "delivery." + key, Msg: fmt.Sprintf(format, args...)}
	}
	if !ValidTLSPolicy(t.TLSPolicy) {
		return bad("tls_policy", "must be may, encrypt or verify, got %q", t.TLSPolicy)
	}
	for d, p := range t.TLSPolicies {
		if !isHostName(d) {
			return bad("tls_policies", "%q is not a domain name", d)
		}
		if !ValidTLSPolicy(p) {
			return bad("tls_policies."+d, "must be may, encrypt or verify, got %q", p)
		}
	}
	if t.TLSCAFile != "" {
		if _, err := os.Stat(c.Path(t.TLSCAFile)); err != nil {
			return bad("tls_ca_file", "%v", err)
		}
	}
	if t.MTASTS.FetchTimeout <= 0 || t.MTASTS.Refresh <= 0 {
		return bad("mta_sts.fetch_timeout", "fetch_timeout and refresh must be positive")
	}
	if t.TLSRPT.Interval <= 0 {
		return bad("tls_rpt.interval", "must be positive")
	}
	if t.TLSRPT.Contact != "" && !strings.Contains(t.TLSRPT.Contact, "@") {
		return bad("tls_rpt.contact", "must be an e-mail address, got %q", t.TLSRPT.Contact)
	}
	return nil
}
