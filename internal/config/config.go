// Package config is Easymail's configuration: the YAML schema as Go structs, the embedded defaults, loading
// (unknown keys are errors) and validation (every error names the offending key).
//
// Load returns a value; nothing here is global. Durations are written as Go durations ("10m", "4h").
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file.
type Config struct {
	// Hostname is the EHLO name on ingress and the reporting MTA in DSNs. Default: the machine's host name.
	Hostname string `yaml:"hostname"`
	// DataDir holds the spool, the SQLite database, keys and the admin token. Default: ./data.
	DataDir string `yaml:"data_dir"`
	// Database is empty for SQLite in DataDir, or a postgres:// URL. Default: "".
	Database string `yaml:"database"`
	// NodeID names this node in a cluster; queue rows are owned by the node whose spool holds the message.
	// Default: Hostname.
	NodeID string `yaml:"node_id"`

	SMTP     SMTP     `yaml:"smtp"`
	API      API      `yaml:"api"`
	DNS      DNS      `yaml:"dns"`
	Delivery Delivery `yaml:"delivery"`
	Pools    []Pool   `yaml:"pools"`
	RBL      RBL      `yaml:"rbl"`
	Scan     Scan     `yaml:"scan"`
	Log      Log      `yaml:"log"`
}

// SMTP is the customer-facing SMTP listener.
type SMTP struct {
	// Listen is the list of addresses to accept customer connections on. Default: ["127.0.0.1:2525"].
	Listen []string `yaml:"listen"`
	// MaxMessageSize is the largest message accepted, in bytes. Default: 52428800 (50 MiB).
	MaxMessageSize int64 `yaml:"max_message_size"`
	// MaxRecipients is the most recipients one message may have. Default: 1000.
	MaxRecipients int `yaml:"max_recipients"`
	// TLSCert and TLSKey are PEM files for STARTTLS. Default: a self-signed certificate generated in DataDir
	// at first start.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// ReadTimeout bounds the wait for each command or data block. Default: 5m (RFC 5321 §4.5.3.2).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds each reply write. Default: 1m.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxReceived is the number of Received headers from which a message is refused as a loop. Default: 50.
	MaxReceived int `yaml:"max_received"`
}

// API is the HTTP listener for the REST API, the portal, /metrics and /healthz.
type API struct {
	// Listen is the API address. Default: "127.0.0.1:8025".
	Listen string `yaml:"listen"`
	// PublicURL is the base of links given to customers (onboarding). Default: "http://" + Listen.
	PublicURL string `yaml:"public_url"`
}

// DNS is the resolver configuration.
type DNS struct {
	// Servers are resolver addresses (host:port). Default: empty, the system's (/etc/resolv.conf).
	Servers []string `yaml:"servers"`
	// Timeout bounds one query. Default: 5s.
	Timeout time.Duration `yaml:"timeout"`
}

