package config

import (
	"strings"
	"time"

	"easymail/internal/contentrules"
	"easymail/internal/fielderr"
	"easymail/internal/scan"
)

// Scan is content scanning: the scanners, the default policy of every customer (each may override it
// through the API), the default content rules and the quarantine (docs/scanning.md).
type Scan struct {
	// Clamd is tcp://host:port or unix:///path. Default: "" (no antivirus).
	Clamd string `yaml:"clamd"`
	// Rspamd is the rspamd HTTP base URL. Default: "" (no antispam).
	Rspamd string `yaml:"rspamd" secret:"url"`
	// Timeout bounds the scanners' work on one message; a scanner slower than this has failed. Default: 30s.
	Timeout time.Duration `yaml:"timeout"`
	// ConnectTimeout bounds the connection to a scanner. Default: 5s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxConnections is the most connections open at once to each scanner. Default: 16.
	MaxConnections int `yaml:"max_connections"`
	// OnFailure is what a scanner that is down or slow does to a message: tempfail (451 4.7.1) or bypass
	// (accepted, tagged "X-Easymail-Scan: bypassed"). Default: tempfail.
	OnFailure string `yaml:"on_failure"`
	// VirusAction is reject (550 5.7.1 naming the virus) or quarantine. Default: reject.
	VirusAction string `yaml:"virus_action"`
	// SpamRejectScore, SpamQuarantineScore and SpamTagScore are rspamd score thresholds; 0 turns one off.
	// Defaults: 15, 0, 6 (rspamd's own reject and add-header scores).
	SpamRejectScore     float64 `yaml:"spam_reject_score"`
	SpamQuarantineScore float64 `yaml:"spam_quarantine_score"`
	SpamTagScore        float64 `yaml:"spam_tag_score"`
	// Rules are the default content rules (a customer's own rules add to them, unless its policy sets
	// replace_defaults). Default: executable
	// attachments refused, also in zip archives and behind a double extension.
	Rules []ContentRule `yaml:"rules"`
	// QuarantineRetention is how long a quarantined message is kept before it is deleted. Default: 720h.
	QuarantineRetention time.Duration `yaml:"quarantine_retention"`
	// ContentLimits bound the content rules' work on one message (zip bombs, deep nesting).
	ContentLimits ContentLimits `yaml:"content_limits"`
}

// ContentLimits bound the MIME and archive walk of the content rules on one message; a message over one of
// them is refused (552 5.3.4) or quarantined, and counted in easymail_contentrules_budget_exceeded_total.
type ContentLimits struct {
	// MaxDepth bounds the nesting of multiparts, attached messages and archives. Default: 16.
	MaxDepth int `yaml:"max_depth"`
	// MaxParts bounds the MIME parts of a message. Default: 1000.
	MaxParts int `yaml:"max_parts"`
	// MaxArchiveEntries bounds the files listed in a message's archives, all together. Default: 10000.
	MaxArchiveEntries int `yaml:"max_archive_entries"`
	// MaxDecompressedBytes bounds the bytes inflated from archives (to open archives inside archives) for
	// one message. Default: 67108864 (64 MiB).
	MaxDecompressedBytes int64 `yaml:"max_decompressed_bytes" unit:"bytes"`
	// MaxTime bounds the time of the walk of one message. Default: 5s.
	MaxTime time.Duration `yaml:"max_time"`
	// Action is what happens to a message over a limit: reject (552 5.3.4) or quarantine. Default: reject.
	Action string `yaml:"action"`
}

// RuleLimits returns the limits in the form of package contentrules; scratch is the directory for the
// archives being opened (the spool directory).
func (l ContentLimits) RuleLimits(scratch string) contentrules.Limits {
	return contentrules.Limits{MaxDepth: l.MaxDepth, MaxParts: l.MaxParts, MaxArchiveEntries: l.MaxArchiveEntries,
		MaxDecompressedBytes: l.MaxDecompressedBytes, MaxTime: l.MaxTime, ScratchDir: scratch}
}

// ContentRule is one content rule (see docs/scanning.md).
type ContentRule struct {
	Name     string   `yaml:"name"`
	Type     string   `yaml:"type"`
	Values   []string `yaml:"values"`
	Pattern  string   `yaml:"pattern"`
	MaxBytes int64    `yaml:"max_bytes" unit:"bytes"`
	Action   string   `yaml:"action"`
	Reason   string   `yaml:"reason"`
}

