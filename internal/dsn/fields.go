package dsn

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// field is one field of a delivery-status group: its name in lower case and its unfolded value.
type field struct {
	name, value string
}

// group is a block of fields: the per-message fields or one recipient's fields (RFC 3464 §2.1).
type group []field

// get returns the value of the first field called name (lower case).
func (g group) get(name string) (string, bool) {
	for _, f := range g {
		if f.name == name {
			return f.value, true
		}
	}
	return "", false
}

// parseGroups splits the body of a message/delivery-status part into groups of fields (RFC 3464 §2.1): fields
// in the syntax of RFC 5322 header fields, groups separated by blank lines. Folded fields are unfolded as
// RFC 5322 §2.2.3 says, by removing the line breaks, except that the white space starting a continuation line
// is read as one space; names are case-insensitive; values are trimmed.
// Lines may end in CRLF or LF; a line of white space only separates groups like an empty one.
func parseGroups(body []byte) ([]group, error) {
	var groups []group
	var cur group
	flush := func() {
		if len(cur) > 0 {
			for i := range cur {
				cur[i].value = strings.Trim(cur[i].value, " \t")
			}
			groups = append(groups, cur)
			cur = nil
		}
	}
	for n, line := range bytes.Split(body, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case len(bytes.Trim(line, " \t")) == 0:
			flush()
		case isWSP(line[0]):
			if len(cur) == 0 {
				return nil, fmt.Errorf("dsn: delivery-status line %d: continuation line without a field: %q", n+1, line)
			}
			// The white space that starts a continuation line counts as one space, so that an indented
			// continuation ("\n    text", as Postfix writes) reads as a single space. Folding as writeField
			// does, before a single WSP, is undone exactly.
			cur[len(cur)-1].value += " " + string(bytes.TrimLeft(line, " \t"))
		default:
			i := bytes.IndexByte(line, ':')
			if i < 0 {
				return nil, fmt.Errorf("dsn: delivery-status line %d: not a field: %q", n+1, line)
			}
			name := bytes.TrimRight(line[:i], " \t") // RFC 5322 §4.5 obsolete syntax allows WSP before the colon
			if len(name) == 0 {
				return nil, fmt.Errorf("dsn: delivery-status line %d: empty field name: %q", n+1, line)
			}
			for _, c := range name {
				if c < 33 || c > 126 {
					return nil, fmt.Errorf("dsn: delivery-status line %d: bad field name %q", n+1, name)
				}
			}
			cur = append(cur, field{name: strings.ToLower(string(name)), value: string(line[i+1:])})
		}
	}
	flush()
	return groups, nil
}

// splitTyped splits "type; value" (RFC 3464 §2.1.2 address, MTA name and diagnostic types) into the type in
// lower case and the value, both trimmed, with or without space around the semicolon. Without a semicolon the
// type is "".
func splitTyped(v string) (typ, val string) {
	t, rest, ok := strings.Cut(v, ";")
	if !ok {
		return "", strings.TrimSpace(v)
	}
	return strings.ToLower(strings.TrimSpace(t)), strings.TrimSpace(rest)
}

// decodeAddress returns the address of an address field: for "rfc822" the address itself (angle brackets,
// which some MTAs add, removed), for "utf-8" (RFC 6533 §3) the decoded utf-8-addr-xtext, utf-8-addr-unitext
// or utf-8-address, for other types the value after the semicolon.
func decodeAddress(v string) (string, error) {
	typ, val := splitTyped(v)
	switch typ {
	case "utf-8":
		// SP is never literal in these forms, so white space can only come from folding.
		val = strings.Map(func(c rune) rune {
			if c == ' ' || c == '\t' {
				return -1
			}
			return c
		}, val)
		return decodeEmbedded(val)
	case "rfc822", "":
		if len(val) >= 2 && val[0] == '<' && val[len(val)-1] == '>' {
			val = strings.TrimSpace(val[1 : len(val)-1])
		}
		return val, nil
	}
	return val, nil
}

// decodeEmbedded replaces each EmbeddedUnicodeChar "\x{HEX}" of RFC 6533 §3 by the character it stands for.
func decodeEmbedded(s string) (string, error) {
	if !strings.Contains(s, `\x{`) {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, `\x{`)
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i+3:]
		j := strings.IndexByte(s, '}')
		if j < 1 || j > 6 {
			return "", fmt.Errorf("dsn: bad \\x{...} escape in %q", s)
		}
		n, err := strconv.ParseUint(s[:j], 16, 32)
		if err != nil || !utf8.ValidRune(rune(n)) {
			return "", fmt.Errorf("dsn: bad \\x{%s} escape", s[:j])
		}
		b.WriteRune(rune(n))
		s = s[j+1:]
	}
}

// firstWord returns the first white-space-separated word of s, dropping a trailing comment such as
// "5.0.0 (permanent failure)".
func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
