package config

import (
	"fmt"
	"path"
	"time"
)

// Shaping is provider-aware traffic shaping (docs/shaping.md): destinations whose MX hosts match one
// provider's patterns share its limits, and its "slow down" replies pause the outbound IP for it.
type Shaping struct {
	// Providers are the providers and their limits. Default: DefaultProviders (Google, Microsoft, Yahoo,
	// Apple). Setting the key replaces the whole list; [] turns provider shaping off.
	Providers []Provider `yaml:"providers"`
	// PauseBase is the pause of an outbound IP for a provider after its first throttling reply; each
	// further one before a delivery goes through doubles it, up to PauseMax. Defaults: 1m and 1h.
	PauseBase time.Duration `yaml:"pause_base"`
	PauseMax  time.Duration `yaml:"pause_max"`
}

// Provider is a receiver's limits; zero limits are no limit.
type Provider struct {
	// Name names the provider in metrics and the API.
	Name string `yaml:"name" json:"name"`
	// MX are the MX host name patterns that mark a destination as the provider's: "*.google.com" matches
	// every host under google.com, "mx.example.net" that host (path.Match syntax, without regard to case).
	MX []string `yaml:"mx" json:"mx"`
	// MaxConnections bounds the deliveries in progress to the provider from all outbound IPs together,
	// MaxConnectionsPerIP those from one IP; a delivery over them waits.
	MaxConnections      int `yaml:"max_connections" json:"max_connections"`
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip" json:"max_connections_per_ip"`
	// MessagesPerConnection is the most messages sent over one connection before it is closed.
	MessagesPerConnection int `yaml:"messages_per_connection" json:"messages_per_connection"`
	// PerMinute and PerHour bound the messages sent from one outbound IP to the provider; over them a
	// delivery is deferred (451 4.7.0) without connecting.
	PerMinute int `yaml:"per_minute" json:"per_minute"`
	PerHour   int `yaml:"per_hour" json:"per_hour"`
}

// DefaultProviders are limits for the large receivers, within what they accept from a well-reputed IP.
func DefaultProviders() []Provider {
	return []Provider{
		{Name: "google", MX: []string{"*.google.com", "*.googlemail.com"}, MaxConnections: 40, MaxConnectionsPerIP: 10,
			MessagesPerConnection: 100, PerMinute: 600, PerHour: 20000},
		{Name: "microsoft", MX: []string{"*.outlook.com", "*.hotmail.com"}, MaxConnections: 40, MaxConnectionsPerIP: 10,
			MessagesPerConnection: 100, PerMinute: 300, PerHour: 10000},
		{Name: "yahoo", MX: []string{"*.yahoodns.net"}, MaxConnections: 20, MaxConnectionsPerIP: 5,
			MessagesPerConnection: 20, PerMinute: 200, PerHour: 6000},
		{Name: "apple", MX: []string{"*.mail.icloud.com"}, MaxConnections: 20, MaxConnectionsPerIP: 5,
			MessagesPerConnection: 50, PerMinute: 200, PerHour: 6000},
	}
}

// DefaultShaping returns the default shaping settings.
func DefaultShaping() Shaping {
	return Shaping{Providers: DefaultProviders(), PauseBase: time.Minute, PauseMax: time.Hour}
}

// validateShaping checks the shaping section.
func (c *Config) validateShaping() error {
	bad := func(key, msg string) error { return &KeyError{Key: key, Msg: msg} }
	s := c.Shaping
	if s.PauseBase <= 0 {
		return bad("shaping.pause_base", "must be positive")
	}
	if s.PauseMax < s.PauseBase {
		return bad("shaping.pause_max", "must be at least shaping.pause_base")
	}
	seen := map[string]bool{}
	for i, p := range s.Providers {
		key := fmt.Sprintf("shaping.providers[%d]", i)
		switch {
		case p.Name == "" || seen[p.Name]:
			return bad(key+".name", "must be set and unique")
		case len(p.MX) == 0:
			return bad(key+".mx", "must list at least one MX host pattern (*.google.com)")
		case p.MaxConnections < 0 || p.MaxConnectionsPerIP < 0 || p.MessagesPerConnection < 0 || p.PerMinute < 0 || p.PerHour < 0:
			return bad(key, "limits must not be negative (0 is no limit)")
		}
		seen[p.Name] = true
		for _, m := range p.MX {
			if _, err := path.Match(m, "x"); err != nil || m == "" {
				return bad(key+".mx", fmt.Sprintf("%q is not a host name pattern", m))
			}
		}
	}
	return nil
}
