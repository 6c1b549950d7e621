// Package contentrules checks a message against content rules: forbidden attachment extensions (also as the
// last of a double extension such as "invoice.pdf.exe", and inside zip archives), forbidden MIME types, a
// size limit, and regular expressions over the header fields and the text parts. Each rule carries the
// action to take (reject, quarantine, tag) and the reason given to the client.
//
// The MIME walk (walk.go) is built on emersion/go-message. It reads the message as a stream (from the spool
// file, in the relay) and holds little of it in memory; it is bounded by Limits in depth, parts, archive
// entries, decompressed bytes and time, so that a hostile message (a zip bomb) cannot make it use unbounded
// memory or time: a message over a budget is reported as such (Result.Budget), and the caller refuses or
// quarantines it (metrics.go counts those).
package contentrules

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"easymail/internal/fielderr"
)

// Content rule types (Rule.Type).
const (
	// TypeExtension matches an attachment whose file name ends in one of Values ("exe"), also inside a zip.
	TypeExtension = "extension"
	// TypeDoubleExtension matches a file name with two extensions whose last is one of Values
	// ("invoice.pdf.exe"), also inside a zip.
	TypeDoubleExtension = "double_extension"
	// TypeMIMEType matches a part whose Content-Type is one of Values ("application/x-msdownload"; a value
	// ending in "/*" matches a whole top-level type).
	TypeMIMEType = "mime_type"
	// TypeHeader matches Pattern (a Go regexp) against each header field, as "Name: value" (decoded).
	TypeHeader = "header"
	// TypeBody matches Pattern against each text part (decoded, at most the first 1 MiB of each).
	TypeBody = "body"
	// TypeSize matches a message larger than MaxBytes.
	TypeSize = "size"
)

// Scan actions: what a verdict or a content rule does to a message.
const (
	ActionReject     = "reject"
	ActionQuarantine = "quarantine"
	ActionTag        = "tag"
)

// Rule is one content rule: a match and what to do with a matching message (the wire and configuration
// form).
type Rule struct {
	// Name identifies the rule in logs and traces; defaults to its type.
	Name string `json:"name,omitempty" yaml:"name"`
	// Type is extension, double_extension, mime_type, header, body or size.
	Type string `json:"type" yaml:"type"`
	// Values are the extensions (without the dot, case-insensitive) or MIME types of the rule.
	Values []string `json:"values,omitempty" yaml:"values"`
	// Pattern is the regular expression (Go syntax, RE2) of a header or body rule.
	Pattern string `json:"pattern,omitempty" yaml:"pattern"`
	// MaxBytes is the size limit of a size rule.
	MaxBytes int64 `json:"max_bytes,omitempty" yaml:"max_bytes"`
	// Action is reject, quarantine or tag.
	Action string `json:"action" yaml:"action"`
	// Reason is the text given in the SMTP reply and recorded in the message log.
	Reason string `json:"reason" yaml:"reason"`
}

// Hit is a content rule that matched a message.
type Hit struct {
	Rule   string `json:"rule"`
	Type   string `json:"type"`
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Where says what matched: a file name (with the archive it is in), a MIME type, a header name.
	Where string `json:"where,omitempty"`
}

// Set is a compiled list of rules. The zero value has no rules.
type Set struct {
	rules []compiled
	// needsWalk is set when a rule looks inside the message.
	needsWalk bool
}

type compiled struct {
	Rule
	values map[string]bool
	re     *regexp.Regexp
}

// Compile checks and compiles rules. prefix names the list in errors ("scan.rules").
func Compile(rules []Rule, prefix string) (*Set, error) {
	s := &Set{}
	for i, r := range rules {
		field := func(f string) string { return fmt.Sprintf("%s[%d].%s", prefix, i, f) }
		c := compiled{Rule: r, values: map[string]bool{}}
		if c.Name == "" {
			c.Name = c.Type
		}
		switch r.Action {
		case ActionReject, ActionQuarantine, ActionTag:
		default:
			return nil, fielderr.New(field("action"), "must be reject, quarantine or tag")
		}
		if strings.TrimSpace(r.Reason) == "" || strings.ContainsAny(r.Reason, "\r\n") || len(r.Reason) > 200 {
			return nil, fielderr.New(field("reason"), "must be one line of 1-200 characters")
		}
		switch r.Type {
		case TypeExtension, TypeDoubleExtension:
			if len(r.Values) == 0 {
				return nil, fielderr.New(field("values"), "needs at least one extension")
			}
			for _, v := range r.Values {
				v = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(v), "."))
				if v == "" || strings.ContainsAny(v, "./\\ ") {
					return nil, fielderr.Newf(field("values"), "%q is not a file extension", v)
				}
				c.values[v] = true
			}
			s.needsWalk = true
		case TypeMIMEType:
			if len(r.Values) == 0 {
				return nil, fielderr.New(field("values"), "needs at least one MIME type")
			}
			for _, v := range r.Values {
				v = strings.ToLower(strings.TrimSpace(v))
				if t, sub, ok := strings.Cut(v, "/"); !ok || t == "" || sub == "" || strings.ContainsAny(v, " ;") {
					return nil, fielderr.Newf(field("values"), "%q is not a MIME type", v)
				}
				c.values[v] = true
			}
			s.needsWalk = true
		case TypeHeader, TypeBody:
			re, err := regexp.Compile(r.Pattern)
			if err != nil || r.Pattern == "" {
				return nil, fielderr.New(field("pattern"), "must be a regular expression (RE2 syntax)")
			}
			c.re = re
			s.needsWalk = true
		case TypeSize:
			if r.MaxBytes <= 0 {
				return nil, fielderr.New(field("max_bytes"), "must be positive")
			}
		default:
			return nil, fielderr.New(field("type"), "must be extension, double_extension, mime_type, header, body or size")
		}
		s.rules = append(s.rules, c)
	}
	return s, nil
}