// ExecutableExtensions are the file extensions the default rules refuse.
var ExecutableExtensions = []string{"exe", "scr", "com", "pif", "bat", "cmd", "vbs", "vbe", "js", "jse", "wsf", "wsh",
	"hta", "cpl", "msi", "msp", "jar", "ps1", "lnk", "reg", "iso", "img"}

// DefaultScan returns the default scanning settings.
func DefaultScan() Scan {
	return Scan{
		Timeout: 30 * time.Second, ConnectTimeout: 5 * time.Second, MaxConnections: 16,
		OnFailure: scan.FailTempfail, VirusAction: contentrules.ActionReject,
		SpamRejectScore: 15, SpamTagScore: 6,
		Rules: []ContentRule{
			{Name: "executable", Type: contentrules.TypeExtension, Values: ExecutableExtensions, Action: contentrules.ActionReject,
				Reason: "Executable attachments are not accepted"},
		},
		QuarantineRetention: 720 * time.Hour,
		ContentLimits: ContentLimits{MaxDepth: 16, MaxParts: 1000, MaxArchiveEntries: 10000, MaxDecompressedBytes: 64 << 20,
			MaxTime: 5 * time.Second, Action: contentrules.ActionReject},
	}
}

// APIRules returns the rules in their wire form.
func (s Scan) APIRules() []contentrules.Rule {
	out := make([]contentrules.Rule, len(s.Rules))
	for i, r := range s.Rules {
		out[i] = contentrules.Rule(r)
	}
	return out
}

func (c *Config) validateScan() error {
	bad := func(key, msg string) error { return &KeyError{Key: "scan." + key, Msg: msg} }
	s := c.Scan
	if s.Clamd != "" {
		if _, _, err := scan.ParseClamdAddr(s.Clamd); err != nil {
			return bad("clamd", "must be tcp://host:port or unix:///path")
		}
	}
	if s.Rspamd != "" && !strings.HasPrefix(s.Rspamd, "http://") && !strings.HasPrefix(s.Rspamd, "https://") {
		return bad("rspamd", "must be an http:// URL")
	}
	switch {
	case s.Timeout <= 0:
		return bad("timeout", "must be positive")
	case s.ConnectTimeout <= 0:
		return bad("connect_timeout", "must be positive")
	case s.MaxConnections < 1 || s.MaxConnections > 10000:
		return bad("max_connections", "must be 1-10000")
	case s.OnFailure != scan.FailTempfail && s.OnFailure != scan.FailBypass:
		return bad("on_failure", "must be tempfail or bypass")
	case s.VirusAction != contentrules.ActionReject && s.VirusAction != contentrules.ActionQuarantine:
		return bad("virus_action", "must be reject or quarantine")
	case s.SpamRejectScore < 0 || s.SpamQuarantineScore < 0 || s.SpamTagScore < 0:
		return bad("spam_reject_score", "scores must not be negative (0 turns a threshold off)")
	case s.QuarantineRetention < time.Hour:
		return bad("quarantine_retention", "must be at least 1h")
	}
	cl := s.ContentLimits
	switch {
	case cl.MaxDepth < 1 || cl.MaxDepth > 100:
		return bad("content_limits.max_depth", "must be 1-100")
	case cl.MaxParts < 1 || cl.MaxParts > 1000000:
		return bad("content_limits.max_parts", "must be 1-1000000")
	case cl.MaxArchiveEntries < 1 || cl.MaxArchiveEntries > 10000000:
		return bad("content_limits.max_archive_entries", "must be 1-10000000")
	case cl.MaxDecompressedBytes < 1:
		return bad("content_limits.max_decompressed_bytes", "must be positive")
	case cl.MaxTime <= 0:
		return bad("content_limits.max_time", "must be positive")
	case cl.Action != contentrules.ActionReject && cl.Action != contentrules.ActionQuarantine:
		return bad("content_limits.action", "must be reject or quarantine")
	}
	if _, err := contentrules.Compile(s.APIRules(), "scan.rules"); err != nil {
		if e, ok := err.(*fielderr.Error); ok {
			return &KeyError{Key: e.Field, Msg: e.Msg}
		}
		return err
	}
	return nil
}
