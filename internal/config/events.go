package config

import (
	"net/mail"
	"strings"
	"time"
)

// Events is the delivery of events to the customers' webhooks (docs/events.md).
type Events struct {
	// Timeout bounds one webhook POST, from connecting to the end of the answer. Default: 10s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxResponse is the most bytes of a webhook's answer read. Default: 65536.
	MaxResponse int64 `yaml:"max_response"`
	// RetryBase is the wait after a first failed POST; each further failure doubles it up to RetryMax.
	// Defaults: 30s and 1h.
	RetryBase time.Duration `yaml:"retry_base"`
	RetryMax  time.Duration `yaml:"retry_max"`
	// MaxAttempts is the number of POSTs after which an event is dead-lettered. Default: 12 (about 7 hours
	// with the default backoff).
	MaxAttempts int `yaml:"max_attempts"`
	// Workers is the most POSTs in progress at once. Default: 4.
	Workers int `yaml:"workers"`
}

// Complaints is the intake of feedback reports and one-click unsubscribe requests (docs/events.md).
type Complaints struct {
	// Address is the relay's address for feedback reports (ARF, RFC 5965), the one registered with the
	// receivers' feedback loops, e.g. "fbl@relay.example.net". "" turns complaint intake off. Default: "".
	Address string `yaml:"address"`
	// Listen are the addresses of the feedback listener: an SMTP server that accepts mail from anyone, but
	// only for Address (and the unsubscribe addresses of customers that delegate them). Point the MX of
	// Address's domain at it (port 25). Default: [] (no listener).
	Listen []string `yaml:"listen"`
	// MaxSize is the largest report accepted, in bytes. Default: 1048576 (1 MiB).
	MaxSize int64 `yaml:"max_size"`
	// RateWindow is the window of the complaint rates (complaints / delivered messages). Default: 24h.
	RateWindow time.Duration `yaml:"rate_window"`
	// RateThreshold is the complaint rate over which a customer's mail is held by compromise detection,
	// once it has RateMin complaints in the window. 0 turns that off. Default: 0.003 (0.3 %, the rate large
	// receivers say must never be reached).
	RateThreshold float64 `yaml:"rate_threshold"`
	RateMin       int     `yaml:"rate_min"`
}

// DefaultEvents returns the default webhook delivery settings.
func DefaultEvents() Events {
	return Events{Timeout: 10 * time.Second, MaxResponse: 64 << 10, RetryBase: 30 * time.Second, RetryMax: time.Hour,
		MaxAttempts: 12, Workers: 4}
}

// DefaultComplaints returns the default complaint intake settings.
func DefaultComplaints() Complaints {
	return Complaints{MaxSize: 1 << 20, RateWindow: 24 * time.Hour, RateThreshold: 0.003, RateMin: 10}
}

// validateEvents checks the events and complaints sections.
func (c *Config) validateEvents() error {
	bad := func(key, msg string) error { return &KeyError{Key: key, Msg: msg} }
	e, f := c.Events, c.Complaints
	switch {
	case e.Timeout <= 0:
		return bad("events.timeout", "must be positive")
	case e.MaxResponse < 1:
		return bad("events.max_response", "must be positive")
	case e.RetryBase <= 0:
		return bad("events.retry_base", "must be positive")
	case e.RetryMax < e.RetryBase:
		return bad("events.retry_max", "must be at least events.retry_base")
	case e.MaxAttempts < 1 || e.MaxAttempts > 100:
		return bad("events.max_attempts", "must be 1-100")
	case e.Workers < 1 || e.Workers > 100:
		return bad("events.workers", "must be 1-100")
	case f.MaxSize < 1024:
		return bad("complaints.max_size", "must be at least 1024")
	case f.RateWindow < time.Hour:
		return bad("complaints.rate_window", "must be at least 1h")
	case f.RateThreshold < 0 || f.RateThreshold > 1:
		return bad("complaints.rate_threshold", "must be 0-1 (0 turns holding off)")
	case f.RateMin < 1:
		return bad("complaints.rate_min", "must be at least 1")
	case len(f.Listen) > 0 && f.Address == "":
		return bad("complaints.listen", "needs complaints.address")
	}
	if f.Address != "" {
		a, err := mail.ParseAddress(f.Address)
		if err != nil || a.Address != f.Address || !strings.Contains(f.Address, "@") {
			return bad("complaints.address", "must be a bare e-mail address (fbl@relay.example.net)")
		}
	}
	return nil
}
