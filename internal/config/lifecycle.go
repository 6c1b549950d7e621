package config

import (
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
)

// Lifecycle is the customers' provisioning rules and termination schedule (docs/lifecycle.md).
type Lifecycle struct {
	// Notices are how long before a scheduled deactivation the customer's contacts are warned by e-mail;
	// they are also warned at the deactivation itself. Default: [720h, 168h] (30 and 7 days).
	Notices []time.Duration `yaml:"notices"`
	// Grace is the time between deactivation and the removal of the customer's relay hosts, domains and
	// source IPs. Default: 720h (30 days).
	Grace time.Duration `yaml:"grace"`
	// Interval is the time between two runs of the scheduler. Default: 1m.
	Interval time.Duration `yaml:"interval"`
	// NoticeFrom is the sender of the notices. Default: postmaster@<hostname>.
	NoticeFrom string `yaml:"notice_from"`
	// SPFDomain is the operator's SPF domain: customers add include:<spf_domain> to their SPF records, and
	// `easymail dns spf` prints its records. Default: _spf.<hostname without its first label>.
	SPFDomain string `yaml:"spf_domain"`
	// RefusePrivateIPs refuses private, loopback, link-local and shared (RFC 1918, RFC 6598, RFC 4193)
	// addresses as customers' source IPs and relay hosts. Default: false (lab and test installations relay
	// from such addresses).
	RefusePrivateIPs bool `yaml:"refuse_private_ips"`
}

// DefaultLifecycle returns the default lifecycle settings.
func DefaultLifecycle() Lifecycle {
	return Lifecycle{Notices: []time.Duration{720 * time.Hour, 168 * time.Hour}, Grace: 720 * time.Hour, Interval: time.Minute}
}

// fillLifecycle derives the notice sender and the SPF domain from the host name.
func (c *Config) fillLifecycle() {
	c.Lifecycle.NoticeFrom = c.NoticeFrom()
	c.Lifecycle.SPFDomain = c.SPFDomain()
}

// NoticeFrom is lifecycle.notice_from, or its default postmaster@<hostname> when empty.
func (c *Config) NoticeFrom() string {
	if c.Lifecycle.NoticeFrom != "" {
		return c.Lifecycle.NoticeFrom
	}
	return "postmaster@" + strings.TrimSuffix(c.Hostname, ".")
}

// SPFDomain is lifecycle.spf_domain (lower case, no trailing dot), or its default when empty:
// _spf.<hostname without its first label> ("relay.example.net" gives "_spf.example.net").
func (c *Config) SPFDomain() string {
	d := c.Lifecycle.SPFDomain
	if d == "" {
		h := strings.TrimSuffix(c.Hostname, ".")
		if i := strings.IndexByte(h, '.'); i >= 0 && i < len(h)-1 {
			h = h[i+1:]
		}
		d = "_spf." + h
	}
	return strings.ToLower(strings.TrimSuffix(d, "."))
}

// validateLifecycle checks the lifecycle section.
func (c *Config) validateLifecycle() error {
	l := c.Lifecycle
	bad := func(key, format string, args ...any) error {
		return &KeyError{Key: "lifecycle." + key, Msg: fmt.Sprintf(format, args...)}
	}
	for i, d := range l.Notices {
		if d <= 0 {
			return bad(fmt.Sprintf("notices[%d]", i), "must be positive")
		}
	}
	sorted := slices.Clone(l.Notices)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(l.Notices) {
		return bad("notices", "has the same delay twice")
	}
	if l.Grace < 0 {
		return bad("grace", "must not be negative")
	}
	if l.Interval <= 0 {
		return bad("interval", "must be positive")
	}
	if from := c.NoticeFrom(); !strings.Contains(from, "@") {
		return bad("notice_from", "must be an e-mail address (local@domain), got %q", from)
	} else if a, err := mail.ParseAddress(from); err != nil || a.Address != from {
		return bad("notice_from", "must be an e-mail address (local@domain), got %q", from)
	}
	if d := c.SPFDomain(); !isHostName(d) || !strings.Contains(d, ".") {
		return bad("spf_domain", "must be a domain name, got %q", d)
	}
	return nil
}
