package config

import (
	"time"

	"easymail/internal/ratelimit"
)

// Limits are the default per-customer rate limits, applied to every customer that has no value of its own
// (set through PATCH /customers/{id} "rate_limits"). 0 is unlimited. Over a limit, MAIL (messages) or RCPT
// (recipients) is answered "451 4.7.0", so that the customer's MTA retries later: limits shape bursts, they
// never lose mail. Default: all 0 (unlimited).
type Limits struct {
	// MessagesPerMinute and MessagesPerHour bound the messages (MAIL commands) of one customer.
	MessagesPerMinute int `yaml:"messages_per_minute"`
	MessagesPerHour   int `yaml:"messages_per_hour"`
	// RecipientsPerMinute and RecipientsPerHour bound the recipients (RCPT commands) of one customer.
	RecipientsPerMinute int `yaml:"recipients_per_minute"`
	RecipientsPerHour   int `yaml:"recipients_per_hour"`
	// Burst is the most messages, and the most recipients, accepted at once under the per-minute limits
	// after a quiet time; 0 means the per-minute limit itself. The per-hour limits burst to their own size.
	Burst int `yaml:"burst"`
}

// Compromise is the detection of a compromised customer: one whose volume jumps far above its own
// baseline, or whose share of refused messages is high, has its outbound mail held (accepted and kept,
// not delivered) until an operator releases or purges it.
type Compromise struct {
	// Enabled turns detection on. Default: true.
	Enabled bool `yaml:"enabled"`
	// Window is the recent period looked at. Default: 10m.
	Window time.Duration `yaml:"window"`
	// Factor and Floor set the volume threshold: a customer is held when it has more messages in Window than
	// max(Floor, Factor × its average messages per hour over Baseline). Defaults: 10 and 1000.
	Factor float64 `yaml:"factor"`
	Floor  int     `yaml:"floor"`
	// Baseline is the history the hourly average is taken over (at most the customer's age). Default: 168h.
	Baseline time.Duration `yaml:"baseline"`
	// RefusedRatio holds a customer whose refused messages (anti-spoofing, content verdicts) are at least
	// this share of its messages in Window, once it has RefusedMin messages there; 0 turns it off.
	// Defaults: 0.5 and 100.
	RefusedRatio float64 `yaml:"refused_ratio"`
	RefusedMin   int     `yaml:"refused_min"`
	// Interval is the time between two checks. Default: 1m.
	Interval time.Duration `yaml:"interval"`
}

// DefaultCompromise returns the default compromise detection settings.
func DefaultCompromise() Compromise {
	return Compromise{Enabled: true, Window: 10 * time.Minute, Factor: 10, Floor: 1000, Baseline: 168 * time.Hour,
		RefusedRatio: 0.5, RefusedMin: 100, Interval: time.Minute}
}

// validateProtection checks the smtp connection limits and the limits and compromise sections.
func (c *Config) validateProtection() error {
	bad := func(key, msg string) error { return &KeyError{Key: key, Msg: msg} }
	s := c.SMTP
	switch {
	case s.MaxConnections < 0:
		return bad("smtp.max_connections", "must not be negative (0 is no cap)")
	case s.MaxConnectionsPerIP < 0:
		return bad("smtp.max_connections_per_ip", "must not be negative (0 is no cap)")
	case s.PregreetDelay < 0 || s.PregreetDelay > time.Minute:
		return bad("smtp.pregreet_delay", "must be between 0s and 1m")
	case s.SessionTimeout <= 0:
		return bad("smtp.session_timeout", "must be positive")
	case s.DataTimeout <= 0:
		return bad("smtp.data_timeout", "must be positive")
	case s.MaxErrors < 1:
		return bad("smtp.max_errors", "must be at least 1")
	}
	if _, err := ratelimit.ParseRule(s.ConnectionRatePerIP); err != nil {
		return bad("smtp.connection_rate_per_ip", err.Error())
	}
	l := c.Limits
	for _, v := range []struct {
		key string
		n   int
	}{
		{"limits.messages_per_minute", l.MessagesPerMinute}, {"limits.messages_per_hour", l.MessagesPerHour},
		{"limits.recipients_per_minute", l.RecipientsPerMinute}, {"limits.recipients_per_hour", l.RecipientsPerHour},
		{"limits.burst", l.Burst},
	} {
		if v.n < 0 {
			return bad(v.key, "must not be negative (0 is unlimited)")
		}
	}
	p := c.Compromise
	switch {
	case p.Window <= 0:
		return bad("compromise.window", "must be positive")
	case !(p.Factor >= 1) || p.Factor > 1e6:
		return bad("compromise.factor", "must be between 1 and 1000000")
	case p.Floor < 1:
		return bad("compromise.floor", "must be at least 1")
	case p.Baseline < p.Window:
		return bad("compromise.baseline", "must be at least compromise.window")
	case !(p.RefusedRatio >= 0 && p.RefusedRatio <= 1):
		return bad("compromise.refused_ratio", "must be between 0 (off) and 1")
	case p.RefusedMin < 1:
		return bad("compromise.refused_min", "must be at least 1")
	case p.Interval <= 0:
		return bad("compromise.interval", "must be positive")
	}
	return nil
}