// Delivery is the outbound side.
type Delivery struct {
	// Port is the TCP port used on remote MX hosts. Default: 25.
	Port int `yaml:"port"`
	// Retry is the backoff schedule after a temporary failure; the last step repeats.
	// Default: [5m, 10m, 20m, 40m, 1h, 2h, 4h].
	Retry []time.Duration `yaml:"retry"`
	// MaxQueueLifetime is how long a message is retried before it bounces. Default: 120h (5 days).
	MaxQueueLifetime time.Duration `yaml:"max_queue_lifetime"`
	// DelayNotice is the age at which a delay DSN is sent, once; 0 disables. Default: 4h.
	DelayNotice time.Duration `yaml:"delay_notice"`
	// MaxPerDestination is the most concurrent connections to one destination domain. Default: 10.
	MaxPerDestination int `yaml:"max_per_destination"`
	// Workers is the most deliveries in progress at once. Default: 100.
	Workers int `yaml:"workers"`
	// ConnectTimeout bounds a TCP connect to an MX. Default: 30s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// CommandTimeout bounds each SMTP command's reply from an MX. Default: 5m.
	CommandTimeout time.Duration `yaml:"command_timeout"`
	// IdleTimeout is how long an open connection is kept for the next message to the same MX. Default: 5s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// Pool is a named group of outbound IPs.
type Pool struct {
	Name string     `yaml:"name"`
	IPs  []PoolAddr `yaml:"ips"`
}

// PoolAddr is one outbound IP with its HELO name (which should match its PTR).
type PoolAddr struct {
	Address string `yaml:"address"`
	HELO    string `yaml:"helo"`
}

// RBL is DNSBL supervision of the outbound IPs.
type RBL struct {
	// Zones are the DNSBL zones checked for every outbound IP. Default: none.
	Zones []string `yaml:"zones"`
	// Interval is the time between two checks of an IP. Default: 10m.
	Interval time.Duration `yaml:"interval"`
}

// Scan names the content scanners.
type Scan struct {
	// Clamd is tcp://host:port or unix:///path. Default: "" (no antivirus).
	Clamd string `yaml:"clamd"`
	// Rspamd is the rspamd HTTP base URL. Default: "" (no antispam).
	Rspamd string `yaml:"rspamd"`
}

// Log is the process log.
type Log struct {
	// Level is debug, info, warn or error. Default: info.
	Level string `yaml:"level"`
	// Format is text or json. Default: text.
	Format string `yaml:"format"`
}

// Default returns the embedded defaults, the configuration used when no file is given.
func Default() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return Config{
		Hostname: host,
		DataDir:  "./data",
		SMTP: SMTP{
			Listen:         []string{"127.0.0.1:2525"},
			MaxMessageSize: 52428800,
			MaxRecipients:  1000,
			ReadTimeout:    5 * time.Minute,
			WriteTimeout:   time.Minute,
			MaxReceived:    50,
		},
		API: API{Listen: "127.0.0.1:8025"},
		DNS: DNS{Timeout: 5 * time.Second},
		Delivery: Delivery{
			Port: 25,
			Retry: []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute,
				time.Hour, 2 * time.Hour, 4 * time.Hour},
			MaxQueueLifetime:  120 * time.Hour,
			DelayNotice:       4 * time.Hour,
			MaxPerDestination: 10,
			Workers:           100,
			ConnectTimeout:    30 * time.Second,
			CommandTimeout:    5 * time.Minute,
			IdleTimeout:       5 * time.Second,
		},
		Pools: []Pool{{Name: "default", IPs: []PoolAddr{{Address: "127.0.0.1", HELO: host}}}},
		RBL:   RBL{Interval: 10 * time.Minute},
		Log:   Log{Level: "info", Format: "text"},
	}
}

