package config

import "time"

// Suppression is the per-customer suppression list of hard-bounced addresses (docs/analysis.md).
type Suppression struct {
	// TTL is how long an address stays suppressed after a hard bounce of a bad mailbox (and an operator's
	// entry without an expiry of its own); meanwhile the customer's mail to it is refused at RCPT with
	// "550 5.1.1". 0 turns automatic suppression off. Default: 720h (30 days).
	TTL time.Duration `yaml:"ttl"`
}

// Retention is the deletion of old message log rows (docs/analysis.md). Message bodies are never kept after
// delivery; this is about the log: messages, their recipients and delivery attempts.
type Retention struct {
	// Log is the age after which a finished message's log rows are deleted; 0 keeps them forever.
	// Default: 4380h (6 months).
	Log time.Duration `yaml:"log"`
	// Interval is the time between two runs of the deletion job (the first runs a minute after start).
	// Default: 24h.
	Interval time.Duration `yaml:"interval"`
	// Batch is the most messages deleted in one transaction. Default: 1000.
	Batch int `yaml:"batch"`
	// Pause is the wait between two batches, so that deletion never holds up traffic. Default: 200ms.
	Pause time.Duration `yaml:"pause"`
}

// DefaultSuppression returns the default suppression settings.
func DefaultSuppression() Suppression { return Suppression{TTL: 720 * time.Hour} }

// DefaultRetention returns the default retention settings.
func DefaultRetention() Retention {
	return Retention{Log: 4380 * time.Hour, Interval: 24 * time.Hour, Batch: 1000, Pause: 200 * time.Millisecond}
}

// validateAnalysis checks the suppression and retention sections.
func (c *Config) validateAnalysis() error {
	bad := func(key, msg string) error { return &KeyError{Key: key, Msg: msg} }
	switch r := c.Retention; {
	case c.Suppression.TTL < 0:
		return bad("suppression.ttl", "must not be negative (0 turns automatic suppression off)")
	case r.Log < 0:
		return bad("retention.log", "must not be negative (0 keeps the log forever)")
	case r.Log > 0 && r.Log < time.Hour:
		return bad("retention.log", "must be 0 or at least 1h")
	case r.Interval <= 0:
		return bad("retention.interval", "must be positive")
	case r.Batch < 1 || r.Batch > 100000:
		return bad("retention.batch", "must be 1-100000")
	case r.Pause < 0:
		return bad("retention.pause", "must not be negative")
	}
	return nil
}
