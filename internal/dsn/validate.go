package dsn

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Limits on the inputs. An RFC 5321 §4.5.3.1.3 path is at most 256 octets; a little slack is allowed. RFC 3461
// §4.4 limits ENVID to 100 characters.
const (
	maxAddressLen    = 512
	maxHostLen       = 255
	maxEnvIDLen      = 100
	maxQueueIDLen    = 128
	maxDiagnosticLen = 4096
)

// statusRE is the enhanced status code of RFC 3463 §2 / RFC 3464 §2.3.4: class "." subject "." detail, with
// class 2, 4 or 5.
var statusRE = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidReport}, args...)...)
}

// checkText rejects CR, LF, NUL and other control characters (HTAB excepted) and invalid UTF-8 in a field.
func checkText(what, s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return invalid("%s contains CR or LF: %q", what, s)
	}
	if !utf8.ValidString(s) {
		return invalid("%s is not valid UTF-8: %q", what, s)
	}
	for _, c := range s {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return invalid("%s contains control character %U: %q", what, c, s)
		}
	}
	return nil
}

// checkASCII rejects a field that is not printable ASCII (space included when spaceOK).
func checkASCII(what, s string, spaceOK bool) error {
	if err := checkText(what, s); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > 0x7e || c == '\t' || (c == ' ' && !spaceOK) {
			return invalid("%s must be printable ASCII without spaces: %q", what, s)
		}
	}
	return nil
}

// checkAddress checks a mailbox: non-empty, bounded, without controls, surrounding space or angle brackets.
func checkAddress(what, s string) error {
	if s == "" {
		return invalid("%s is empty", what)
	}
	if len(s) > maxAddressLen {
		return invalid("%s is longer than %d bytes", what, maxAddressLen)
	}
	if err := checkText(what, s); err != nil {
		return err
	}
	if strings.TrimSpace(s) != s {
		return invalid("%s has leading or trailing white space: %q", what, s)
	}
	if strings.ContainsAny(s, "<>") {
		return invalid("%s must be a bare address without angle brackets: %q", what, s)
	}
	return nil
}

// checkHost checks a host name or address literal as written after "dns;" (RFC 3464 §2.1.2 "dns" MTA name type):
// ASCII letters, digits, '-', '.', '_', and '[', ']', ':' for address literals.
func checkHost(what, s string) error {
	if s == "" {
		return invalid("%s is empty", what)
	}
	if len(s) > maxHostLen {
		return invalid("%s is longer than %d bytes", what, maxHostLen)
	}
	if err := checkText(what, s); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '[' || c == ']' || c == ':':
		default:
			return invalid("%s must be a host name in A-label form or an address literal, not %q", what, s)
		}
	}
	return nil
}

// isASCII reports whether s has only 7-bit characters.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// stripAddressType drops a leading "rfc822;" or "utf-8;" address type (RFC 3464 §2.1.2, RFC 6533 §3).
func stripAddressType(s string) string {
	typ, rest, ok := strings.Cut(s, ";")
	if !ok {
		return s
	}
	switch strings.ToLower(strings.TrimSpace(typ)) {
	case "rfc822", "utf-8":
		return strings.TrimSpace(rest)
	}
	return s
}

