// Package mtasts implements the sending side of SMTP MTA Strict Transport Security (RFC 8461): it reads a
// destination's _mta-sts TXT record, fetches its policy over HTTPS from mta-sts.DOMAIN, parses it, keeps it
// (in memory and in the database, for max_age) and refreshes it when the record's id changes. Delivery asks
// it for a domain's policy; enforcing it (which MX hosts, verified TLS) is delivery's job.
package mtasts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Mode is a policy's mode (RFC 8461 §3.2).
type Mode string

// The modes of a policy.
const (
	// ModeEnforce: mail goes only to MX hosts that match the policy, over TLS with a verified certificate.
	ModeEnforce Mode = "enforce"
	// ModeTesting: failures are reported (TLS-RPT) but mail is delivered as without a policy.
	ModeTesting Mode = "testing"
	// ModeNone: the domain has withdrawn its policy.
	ModeNone Mode = "none"
)

// maxMaxAge is the largest max_age a policy may have (RFC 8461 §3.2: 31557600 seconds, about a year).
const maxMaxAge = 31557600

// Policy is one domain's MTA-STS policy.
type Policy struct {
	// Domain is the policy domain (the recipient domain).
	Domain string
	// ID is the id of the TXT record the policy was fetched for.
	ID string
	// Mode is enforce, testing or none.
	Mode Mode
	// MX are the MX host patterns ("mail.example.com", "*.example.net"), lower case.
	MX []string
	// MaxAge is how long the policy may be kept.
	MaxAge time.Duration
	// Text is the policy as fetched, for TLS-RPT's policy-string.
	Text string
	// Fetched is when the policy was fetched; it expires at Fetched + MaxAge.
	Fetched time.Time

	lines []string // Lines, computed by Parse
}

// Expires returns when the policy stops being usable.
func (p *Policy) Expires() time.Time { return p.Fetched.Add(p.MaxAge) }

// Matches reports whether host (an MX host name) matches one of the policy's mx patterns (RFC 8461 §4.1): the
// name itself, or "*." followed by the name without its first label.
func (p *Policy) Matches(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.MX {
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			if label, suffix, found := strings.Cut(host, "."); found && label != "" && suffix == rest {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// Lines returns the policy text as TLS-RPT's policy-string wants it: one string per line, empty lines left
// out.
func (p *Policy) Lines() []string {
	if p.lines != nil {
		return p.lines
	}
	return lines(p.Text)
}

func lines(text string) []string {
	out := []string{}
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Parse reads a policy body (RFC 8461 §3.2): "key: value" lines separated by CRLF or LF. version must be
// STSv1; mode and max_age are required; mx is required (one line per pattern) unless the mode is none.
// Unknown keys are ignored, as the RFC asks.
func Parse(body string) (*Policy, error) {
	p := &Policy{Text: body}
	var version, mode, maxAge string
	for i, line := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not \"key: value\"", i+1, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "version":
			if version == "" {
				version = value
			}
		case "mode":
			if mode == "" {
				mode = value
			}
		case "max_age":
			if maxAge == "" {
				maxAge = value
			}
		case "mx":
			pat := strings.ToLower(strings.TrimSuffix(value, "."))
			if !validPattern(pat) {
				return nil, fmt.Errorf("line %d: mx %q is not a host name or *.domain", i+1, value)
			}
			p.MX = append(p.MX, pat)
		}
	}
	if version != "STSv1" {
		return nil, fmt.Errorf("version %q is not STSv1", version)
	}
	switch Mode(mode) {
	case ModeEnforce, ModeTesting, ModeNone:
		p.Mode = Mode(mode)
	case "":
		return nil, errors.New("no mode")
	default:
		return nil, fmt.Errorf("mode %q is not enforce, testing or none", mode)
	}
	if maxAge == "" || len(maxAge) > 10 || strings.Trim(maxAge, "0123456789") != "" {
		return nil, fmt.Errorf("max_age %q is not a number of seconds", maxAge)
	}
	n, err := strconv.Atoi(maxAge)
	if err != nil || n > maxMaxAge {
		return nil, fmt.Errorf("max_age %q is not 0-%d seconds", maxAge, maxMaxAge)
	}
	p.MaxAge = time.Duration(n) * time.Second
	if p.Mode != ModeNone && len(p.MX) == 0 {
		return nil, errors.New("no mx")
	}
	p.lines = lines(body)
	return p, nil
}

// validPattern accepts a host name, or "*." and a host name.
func validPattern(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ParseTXT reads an _mta-sts TXT record (RFC 8461 §3.1), "v=STSv1; id=20160831085700Z;", and returns its id.
func ParseTXT(txt string) (string, error) {
	fields := strings.Split(txt, ";")
	var id string
	for i, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" && i == len(fields)-1 {
			break
		}
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			return "", fmt.Errorf("field %q is not key=value", f)
		}
		switch {
		case i == 0:
			if key != "v" || value != "STSv1" {
				return "", errors.New("does not start with v=STSv1")
			}
		case key == "id" && id == "":
			id = value
		}
	}
	if id == "" || len(id) > 32 || strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) >= 0 {
		return "", fmt.Errorf("id %q is not 1-32 letters and digits", id)
	}
	return id, nil
}
