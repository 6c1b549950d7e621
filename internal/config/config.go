// Package config is Easymail's configuration: the YAML schema as Go structs, the embedded defaults, loading
// (unknown keys are errors) and validation (every error names the offending key).
//
// Load returns a value; nothing here is global. Durations are written as Go durations ("10m", "4h").
package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	Database string `yaml:"database" secret:"url"`
	// NodeID names this node in a cluster; queue rows are owned by the node whose spool holds the message.
	// It is written to <data_dir>/node-id at the first start, and a later start with another id is refused
	// (`easymail rename-node` changes it on purpose). Default: Hostname.
	NodeID string `yaml:"node_id"`
	// OperatorEmail receives notices about the outbound IPs (listed, delisted, paused) and the relay host
	// addresses ignored by the access table, queued through Easymail itself from postmaster@<hostname>. Default: "" (no e-mail; the notices are logged and counted in metrics).
	OperatorEmail string `yaml:"operator_email"`

	SMTP     SMTP     `yaml:"smtp"`
	API      API      `yaml:"api"`
	DNS      DNS      `yaml:"dns"`
	Delivery Delivery `yaml:"delivery"`
	Pools    []Pool   `yaml:"pools"`
	RBL      RBL      `yaml:"rbl"`
	IPPool   IPPool   `yaml:"ippool"`
	Scan     Scan     `yaml:"scan"`
	DKIM     DKIM     `yaml:"dkim"`
	Metrics  Metrics  `yaml:"metrics"`
	Log      Log      `yaml:"log"`

	// Limits are the default per-customer rate limits; Compromise is compromise detection (docs/protection.md).
	Limits     Limits     `yaml:"limits"`
	Compromise Compromise `yaml:"compromise"`

	// Suppression is the suppression list of hard-bounced addresses; Retention the deletion of old message
	// log rows (docs/analysis.md).
	Suppression Suppression `yaml:"suppression"`
	Retention   Retention   `yaml:"retention"`
	// Lifecycle is the customers' termination schedule and the operator's SPF domain (docs/lifecycle.md).
	Lifecycle Lifecycle `yaml:"lifecycle"`
	// Events is the delivery of events to webhooks; Complaints the intake of feedback reports
	// (docs/events.md).
	Events     Events     `yaml:"events"`
	Complaints Complaints `yaml:"complaints"`
	// Shaping is provider-aware traffic shaping (docs/shaping.md).
	Shaping Shaping `yaml:"shaping"`
	// Incidents is incident tracking, the SLA types and the relay's own monitors (docs/incidents.md).
	Incidents Incidents `yaml:"incidents"`
	// Portal is the web console and the customers' portal (docs/portal.md).
	Portal Portal `yaml:"portal"`
}

// SMTP is the customer-facing SMTP listener.
type SMTP struct {
	// Listen is the list of addresses to accept customer connections on. Default: ["127.0.0.1:2525"].
	Listen []string `yaml:"listen"`
	// MaxMessageSize is the largest message accepted, in bytes. Default: 52428800 (50 MiB).
	MaxMessageSize int64 `yaml:"max_message_size" unit:"bytes"`
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
	// MaxHeaderSize is the largest header section accepted, in bytes; a larger one is refused with "552
	// 5.3.4". Default: 102400 (Postfix's header_size_limit: a next hop running Postfix keeps every field whole).
	MaxHeaderSize int `yaml:"max_header_size" unit:"bytes"`
	// MaxHeaderFields is the most header fields a message may have; more are refused with "552 5.3.4".
	// Default: 1000.
	MaxHeaderFields int `yaml:"max_header_fields"`

	// MaxConnections is the most SMTP sessions open at once; a client over it is answered "421 4.7.0" at
	// connect. 0 is no cap. Default: 1000.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP is the most SMTP sessions open at once from one client IP; over it, "421 4.7.0".
	// 0 is no cap. Default: 50.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// ConnectionRatePerIP is the most new sessions one client IP may open, as "N/PERIOD" with an optional
	// " burst B" (e.g. "600/1m"); over it, "421 4.7.0". "0" is no limit. Default: "0", since a customer's
	// MTA may open one connection per message.
	ConnectionRatePerIP string `yaml:"connection_rate_per_ip"`
	// PregreetDelay is how long a new client is watched before the 220 greeting: a client that sends
	// anything before it (an early talker) is refused with "554 5.5.1". With 0, bytes already received when
	// the connection is accepted are still caught. Default: 0s.
	PregreetDelay time.Duration `yaml:"pregreet_delay"`
	// SessionTimeout bounds a whole SMTP session; a session still open then is closed with "421 4.4.2".
	// Default: 30m.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// DataTimeout bounds the transfer of one message's content (DATA or BDAT). Default: 10m.
	DataTimeout time.Duration `yaml:"data_timeout"`
	// MaxErrors is the number of 4xx/5xx replies a session may get, without a message accepted in between,
	// before the next error is answered "421 4.7.0" and the session closed. Default: 20.
	MaxErrors int `yaml:"max_errors"`
}