// validate checks a report before it is written. It returns the recipients with ORCPT normalised.
func validate(r *Report) ([]Recipient, error) {
	if err := checkHost("ReportingMTA", r.ReportingMTA); err != nil {
		return nil, err
	}
	if r.QueueID != "" {
		if len(r.QueueID) > maxQueueIDLen {
			return nil, invalid("QueueID is longer than %d bytes", maxQueueIDLen)
		}
		if err := checkASCII("QueueID", r.QueueID, false); err != nil {
			return nil, err
		}
	}
	if r.EnvID != "" {
		if len(r.EnvID) > maxEnvIDLen {
			return nil, invalid("EnvID is longer than %d characters (RFC 3461 §4.4)", maxEnvIDLen)
		}
		if err := checkASCII("EnvID", r.EnvID, true); err != nil {
			return nil, err
		}
	}
	if err := checkAddress("Sender", r.Sender); err != nil {
		return nil, err
	}
	if err := checkAddress("Postmaster", r.Postmaster); err != nil {
		return nil, err
	}
	if !r.SMTPUTF8 {
		// An address in a header field can be UTF-8 only under RFC 6532, which needs SMTPUTF8 to transport.
		if !isASCII(r.Sender) {
			return nil, invalid("Sender %q is not ASCII; a report to it needs SMTPUTF8", r.Sender)
		}
		if !isASCII(r.Postmaster) {
			return nil, invalid("Postmaster %q is not ASCII; it needs SMTPUTF8", r.Postmaster)
		}
	}
	if r.Now.IsZero() {
		return nil, invalid("Now is not set")
	}
	if len(r.Recipients) == 0 {
		return nil, invalid("no recipients")
	}
	rcpts := make([]Recipient, len(r.Recipients))
	for i, rc := range r.Recipients {
		what := func(field string) string { return fmt.Sprintf("recipient %d %s", i+1, field) }
		if err := checkAddress(what("Address"), rc.Address); err != nil {
			return nil, err
		}
		if rc.ORCPT != "" {
			if err := checkText(what("ORCPT"), rc.ORCPT); err != nil {
				return nil, err
			}
			rc.ORCPT = stripAddressType(rc.ORCPT)
			if err := checkAddress(what("ORCPT"), rc.ORCPT); err != nil {
				return nil, err
			}
		}
		if err := checkText(what("Action"), rc.Action); err != nil {
			return nil, err
		}
		if err := checkText(what("Status"), rc.Status); err != nil {
			return nil, err
		}
		if !statusRE.MatchString(rc.Status) {
			return nil, invalid("%s %q is not an enhanced status code class.subject.detail with class 2, 4 or 5 (RFC 3463)",
				what("Status"), rc.Status)
		}
		switch rc.Action {
		case ActionFailed:
			// A failure is 5.x.x, or 4.x.x when a temporary condition lasted until the message expired.
			if rc.Status[0] == '2' {
				return nil, invalid("%s %q is a success code but the action is failed", what("Status"), rc.Status)
			}
		case ActionDelayed:
			if rc.Status[0] != '4' {
				return nil, invalid("%s %q must be a 4.x.x code for a delayed recipient", what("Status"), rc.Status)
			}
		default:
			return nil, invalid("%s %q must be %q or %q", what("Action"), rc.Action, ActionFailed, ActionDelayed)
		}
		if rc.RemoteMTA != "" {
			if err := checkHost(what("RemoteMTA"), rc.RemoteMTA); err != nil {
				return nil, err
			}
		}
		if rc.Diagnostic != "" {
			if len(rc.Diagnostic) > maxDiagnosticLen {
				return nil, invalid("%s is longer than %d bytes", what("Diagnostic"), maxDiagnosticLen)
			}
			if err := checkText(what("Diagnostic"), rc.Diagnostic); err != nil {
				return nil, err
			}
			rc.Diagnostic = strings.TrimSpace(rc.Diagnostic)
		}
		rcpts[i] = rc
	}
	return rcpts, nil
}

// SanitizeDiagnostic makes an untrusted remote reply fit for Recipient.Diagnostic: the lines of a multi-line
// reply are joined with single spaces, other control characters become spaces, invalid UTF-8 becomes U+FFFD,
// surrounding space is trimmed and the result is cut to at most 1000 bytes on a character boundary.
func SanitizeDiagnostic(s string) string {
	const max = 1000
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	lastSpace := false
	for _, c := range s {
		if c == '\r' || c == '\n' {
			if !lastSpace {
				b.WriteByte(' ')
				lastSpace = true
			}
			continue
		}
		if (c < 0x20 && c != '\t') || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			c = ' '
		}
		b.WriteRune(c)
		lastSpace = c == ' ' || c == '\t'
	}
	out := strings.TrimSpace(b.String())
	if len(out) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = strings.TrimSpace(out[:cut])
	}
	return out
}
