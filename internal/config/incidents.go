package config

import (
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Incidents is incident tracking, the SLA types and the monitors that raise incidents (docs/incidents.md).
type Incidents struct {
	// Address is the mailbox the relay receives for itself: a customer's message to it becomes an incident.
	// Default: incidents@<hostname>.
	Address string `yaml:"address"`
	// DefaultSLA names the SLA type of a customer whose contract names none. Default: "standard".
	DefaultSLA string `yaml:"default_sla"`
	// SLATypes are the SLA types by name. Default: one, "standard" (DefaultSLAType). A type named here
	// replaces the default of the same name as a whole, filled from it where left empty.
	SLATypes map[string]SLAType `yaml:"sla_types"`
	// Monitors are the causes watched by the relay itself.
	Monitors Monitors `yaml:"monitors"`
}

// SLATypeNames returns the names of the configured SLA types, sorted.
func (i Incidents) SLATypeNames() []string {
	names := make([]string, 0, len(i.SLATypes))
	for name := range i.SLATypes {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// SLAType is one SLA contract: its service window and its response targets.
type SLAType struct {
	// TimeZone is the window's IANA time zone. Default: Europe/Luxembourg.
	TimeZone string `yaml:"timezone"`
	// Days are the open weekdays (mon ... sun). Default: [mon, tue, wed, thu, fri].
	Days []string `yaml:"days"`
	// Hours is the daily window, "HH:MM-HH:MM". Default: "07:00-19:00".
	Hours string `yaml:"hours"`
	// Holidays is "luxembourg" (the Luxembourg public holidays, computed per year) or "none". Default:
	// luxembourg.
	Holidays string `yaml:"holidays"`
	// ExtraHolidays are further closed days, YYYY-MM-DD.
	ExtraHolidays []string `yaml:"extra_holidays"`
	// Response is the response target by channel (phone, email, portal, api, monitor), in service-window
	// time. Default: phone 15m, email 30m, portal 15m, api 15m, monitor 15m.
	Response map[string]time.Duration `yaml:"response"`
	// Resolution is an optional resolution target by priority (P1 ... P4), in service-window time; a
	// priority without one has none (repair is best effort). Default: none.
	Resolution map[string]time.Duration `yaml:"resolution"`
}

// Monitors configure the relay's own monitors; each one opens an incident for its cause, keeps one open
// per cause, and resolves it when the cause clears.
type Monitors struct {
	// Enabled turns every monitor off when false. Default: true.
	Enabled bool `yaml:"enabled"`
	// Interval is the time between two checks. Default: 30s.
	Interval time.Duration `yaml:"interval"`
	// IPListed raises P3 for a listed outbound IP, P2 when every IP of its pool is listed. Default: true.
	IPListed bool `yaml:"ip_listed"`
	// PoolUnusable raises P1 for a pool without a usable IP, for its customers. Default: true.
	PoolUnusable bool `yaml:"pool_unusable"`
	// ScannerDown raises P2 for a scanner down while mail is answered 451 (fail-closed), P3 while it is
	// bypassed. Default: true.
	ScannerDown bool `yaml:"scanner_down"`
	// CustomerHeld raises P2 for a customer whose mail is held for suspected compromise. Default: true.
	CustomerHeld bool `yaml:"customer_held"`
	// QueueMessages and QueueOldest raise P2 when more messages wait for delivery (held ones not counted),
	// or the oldest has waited longer; 0 turns either off. Default: 10000 and 1h.
	QueueMessages int           `yaml:"queue_messages"`
	QueueOldest   time.Duration `yaml:"queue_oldest"`
	// FailureRate raises P3 for a destination domain whose delivery attempts over FailureWindow failed at
	// this rate or more (0.5 is half), once it had FailureMinAttempts; 0 turns it off. Default: 0.5, 15m,
	// 50.
	FailureRate        float64       `yaml:"failure_rate"`
	FailureWindow      time.Duration `yaml:"failure_window"`
	FailureMinAttempts int           `yaml:"failure_min_attempts"`
	// CertExpiry raises P4 when the SMTP certificate expires within this time; 0 turns it off. Default:
	// 336h (14 days).
	CertExpiry time.Duration `yaml:"cert_expiry"`
}

// Channels are the incident channels, Priorities the incident priorities.
var (
	Channels   = []string{"phone", "email", "portal", "api", "monitor"}
	Priorities = []string{"P1", "P2", "P3", "P4"}
)

// DefaultSLAType is the "standard" SLA type: Monday to Friday 07:00-19:00 Europe/Luxembourg, Luxembourg
// public holidays closed, response within 15 minutes by phone and portal, 30 by e-mail.
func DefaultSLAType() SLAType {
	return SLAType{TimeZone: "Europe/Luxembourg", Days: []string{"mon", "tue", "wed", "thu", "fri"}, Hours: "07:00-19:00",
		Holidays: "luxembourg", Response: map[string]time.Duration{"phone": 15 * time.Minute, "email": 30 * time.Minute,
			"portal": 15 * time.Minute, "api": 15 * time.Minute, "monitor": 15 * time.Minute}}
}

// DefaultIncidents returns the default incident settings.
func DefaultIncidents() Incidents {
	return Incidents{DefaultSLA: "standard", SLATypes: map[string]SLAType{"standard": DefaultSLAType()},
		Monitors: Monitors{Enabled: true, Interval: 30 * time.Second, IPListed: true, PoolUnusable: true, ScannerDown: true,
			CustomerHeld: true, QueueMessages: 10000, QueueOldest: time.Hour, FailureRate: 0.5, FailureWindow: 15 * time.Minute,
			FailureMinAttempts: 50, CertExpiry: 14 * 24 * time.Hour}}
}

// IncidentAddress is incidents.address, or its default incidents@<hostname> when empty.
func (c *Config) IncidentAddress() string {
	if c.Incidents.Address != "" {
		return strings.ToLower(c.Incidents.Address)
	}
	return "incidents@" + strings.ToLower(strings.TrimSuffix(c.Hostname, "."))
}

// fillIncidents fills the SLA types' empty fields from the default type.
func (c *Config) fillIncidents() {
	def := DefaultSLAType()
	for name, t := range c.Incidents.SLATypes {
		if t.TimeZone == "" {
			t.TimeZone = def.TimeZone
		}
		if len(t.Days) == 0 {
			t.Days = def.Days
		}
		if t.Hours == "" {
			t.Hours = def.Hours
		}
		if t.Holidays == "" {
			t.Holidays = def.Holidays
		}
		resp := map[string]time.Duration{}
		for ch, d := range def.Response {
			resp[ch] = d
		}
		for ch, d := range t.Response {
			resp[ch] = d
		}
		t.Response = resp
		c.Incidents.SLATypes[name] = t
	}
}

var hoursRE = regexp.MustCompile(`^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$`)

// WeekdayNames are the day names of SLAType.Days, Sunday first.
var WeekdayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Window returns the type's open weekdays and its daily opening and closing times (offsets from midnight).
func (t SLAType) Window() (days []time.Weekday, open, close time.Duration, err error) {
	for _, d := range t.Days {
		i := slices.Index(WeekdayNames, strings.ToLower(d))
		if i < 0 {
			return nil, 0, 0, fmt.Errorf("days: %q is not a day (mon, tue, wed, thu, fri, sat, sun)", d)
		}
		days = append(days, time.Weekday(i))
	}
	m := hoursRE.FindStringSubmatch(t.Hours)
	if m == nil {
		return nil, 0, 0, fmt.Errorf("hours: %q is not HH:MM-HH:MM", t.Hours)
	}
	at := func(h, mm string) time.Duration {
		var hv, mv int
		fmt.Sscanf(h, "%d", &hv)
		fmt.Sscanf(mm, "%d", &mv)
		return time.Duration(hv)*time.Hour + time.Duration(mv)*time.Minute
	}
	open, close = at(m[1], m[2]), at(m[3], m[4])
	if close <= open || close > 24*time.Hour {
		return nil, 0, 0, fmt.Errorf("hours: %q closes before it opens", t.Hours)
	}
	return days, open, close, nil
}

// validateIncidents checks the incidents section.
func (c *Config) validateIncidents() error {
	in := c.Incidents
	bad := func(key, format string, args ...any) error {
		return &KeyError{Key: "incidents." + key, Msg: fmt.Sprintf(format, args...)}
	}
	if a, err := mail.ParseAddress(c.IncidentAddress()); err != nil || a.Address != c.IncidentAddress() {
		return bad("address", "must be an e-mail address (local@domain), got %q", c.IncidentAddress())
	}
	if _, ok := in.SLATypes[in.DefaultSLA]; !ok {
		return bad("default_sla", "names no SLA type of incidents.sla_types: %q", in.DefaultSLA)
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range in.SLATypes {
			if !yield(k) {
				return
			}
		}
	}) {
		t := in.SLATypes[name]
		key := "sla_types." + name + "."
		if _, err := time.LoadLocation(t.TimeZone); err != nil {
			return bad(key+"timezone", "%q is not a time zone", t.TimeZone)
		}
		if _, _, _, err := t.Window(); err != nil {
			return bad(key+strings.SplitN(err.Error(), ":", 2)[0], "%s", strings.TrimSpace(strings.SplitN(err.Error(), ":", 2)[1]))
		}
		if t.Holidays != "luxembourg" && t.Holidays != "none" {
			return bad(key+"holidays", "must be luxembourg or none, got %q", t.Holidays)
		}
		for i, d := range t.ExtraHolidays {
			if _, err := time.Parse(time.DateOnly, d); err != nil {
				return bad(fmt.Sprintf("%sextra_holidays[%d]", key, i), "%q is not a date (YYYY-MM-DD)", d)
			}
		}
		for ch, d := range t.Response {
			if !slices.Contains(Channels, ch) {
				return bad(key+"response."+ch, "is not a channel (%s)", strings.Join(Channels, ", "))
			}
			if d <= 0 {
				return bad(key+"response."+ch, "must be positive")
			}
		}
		for p, d := range t.Resolution {
			if !slices.Contains(Priorities, p) {
				return bad(key+"resolution."+p, "is not a priority (P1, P2, P3, P4)")
			}
			if d <= 0 {
				return bad(key+"resolution."+p, "must be positive")
			}
		}
	}
	m := in.Monitors
	switch {
	case m.Interval <= 0:
		return bad("monitors.interval", "must be positive")
	case m.QueueMessages < 0:
		return bad("monitors.queue_messages", "must not be negative")
	case m.QueueOldest < 0:
		return bad("monitors.queue_oldest", "must not be negative")
	case m.FailureRate < 0 || m.FailureRate > 1:
		return bad("monitors.failure_rate", "must be from 0 (off) to 1")
	case m.FailureRate > 0 && m.FailureWindow <= 0:
		return bad("monitors.failure_window", "must be positive")
	case m.FailureMinAttempts < 0:
		return bad("monitors.failure_min_attempts", "must not be negative")
	case m.CertExpiry < 0:
		return bad("monitors.cert_expiry", "must not be negative")
	}
	return nil
}