// API is the HTTP listener for the REST API, the portal, /metrics and /healthz.
type API struct {
	// Listen is the API address. Default: "127.0.0.1:8025".
	Listen string `yaml:"listen"`
	// PublicURL is the base of links given to customers (onboarding). Default: "http://" + Listen.
	PublicURL string `yaml:"public_url"`
	// ReadHeaderTimeout bounds the reading of a request's header. Default: 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds the reading of a whole request, header and body. Default: 1m.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds a response, from the end of the request's header to the last byte written
	// (a message log export must fit in it). Default: 10m.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout is how long a keep-alive connection may wait for its next request. Default: 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConnections is the most connections open at once; further clients wait in the listen backlog until
	// one closes. 0 is no cap. Default: 256.
	MaxConnections int `yaml:"max_connections"`
}

// Metrics is where and to whom GET /metrics is served (docs/operations.md).
type Metrics struct {
	// Listen is a separate address for /metrics (e.g. "10.0.0.5:9025" on the monitoring network); when set,
	// /metrics is no longer served on api.listen. Default: "" (/metrics on api.listen).
	Listen string `yaml:"listen"`
	// Token, when set, is the bearer token a scraper must send ("Authorization: Bearer <token>"); without
	// it /metrics answers 401. Default: "" (no token).
	Token string `yaml:"token" secret:"true"`
}

// DNS is the resolver configuration.
type DNS struct {
	// Servers are resolver addresses (host:port). Default: empty, the system's (/etc/resolv.conf).
	Servers []string `yaml:"servers"`
	// Timeout bounds one query. Default: 5s.
	Timeout time.Duration `yaml:"timeout"`
	// TrustAD trusts the AD bit of the servers' answers (they must be local validating resolvers, RFC 6698
	// §4.1), which turns DANE on: MX hosts with validated TLSA records get TLS checked against them. Default:
	// false (no DANE).
	TrustAD bool `yaml:"trust_ad"`
	// CacheSize is the number of answers kept in the resolver's cache, each for its TTL (negative answers
	// for their SOA's negative TTL, failures never); 0 turns the cache off. Default: 10000.
	CacheSize int `yaml:"cache_size"`
	// CacheMaxTTL bounds how long an answer is kept whatever its TTL. Default: 1h.
	CacheMaxTTL time.Duration `yaml:"cache_max_ttl"`
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
	// DeliveryTLS holds the TLS keys (tls.go).
	DeliveryTLS `yaml:",inline"`
}

// Pool is a named group of outbound IPs. Config.Pools defaults to one pool "default" with 127.0.0.1, whose
// HELO is the Hostname of the file.
type Pool struct {
	Name string     `yaml:"name"`
	IPs  []PoolAddr `yaml:"ips"`
}

// PoolAddr is one outbound IP with its HELO name (which should match its PTR).
type PoolAddr struct {
	Address string `yaml:"address"`
	// HELO is the EHLO name sent from this IP. Default: Hostname (as set in the file).
	HELO string `yaml:"helo"`
	// Weight is the IP's share of its pool's traffic relative to the other IPs, 1-1000. Default: 1.
	Weight int `yaml:"weight"`
	// Warmup is the IP's warm-up schedule: the most messages it may carry on each day since it was added
	// (e.g. [50, 100, 200, 500, 1000]); after the last day it is fully active. Default: none, the IP is
	// active at once.
	Warmup []int `yaml:"warmup"`
}

// RBL is DNSBL supervision of the outbound IPs.
type RBL struct {
	// Zones are the DNSBL zones checked for every outbound IP: plain zone names, or objects
	// {zone: NAME, refused: [CIDR, ...]}. Default: none.
	Zones []RBLZone `yaml:"zones"`
	// Interval is the time between two checks of an IP. Default: 10m.
	Interval time.Duration `yaml:"interval"`
	// Hold is how long an IP stays out of rotation after it was delisted everywhere. Default: 1h.
	Hold time.Duration `yaml:"hold"`
}

