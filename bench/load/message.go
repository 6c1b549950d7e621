package main

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// words is the vocabulary of the generated bodies: plain English text, so that the content filters see an
// ordinary message rather than one long run of a single character.
var words = strings.Fields(`the meeting notes from today are below we agreed to move the review to thursday
and to keep the budget as it is please send your comments before friday so that the team can prepare the
next release plan with the customers who asked for the new reports and the invoices of last month`)

// maxLine is the length of a generated body line, CRLF excluded (RFC 5322 §2.1.1 recommends at most 78).
const maxLine = 72

// makeBody returns a text body of exactly size bytes (size >= 2): CRLF-terminated lines of at most maxLine
// characters, none starting with "." (so that no dot-stuffing is needed, RFC 5321 §4.5.2). The text is the
// same for every call with the same size.
func makeBody(size int) []byte {
	if size < 2 {
		size = 2
	}
	var b bytes.Buffer
	b.Grow(size + maxLine + 2)
	line := 0
	// A fixed linear congruential sequence picks the words: varied text, the same at every run.
	seed := uint32(1)
	for b.Len() < size {
		seed = seed*1664525 + 1013904223
		w := words[int(seed>>16)%len(words)]
		if line > 0 && line+1+len(w) > maxLine {
			b.WriteString("\r\n")
			line = 0
		}
		if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	out := b.Bytes()[:size-2]
	// The cut may leave a line ending in a lone CR or a trailing space: both are harmless, but a CR alone is
	// not a line end in SMTP (RFC 5321 §2.3.8), so replace it.
	if n := len(out); n > 0 && out[n-1] == '\r' {
		out[n-1] = 'x'
	}
	return append(out, '\r', '\n')
}

// header returns the header of message number n of a run: a well-formed message (From, To, Subject, Date,
// Message-ID, MIME fields), so that neither the relays nor rspamd score missing fields. runID makes the
// Message-IDs unique across runs.
func header(n int, runID int64, from, to string, now time.Time) []byte {
	return fmt.Appendf(nil, "From: Bench <%s>\r\nTo: <%s>\r\nSubject: Benchmark message %d\r\n"+
		"Date: %s\r\nMessage-ID: <%d.%d@bench.test>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
		from, to, n, now.Format(time.RFC1123Z), runID, n)
}

// gtube is rspamd's spam test pattern: rspamd answers "reject" to any message with it in a text part.
const gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

// eicar returns the 68-byte EICAR antivirus test file. It is assembled here so that the repository does not
// hold it as one string (virus scanners on developer machines would flag the source file).
func eicar() string {
	return `X5O!P%@AP[4\PZX54(P^)7CC)7}$` + "EICAR" + `-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`
}

// probeBody returns the body of a probe message of the given kind: clean, gtube or eicar.
func probeBody(kind string) ([]byte, error) {
	switch kind {
	case "clean":
		return makeBody(512), nil
	case "gtube":
		return []byte("Hello,\r\n\r\n" + gtube + "\r\n"), nil
	case "eicar":
		return []byte("attached:\r\n" + eicar() + "\r\n"), nil
	}
	return nil, fmt.Errorf("-kind must be clean, gtube or eicar, not %q", kind)
}
