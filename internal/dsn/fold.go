package dsn

import (
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"
)

// Line lengths of RFC 5322 §2.1.1: lines SHOULD be at most 78 characters and MUST be at most 998, CRLF excluded.
const (
	softLineLen = 78
	hardLineLen = 998
)

// isWSP reports whether c is white space as RFC 5322 §2.2.3 folds it.
func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// writeField writes "name: value" CRLF to b, folded per RFC 5322 §2.2.3: a CRLF is inserted only before white
// space that is followed by a non-space character, so that unfolding (removing the CRLFs) restores the value
// exactly and no line is white space only. A run without white space too long for a 998-octet line is broken
// with an inserted CRLF SP, never inside a UTF-8 sequence or a "\x{...}" escape; that is the only case in which
// unfolding adds a space. Runs of more than maxWSPRun white space characters are shortened to one space, and
// surrounding white space is dropped. value must not contain CR or LF.
func writeField(b *strings.Builder, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	value = strings.TrimLeft(value, " \t")
	if value == "" {
		b.WriteString("\r\n")
		return
	}
	chunks := splitFoldable(" " + limitWSPRuns(strings.TrimRight(value, " \t")))
	lineLen := len(name) + 1
	for i, c := range chunks {
		if i > 0 && lineLen+len(c) > softLineLen {
			b.WriteString("\r\n")
			lineLen = 0
		}
		for lineLen+len(c) > hardLineLen {
			cut := safeCut(c, hardLineLen-lineLen)
			b.WriteString(c[:cut])
			b.WriteString("\r\n ")
			lineLen = 1
			c = c[cut:]
		}
		b.WriteString(c)
		lineLen += len(c)
	}
	b.WriteString("\r\n")
}

// maxWSPRun is the longest run of white space writeField keeps; longer runs become one space, so that a
// chunk can always be broken inside its non-space part.
const maxWSPRun = 32

// limitWSPRuns replaces each run of more than maxWSPRun white space characters by a single space.
func limitWSPRuns(v string) string {
	var b strings.Builder
	run := 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) && isWSP(v[i]) {
			run++
			continue
		}
		if run > maxWSPRun {
			b.WriteByte(' ')
		} else {
			b.WriteString(v[i-run : i])
		}
		run = 0
		if i < len(v) {
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

// splitFoldable splits v (which starts with white space followed by a non-space character) before every white
// space character that is followed by a non-space character: each chunk starts with one WSP and a non-WSP.
func splitFoldable(v string) []string {
	var chunks []string
	start := 0
	for i := 1; i+1 < len(v); i++ {
		if isWSP(v[i]) && !isWSP(v[i+1]) {
			chunks = append(chunks, v[start:i])
			start = i
		}
	}
	return append(chunks, v[start:])
}

// safeCut returns where to break the chunk c so that c[:cut] is at most n bytes: at a UTF-8 character
// boundary, outside a "\x{...}" escape, after c's first two bytes (one WSP and one non-WSP) and before its
// last non-space character, so that both lines have content.
func safeCut(c string, n int) int {
	const minCut = 2
	if n < minCut+12 {
		n = minCut + 12
	}
	if last := len(strings.TrimRight(c, " \t")) - 1; n > last {
		n = last
	}
	cut := n
	for cut > minCut && cut < len(c) && !utf8.RuneStart(c[cut]) {
		cut--
	}
	if j := strings.LastIndex(c[:cut], `\x{`); j >= minCut && !strings.Contains(c[j:cut], "}") {
		cut = j
	}
	if cut < minCut {
		cut = minCut
	}
	return cut
}

// headerText returns an unstructured header field value: as is when ASCII or when UTF-8 header fields are
// allowed (RFC 6532, SMTPUTF8), otherwise as RFC 2047 encoded-words (Q encoding).
func headerText(s string, utf8OK bool) string {
	if utf8OK || isASCII(s) {
		return s
	}
	return mime.QEncoding.Encode("utf-8", s)
}

// isQCHAR reports whether c may stand for itself in utf-8-addr-xtext (RFC 6533 §3): printable ASCII except
// SP, '\', '+' and '='.
func isQCHAR(c rune) bool {
	return c >= 0x21 && c <= 0x7e && c != '\\' && c != '+' && c != '='
}

// embeddedUnicodeChar writes c as the EmbeddedUnicodeChar "\x{HEX}" of RFC 6533 §3: upper-case hex, two
// digits at least, no other leading zeros.
func embeddedUnicodeChar(b *strings.Builder, c rune) {
	fmt.Fprintf(b, `\x{%02X}`, c)
}

// utf8AddrXtext encodes an address as utf-8-addr-xtext (RFC 6533 §3), the 7-bit form for message/delivery-status.
func utf8AddrXtext(addr string) string {
	var b strings.Builder
	for _, c := range addr {
		if isQCHAR(c) {
			b.WriteRune(c)
		} else {
			embeddedUnicodeChar(&b, c)
		}
	}
	return b.String()
}

// utf8AddrGlobal encodes an address for message/global-delivery-status: as the plain utf-8-address (a Mailbox
// of RFC 6531) when it has no space, control or backslash, otherwise as utf-8-addr-unitext (RFC 6533 §3), which
// keeps non-ASCII characters and escapes the rest.
func utf8AddrGlobal(addr string) string {
	if !strings.ContainsFunc(addr, func(c rune) bool { return c <= 0x20 || c == 0x7f || c == '\\' }) {
		return addr
	}
	var b strings.Builder
	for _, c := range addr {
		if isQCHAR(c) || c >= 0x80 {
			b.WriteRune(c)
		} else {
			embeddedUnicodeChar(&b, c)
		}
	}
	return b.String()
}

// asciiText replaces each non-ASCII character of s by its "\x{HEX}" escape (the notation of RFC 6533 §3), for
// free text in a 7-bit message/delivery-status.
func asciiText(s string) string {
	if isASCII(s) {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		if c < utf8.RuneSelf {
			b.WriteRune(c)
		} else {
			embeddedUnicodeChar(&b, c)
		}
	}
	return b.String()
}

// typedAddress formats an address with its address type (RFC 3464 §2.1.2): "rfc822; addr" for ASCII
// addresses, "utf-8; addr" (RFC 6533 §3) otherwise.
func typedAddress(addr string, global bool) string {
	if isASCII(addr) {
		return "rfc822; " + addr
	}
	if global {
		return "utf-8; " + utf8AddrGlobal(addr)
	}
	return "utf-8; " + utf8AddrXtext(addr)
}