// Len returns the number of rules.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.rules)
}

// Result is what Check found in a message.
type Result struct {
	// Hits are the rules that matched, each once, in rule order.
	Hits []Hit
	// Budget names the limit the message went over ("" for none): the walk stopped there, so what lies
	// beyond it was not checked. The caller decides what to do with such a message.
	Budget string
	Stats  Stats
	// Err is a local failure (the message or a scratch file could not be read or written): the check is
	// incomplete.
	Err error
}

// Check reads the message of size bytes from r and returns the rules it matches, within lim.
func (s *Set) Check(r io.Reader, size int64, lim Limits) Result {
	var res Result
	if s.Len() == 0 {
		return res
	}
	hit := make([]*Hit, len(s.rules))
	mark := func(i int, where string) {
		if hit[i] == nil {
			r := s.rules[i]
			hit[i] = &Hit{Rule: r.Name, Type: r.Type, Action: r.Action, Reason: r.Reason, Where: where}
		}
	}
	for i, r := range s.rules {
		if r.Type == TypeSize && size > r.MaxBytes {
			mark(i, fmt.Sprintf("%d bytes", size))
		}
	}
	if s.needsWalk {
		walked, err := Walk(r, lim, func(p Part) bool {
			for i, r := range s.rules {
				if hit[i] != nil {
					continue
				}
				if where, ok := r.matchPart(p); ok {
					mark(i, where)
				}
			}
			return true
		})
		res.Budget, res.Stats, res.Err = walked.Budget, walked.Stats, err
		for i, r := range s.rules {
			if r.Type != TypeHeader || hit[i] != nil {
				continue
			}
			for _, f := range walked.Fields {
				if r.re.MatchString(f) {
					name, _, _ := strings.Cut(f, ":")
					mark(i, name)
					break
				}
			}
		}
	}
	for _, h := range hit {
		if h != nil {
			res.Hits = append(res.Hits, *h)
		}
	}
	return res
}

// matchPart tells whether part p matches rule r, and where.
func (r *compiled) matchPart(p Part) (string, bool) {
	where := p.Filename
	if p.Archive != "" {
		where = p.Archive + ": " + p.Filename
	}
	switch r.Type {
	case TypeExtension:
		if ext := lastExt(p.Filename); ext != "" && r.values[ext] {
			return where, true
		}
	case TypeDoubleExtension:
		if exts := extensions(p.Filename); len(exts) >= 2 && r.values[exts[len(exts)-1]] {
			return where, true
		}
	case TypeMIMEType:
		if p.ContentType != "" && (r.values[p.ContentType] || r.values[topType(p.ContentType)+"/*"]) {
			if where == "" {
				return p.ContentType, true
			}
			return where + " (" + p.ContentType + ")", true
		}
	case TypeBody:
		if p.Text != nil && r.re.Match(p.Text) {
			return p.ContentType, true
		}
	}
	return "", false
}

func topType(ct string) string {
	t, _, _ := strings.Cut(ct, "/")
	return t
}

// baseName strips directories (either separator) and the trailing dots and spaces Windows ignores.
func baseName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return strings.TrimRight(strings.ToLower(name), ". \t")
}

// lastExt returns the lower-cased last extension of a file name, without the dot.
func lastExt(name string) string {
	exts := extensions(name)
	if len(exts) == 0 {
		return ""
	}
	return exts[len(exts)-1]
}

// extensions returns the extensions of a file name in order ("a.pdf.exe" → pdf, exe). A leading dot (a
// hidden file's) is not an extension separator.
func extensions(name string) []string {
	b := strings.TrimLeft(baseName(name), ".")
	parts := strings.Split(b, ".")
	if len(parts) < 2 {
		return nil
	}
	var out []string
	for _, p := range parts[1:] {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
