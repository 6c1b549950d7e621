package smtpin

import (
	"errors"
	"strings"
	"unicode/utf8"

	"easymail/internal/access"
	"easymail/internal/smtperr"
)

// Address refusals.
var (
	// errNonASCIIAddress: an address with non-ASCII characters needs MAIL FROM ... SMTPUTF8 (RFC 6531 §3.5).
	errNonASCIIAddress = smtperr.New(553, smtperr.PermNonASCII, "Non-ASCII address requires SMTPUTF8")
	// errRoutedLocalPart: a recipient local part with '%' or '!' asks the next hop to relay further (the
	// "percent hack" and UUCP bang paths, RFC 1123 §5.2.16, RFC 5321 Appendix C): an open-relay pattern.
	errRoutedLocalPart = smtperr.New(550, smtperr.PermPolicy, "Relaying through the local part ('%%' or '!') is not allowed")
)

// maxAddressLength bounds an address (RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its brackets).
const maxAddressLength = 254

// canonicalAddress checks an envelope address as go-smtp hands it over (a quoted local part already
// unquoted, a source route already dropped — RFC 5321 §3.6.1 and Appendix C tell servers to ignore source
// routes) and returns it in canonical form with its local part and domain: the local part as a dot-string
// when it is one, else quoted (RFC 5321 §4.1.2), so that a quoted local part reaches the next hop quoted.
// Address literals, control characters, malformed domains and non-ASCII without SMTPUTF8 are refused.
func canonicalAddress(addr string, smtputf8 bool) (canon, local, domain string, err error) {
	if len(addr) > maxAddressLength {
		return "", "", "", smtperr.BadAddress.Wrap(errors.New("address too long"))
	}
	if !utf8.ValidString(addr) {
		return "", "", "", smtperr.BadAddress.Wrap(errors.New("address is not valid UTF-8"))
	}
	if !smtputf8 && !isASCII(addr) {
		return "", "", "", errNonASCIIAddress
	}
	local, domain, err = splitAddress(addr)
	if err != nil {
		return "", "", "", smtperr.BadAddress.Wrap(err)
	}
	for _, r := range local {
		if r < 0x20 || r == 0x7f {
			return "", "", "", smtperr.BadAddress.Wrap(errors.New("control character in local part"))
		}
	}
	if err := checkDomain(domain); err != nil {
		return "", "", "", smtperr.BadAddress.Wrap(err)
	}
	if !isDotString(local) {
		local = quoteLocal(local)
	}
	return local + "@" + domain, local, domain, nil
}

// checkRecipientLocal refuses the local parts that route mail onwards.
func checkRecipientLocal(local string) error {
	if strings.ContainsAny(local, "%!") {
		return errRoutedLocalPart
	}
	return nil
}

// splitAddress splits an address into local part and domain, refusing what cannot be relayed safely.
func splitAddress(addr string) (local, domain string, err error) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", "", errors.New("address needs a local part and a domain")
	}
	local, domain = addr[:i], addr[i+1:]
	if strings.HasPrefix(domain, "[") {
		return "", "", errors.New("address literals are not relayed")
	}
	if strings.ContainsAny(domain, " \t\r\n\x00<>()[]\\,;:\"@%!") {
		return "", "", errors.New("invalid characters in domain")
	}
	if strings.ContainsAny(local, "\r\n\x00") {
		return "", "", errors.New("invalid characters in local part")
	}
	if _, err := access.NormalizeDomain(domain); err != nil {
		return "", "", err
	}
	return local, domain, nil
}

// checkDomain requires a fully-qualified domain name (RFC 5321 §2.3.5) whose A-label form has labels of 1
// to 63 octets and at most 253 octets in all (RFC 1035 §2.3.4).
func checkDomain(domain string) error {
	a, err := access.NormalizeDomain(domain)
	if err != nil {
		return err
	}
	if len(a) > 253 || !strings.Contains(a, ".") {
		return errors.New("domain must be a fully-qualified domain name")
	}
	for _, l := range strings.Split(a, ".") {
		if l == "" || len(l) > 63 {
			return errors.New("domain has an empty or over-long label")
		}
	}
	return nil
}

// isDotString reports whether local is a Dot-string of RFC 5321 §4.1.2: atoms of atext (RFC 5322 §3.2.3,
// with UTF-8 characters as RFC 6531 §3.3 allows) separated by single dots.
func isDotString(local string) bool {
	if local == "" || local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for _, r := range local {
		if r != '.' && !isAtext(r) {
			return false
		}
	}
	return true
}

func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r >= 0x80:
		return true
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// quoteLocal returns local as a Quoted-string (RFC 5321 §4.1.2): '"' and '\' are escaped with '\'.
func quoteLocal(local string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		if c := local[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(local[i])
	}
	b.WriteByte('"')
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