// Load reads the YAML file at path over the defaults and validates the result. An empty path gives the
// defaults. Unknown keys are errors.
func Load(path string) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		if err := Parse(b, &c); err != nil {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
	}
	c.fill()
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// Parse decodes YAML b over c. Unknown keys are errors.
func Parse(b []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty document leaves the defaults.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// fill derives the values left empty from the others.
func (c *Config) fill() {
	if c.NodeID == "" {
		c.NodeID = c.Hostname
	}
	if c.API.PublicURL == "" {
		c.API.PublicURL = "http://" + c.API.Listen
	}
	c.API.PublicURL = strings.TrimRight(c.API.PublicURL, "/")
	for i := range c.Pools {
		for j := range c.Pools[i].IPs {
			if c.Pools[i].IPs[j].HELO == "" {
				c.Pools[i].IPs[j].HELO = c.Hostname
			}
		}
	}
}

// KeyError is a validation error naming the configuration key at fault.
type KeyError struct {
	Key string
	Msg string
}

func (e *KeyError) Error() string { return "config: " + e.Key + ": " + e.Msg }

// Validate checks every key and returns the first error found, as a *KeyError.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if c.Hostname == "" || strings.ContainsAny(c.Hostname, " \t\r\n") {
		return bad("hostname", "must be a host name")
	}
	if c.DataDir == "" {
		return bad("data_dir", "must not be empty")
	}
	if c.Database != "" && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		return bad("database", "must be empty (SQLite) or a postgres:// URL")
	}
	if len(c.SMTP.Listen) == 0 {
		return bad("smtp.listen", "needs at least one address")
	}
	for i, a := range c.SMTP.Listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return bad(fmt.Sprintf("smtp.listen[%d]", i), "%v", err)
		}
	}
	if c.SMTP.MaxMessageSize < 1024 {
		return bad("smtp.max_message_size", "must be at least 1024 bytes")
	}
	if c.SMTP.MaxRecipients < 1 {
		return bad("smtp.max_recipients", "must be at least 1")
	}
	if (c.SMTP.TLSCert == "") != (c.SMTP.TLSKey == "") {
		return bad("smtp.tls_cert", "tls_cert and tls_key go together")
	}
	if c.SMTP.ReadTimeout <= 0 || c.SMTP.WriteTimeout <= 0 {
		return bad("smtp.read_timeout", "timeouts must be positive")
	}
	if c.SMTP.MaxReceived < 1 {
		return bad("smtp.max_received", "must be at least 1")
	}
	if _, _, err := net.SplitHostPort(c.API.Listen); err != nil {
		return bad("api.listen", "%v", err)
	}
	for i, s := range c.DNS.Servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return bad(fmt.Sprintf("dns.servers[%d]", i), "must be host:port: %v", err)
		}
	}
	if c.DNS.Timeout <= 0 {
		return bad("dns.timeout", "must be positive")
	}
	d := c.Delivery
	if d.Port < 1 || d.Port > 65535 {
		return bad("delivery.port", "must be 1-65535")
	}
	if len(d.Retry) == 0 {
		return bad("delivery.retry", "needs at least one interval")
	}
	for i, r := range d.Retry {
		if r <= 0 {
			return bad(fmt.Sprintf("delivery.retry[%d]", i), "must be positive")
		}
	}
	if d.MaxQueueLifetime <= 0 {
		return bad("delivery.max_queue_lifetime", "must be positive")
	}
	if d.DelayNotice < 0 {
		return bad("delivery.delay_notice", "must not be negative")
	}
	if d.MaxPerDestination < 1 {
		return bad("delivery.max_per_destination", "must be at least 1")
	}
	if d.Workers < 1 {
		return bad("delivery.workers", "must be at least 1")
	}
	if d.ConnectTimeout <= 0 || d.CommandTimeout <= 0 || d.IdleTimeout < 0 {
		return bad("delivery.connect_timeout", "timeouts must be positive")
	}
	if len(c.Pools) == 0 {
		return bad("pools", "needs at least one pool")
	}
	names := map[string]bool{}
	for i, p := range c.Pools {
		key := fmt.Sprintf("pools[%d]", i)
		if p.Name == "" {
			return bad(key+".name", "must not be empty")
		}
		if names[p.Name] {
			return bad(key+".name", "pool %q is defined twice", p.Name)
		}
		names[p.Name] = true
		if len(p.IPs) == 0 {
			return bad(key+".ips", "needs at least one address")
		}
		for j, a := range p.IPs {
			if _, err := netip.ParseAddr(a.Address); err != nil {
				return bad(fmt.Sprintf("%s.ips[%d].address", key, j), "not an IP address: %q", a.Address)
			}
		}
	}
	if c.RBL.Interval <= 0 {
		return bad("rbl.interval", "must be positive")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "must be debug, info, warn or error")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", "must be text or json")
	}
	return nil
}

// Path returns p made absolute against the data directory when it is relative.
func (c *Config) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// Pool returns the pool named name.
func (c *Config) Pool(name string) (Pool, bool) {
	for _, p := range c.Pools {
		if p.Name == name {
			return p, true
		}
	}
	return Pool{}, false
}