// DefaultRBLRefused are the answers that mean "query refused" rather than "listed" when a zone names none:
// 127.255.255.0/24, which Spamhaus and others return to public and open resolvers and over-quota users.
var DefaultRBLRefused = []string{"127.255.255.0/24"}

// RBLZone is one DNSBL zone. In YAML it is a zone name, or a mapping with the keys zone and refused.
type RBLZone struct {
	// Zone is the DNSBL zone, e.g. zen.spamhaus.org.
	Zone string `yaml:"zone"`
	// Refused are the answers (IP addresses or CIDR prefixes) that mean the zone refused the query: they are
	// check errors, never listings. Nil means DefaultRBLRefused; an empty list means none.
	Refused []string `yaml:"refused"`
}

// UnmarshalYAML reads a zone written as a plain string or as a {zone, refused} mapping; unknown keys in a
// mapping are errors.
func (z *RBLZone) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*z = RBLZone{Zone: n.Value}
		return nil
	case yaml.MappingNode:
		var out RBLZone
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			switch k.Value {
			case "zone":
				if err := v.Decode(&out.Zone); err != nil {
					return err
				}
			case "refused":
				out.Refused = []string{}
				if err := v.Decode(&out.Refused); err != nil {
					return err
				}
			default:
				return fmt.Errorf("line %d: unknown key %q in an rbl zone (want zone, refused)", k.Line, k.Value)
			}
		}
		*z = out
		return nil
	}
	return fmt.Errorf("line %d: an rbl zone is a zone name or a {zone, refused} mapping", n.Line)
}

// RefusedAnswers returns the zone's refusal answers, DefaultRBLRefused when none was set.
func (z RBLZone) RefusedAnswers() []string {
	if z.Refused == nil {
		return slices.Clone(DefaultRBLRefused)
	}
	return z.Refused
}

// IPPool is the supervision of the outbound IPs by the replies of receivers, and the warm-up of new IPs.
type IPPool struct {
	// BlockPatterns are regular expressions (RE2, matched without regard to case) that recognise, in a
	// receiver's 4xx or 5xx reply, that the sending IP is blocked. Default: DefaultBlockPatterns.
	BlockPatterns []string `yaml:"block_patterns"`
	// BlockThreshold is the number of block replies from one destination domain, within BlockWindow, that
	// pause the IP for that domain. Default: 3.
	BlockThreshold int `yaml:"block_threshold"`
	// BlockWindow is the window in which block replies are counted. Default: 1h.
	BlockWindow time.Duration `yaml:"block_window"`
	// PauseFor is how long an IP is paused for a destination domain that blocks it. Default: 4h.
	PauseFor time.Duration `yaml:"pause_for"`
	// Warmup is the warm-up schedule of IPs added through the API without one of their own: the most
	// messages per day, for each day since the IP was added. Default: [50, 100, 200, 500, 1000, 2000, 5000,
	// 10000, 20000, 50000].
	Warmup []int `yaml:"warmup"`
}

// DefaultBlockPatterns recognise the replies of large receivers that refuse mail because of the sending
// IP: DNSBL mentions (Spamhaus, Barracuda, Spamcop), "blocked" and "blacklisted", poor reputation,
// Microsoft's S3140 and 5.7.606-5.7.608 (banned sending IP), Gmail's "unusual rate" (421-4.7.0) and "IP
// reputation" (5.7.1), Yahoo's TSS04 and TS03.
var DefaultBlockPatterns = []string{
	`spamhaus`,
	`barracuda`,
	`spamcop`,
	`\b(dnsbl|rbl)\b`,
	`\bblocked\b`,
	`\bblock ?list(ed)?\b`,
	`\bblack ?list(ed)?\b`,
	`\b(poor|bad|low) (ip |sender |sending )?reputation\b`,
	`\bip reputation\b`,
	`\bS3140\b`,
	`\b5\.7\.60[678]\b`,
	`unusual rate`,
	`\bTSS0\d\b`,
	`\bTS0[1-3]\b`,
}

// DKIM is DKIM key management: key size and rotation (see docs/dkim.md).
type DKIM struct {
	// RSABits is the size of new RSA keys: 1024, 2048, 3072 or 4096. Default: 2048 (RFC 8301 §3.2).
	RSABits int `yaml:"rsa_bits"`
	// RotateEvery is the age at which a domain's keys are rotated (a new key is created and used once its
	// DNS record is published); 0 turns scheduled rotation off. Default: 0.
	RotateEvery time.Duration `yaml:"rotate_every"`
	// RetireAfter is how long a replaced key stays published before it is retired; it should exceed
	// delivery.max_queue_lifetime, so that queued messages signed with it still verify. Default: 168h.
	RetireAfter time.Duration `yaml:"retire_after"`
	// CheckInterval is how often pending keys' DNS records are checked, retirements and scheduled rotations
	// done, and keys reloaded. Default: 1h.
	CheckInterval time.Duration `yaml:"check_interval"`
	// Sign turns the signing of accepted messages on or off. Off suits customers whose servers sign
	// themselves: keys are still made and their records shown, so signing can be turned on later. Off also
	// stops the DMARC alignment records. Default: true.
	Sign *bool `yaml:"sign"`
	// KeyFile is the master key that encrypts the DKIM private keys in the database (AES-256-GCM), relative
	// to DataDir; it is made at first start. EASYMAIL_DKIM_KEY, when set, gives the key instead. Back it up
	// apart from the database (docs/dkim.md). Default: "dkim.key".
	KeyFile string `yaml:"key_file"`
}

// Signing reports whether accepted messages are DKIM-signed (dkim.sign, default true).
func (d DKIM) Signing() bool { return d.Sign == nil || *d.Sign }

// Log is the process log.
type Log struct {
	// Level is debug, info, warn or error. Default: info.
	Level string `yaml:"level"`
	// Format is text or json. Default: text.
	Format string `yaml:"format"`
}

// Default returns the embedded defaults, the configuration used when no file is given, with the default
// pool's HELO name set to the machine's host name. A caller that changes Hostname afterwards sets the HELO
// names too; Load instead derives every value that depends on the host name after the file is read.
func Default() Config {
	c := defaults()
	for i := range c.Pools {
		for j := range c.Pools[i].IPs {
			c.Pools[i].IPs[j].HELO = c.Hostname
		}
	}
	return c
}

// defaults returns the embedded defaults without the values derived from others (the default pool's HELO
// name, node_id, api.public_url, the lifecycle notice sender and SPF domain): fill derives those once the
// file is read, so that they follow the file's hostname rather than the machine's.
func defaults() Config {
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

			MaxHeaderSize:   102400,
			MaxHeaderFields: 1000,

			MaxConnections:      1000,
			MaxConnectionsPerIP: 50,
			ConnectionRatePerIP: "0",
			SessionTimeout:      30 * time.Minute,
			DataTimeout:         10 * time.Minute,
			MaxErrors:           20,
		},
		API: API{Listen: "127.0.0.1:8025", ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
			WriteTimeout: 10 * time.Minute, IdleTimeout: 2 * time.Minute, MaxConnections: 256},
		DNS: DNS{Timeout: 5 * time.Second, CacheSize: 10000, CacheMaxTTL: time.Hour},
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
			DeliveryTLS:       DefaultDeliveryTLS(),
		},
		Pools: []Pool{{Name: "default", IPs: []PoolAddr{{Address: "127.0.0.1"}}}},
		RBL:   RBL{Interval: 10 * time.Minute, Hold: time.Hour},
		IPPool: IPPool{
			BlockPatterns:  slices.Clone(DefaultBlockPatterns),
			BlockThreshold: 3,
			BlockWindow:    time.Hour,
			PauseFor:       4 * time.Hour,
			Warmup:         []int{50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000},
		},
		DKIM: DKIM{RSABits: 2048, RetireAfter: 168 * time.Hour, CheckInterval: time.Hour, KeyFile: "dkim.key"},
		Log:  Log{Level: "info", Format: "text"},

		Compromise: DefaultCompromise(),

		Suppression: DefaultSuppression(),
		Retention:   DefaultRetention(),
		Lifecycle:   DefaultLifecycle(),
		Events:      DefaultEvents(),
		Complaints:  DefaultComplaints(),
		Shaping:     DefaultShaping(),
		Incidents:   DefaultIncidents(),
		Portal:      DefaultPortal(),

		Scan: DefaultScan(),
	}
}

// Load reads the YAML file at path over the defaults and validates the result. An empty path gives the
// defaults. Unknown keys are errors. It is LoadWith without overrides.
func Load(path string) (Config, error) { return LoadWith(path, Overrides{}) }

// Parse decodes YAML b over c. Unknown keys are errors; every error is a *KeyError naming the YAML path and
// line of the value at fault.
func Parse(b []byte, c *Config) error {
	_, err := parse(b, c)
	return err
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
	c.fillLifecycle()
	c.fillDeliveryTLS()
	c.fillIncidents()
	for i := range c.Pools {
		for j := range c.Pools[i].IPs {
			if c.Pools[i].IPs[j].HELO == "" {
				c.Pools[i].IPs[j].HELO = c.Hostname
			}
			if c.Pools[i].IPs[j].Weight == 0 {
				c.Pools[i].IPs[j].Weight = 1
			}
		}
	}
}

// KeyError is a configuration error naming the key at fault: its YAML path (smtp.listen[0]), and the file
// and line when it was read from one.
type KeyError struct {
	Key  string
	Msg  string
	File string
	Line int
}

func (e *KeyError) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("config %s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
	case e.File != "":
		return fmt.Sprintf("config %s: %s: %s", e.File, e.Key, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("config: line %d: %s: %s", e.Line, e.Key, e.Msg)
	}
	return "config: " + e.Key + ": " + e.Msg
}

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
		if err := checkListen(fmt.Sprintf("smtp.listen[%d]", i), a); err != nil {
			return err
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
	if c.SMTP.MaxHeaderSize < 1024 {
		return bad("smtp.max_header_size", "must be at least 1024 bytes")
	}
	if c.SMTP.MaxHeaderFields < 1 {
		return bad("smtp.max_header_fields", "must be at least 1")
	}
	if err := checkListen("api.listen", c.API.Listen); err != nil {
		return err
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{{"api.read_header_timeout", c.API.ReadHeaderTimeout}, {"api.read_timeout", c.API.ReadTimeout},
		{"api.write_timeout", c.API.WriteTimeout}, {"api.idle_timeout", c.API.IdleTimeout}} {
		if t.d <= 0 {
			return bad(t.key, "must be positive")
		}
	}
	if c.API.MaxConnections < 0 {
		return bad("api.max_connections", "must not be negative (0 is no cap)")
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			return bad("metrics.listen", "%v", err)
		}
		if c.Metrics.Listen == c.API.Listen {
			return bad("metrics.listen", "must differ from api.listen (leave it empty to serve /metrics there)")
		}
	}
	if t := c.Metrics.Token; t != "" && (len(t) < 16 || strings.ContainsAny(t, " \t\r\n")) {
		return bad("metrics.token", "must be at least 16 characters without spaces")
	}
	for i, s := range c.DNS.Servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return bad(fmt.Sprintf("dns.servers[%d]", i), "must be host:port: %v", err)
		}
	}
	if c.DNS.Timeout <= 0 {
		return bad("dns.timeout", "must be positive")
	}
	if c.DNS.CacheSize < 0 || c.DNS.CacheSize > 10_000_000 {
		return bad("dns.cache_size", "must be 0 (no cache) to 10000000")
	}
	if c.DNS.CacheMaxTTL <= 0 {
		return bad("dns.cache_max_ttl", "must be positive")
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
	addrs := map[netip.Addr]string{}
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
			ip, err := netip.ParseAddr(a.Address)
			if err != nil || ip.Zone() != "" {
				return bad(fmt.Sprintf("%s.ips[%d].address", key, j), "not an IP address: %q", a.Address)
			}
			ip = ip.Unmap()
			if other, dup := addrs[ip]; dup {
				return bad(fmt.Sprintf("%s.ips[%d].address", key, j), "%s is already in pool %q (an IP belongs to one pool)", ip, other)
			}
			addrs[ip] = p.Name
			if a.HELO != "" && !isHostName(a.HELO) {
				return bad(fmt.Sprintf("%s.ips[%d].helo", key, j), "not a host name: %q", a.HELO)
			}
			// 0 is the unset value, filled with 1 by Load.
			if a.Weight < 0 || a.Weight > 1000 {
				return bad(fmt.Sprintf("%s.ips[%d].weight", key, j), "must be 1-1000")
			}
			for k, n := range a.Warmup {
				if n < 1 {
					return bad(fmt.Sprintf("%s.ips[%d].warmup[%d]", key, j, k), "must be at least 1 message a day")
				}
			}
		}
	}
	if c.OperatorEmail != "" {
		if a, err := mail.ParseAddress(c.OperatorEmail); err != nil || a.Name != "" || a.Address != c.OperatorEmail ||
			!strings.Contains(a.Address, "@") || strings.ContainsAny(a.Address, " \t\r\n") {
			return bad("operator_email", "must be an e-mail address (local@domain), got %q", c.OperatorEmail)
		}
	}
	if c.RBL.Interval <= 0 {
		return bad("rbl.interval", "must be positive")
	}
	if c.RBL.Hold < 0 {
		return bad("rbl.hold", "must not be negative")
	}
	zones := map[string]bool{}
	for i, z := range c.RBL.Zones {
		key := fmt.Sprintf("rbl.zones[%d]", i)
		name := strings.ToLower(strings.TrimSuffix(z.Zone, "."))
		if !isHostName(name) || !strings.Contains(name, ".") {
			return bad(key+".zone", "not a DNS zone name: %q", z.Zone)
		}
		if zones[name] {
			return bad(key+".zone", "zone %q is listed twice", z.Zone)
		}
		zones[name] = true
		for k, r := range z.Refused {
			if _, err := netip.ParsePrefix(r); err == nil {
				continue
			}
			if _, err := netip.ParseAddr(r); err != nil {
				return bad(fmt.Sprintf("%s.refused[%d]", key, k), "not an IP address or CIDR prefix: %q", r)
			}
		}
	}
	ipp := c.IPPool
	for i, pat := range ipp.BlockPatterns {
		if pat == "" {
			return bad(fmt.Sprintf("ippool.block_patterns[%d]", i), "must not be empty (it would match every reply)")
		}
		if _, err := regexp.Compile("(?i)" + pat); err != nil {
			return bad(fmt.Sprintf("ippool.block_patterns[%d]", i), "not a regular expression: %v", err)
		}
	}
	if ipp.BlockThreshold < 1 {
		return bad("ippool.block_threshold", "must be at least 1")
	}
	if ipp.BlockWindow <= 0 {
		return bad("ippool.block_window", "must be positive")
	}
	if ipp.PauseFor <= 0 {
		return bad("ippool.pause_for", "must be positive")
	}
	for i, n := range ipp.Warmup {
		if n < 1 {
			return bad(fmt.Sprintf("ippool.warmup[%d]", i), "must be at least 1 message a day")
		}
	}
	switch c.DKIM.RSABits {
	case 1024, 2048, 3072, 4096:
	default:
		return bad("dkim.rsa_bits", "must be 1024, 2048, 3072 or 4096")
	}
	if c.DKIM.RotateEvery < 0 {
		return bad("dkim.rotate_every", "must not be negative (0 turns scheduled rotation off)")
	}
	if c.DKIM.RetireAfter <= 0 {
		return bad("dkim.retire_after", "must be positive")
	}
	if c.DKIM.CheckInterval <= 0 {
		return bad("dkim.check_interval", "must be positive")
	}
	if c.DKIM.KeyFile == "" {
		return bad("dkim.key_file", "must not be empty (default dkim.key in data_dir)")
	}
	if c.DKIM.RotateEvery > 0 && c.DKIM.RotateEvery < c.DKIM.CheckInterval {
		return bad("dkim.rotate_every", "must be 0 or at least dkim.check_interval")
	}
	if err := c.validateProtection(); err != nil {
		return err
	}
	if err := c.validateIncidents(); err != nil {
		return err
	}
	if err := c.validateLifecycle(); err != nil {
		return err
	}
	if err := c.validateScan(); err != nil {
		return err
	}
	if err := c.validateAnalysis(); err != nil {
		return err
	}
	if err := c.validateDeliveryTLS(); err != nil {
		return err
	}
	if err := c.validateEvents(); err != nil {
		return err
	}
	if err := c.validateShaping(); err != nil {
		return err
	}
	if err := c.validatePortal(); err != nil {
		return err
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

// isHostName reports whether s is a host name: dot-separated labels of letters, digits and hyphens
// (RFC 1123 §2.1), none empty, at most 253 characters.
func isHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Path returns p made absolute against the data directory when it is relative.
func (c *Config) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// PoolNames returns the names of the configured pools, the default pool first.
func (c *Config) PoolNames() []string {
	names := make([]string, len(c.Pools))
	for i, p := range c.Pools {
		names[i] = p.Name
	}
	return names
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
