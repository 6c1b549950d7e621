package delivery

import (
	"strings"
	"testing"
)

func TestParseReply(t *testing.T) {
	cases := []struct {
		code int
		msg  string
		want reply
	}{
		{550, "5.1.1 No such user", reply{550, [3]int{5, 1, 1}, "No such user", "550 5.1.1 No such user"}},
		{550, "No such user", reply{550, [3]int{5, 0, 0}, "No such user", "550 No such user"}},
		{452, "4.5.3", reply{452, [3]int{4, 5, 3}, "", "452 4.5.3"}},
		// Multi-line, the enhanced code repeated on every line (RFC 2034 §4); raw keeps every line's text.
		{554, "5.7.1 Message rejected\n5.7.1 see https://example.com/why", reply{554, [3]int{5, 7, 1},
			"Message rejected see https://example.com/why", "554 5.7.1 Message rejected 5.7.1 see https://example.com/why"}},
		// A code of the wrong class is not an enhanced code for this reply.
		{450, "5.1.1 odd", reply{450, [3]int{4, 0, 0}, "5.1.1 odd", "450 5.1.1 odd"}},
		{250, "mx.example Hello\nPIPELINING\nSIZE 100", reply{250, [3]int{2, 0, 0}, "mx.example Hello PIPELINING SIZE 100",
			"250 mx.example Hello PIPELINING SIZE 100"}},
		{421, "4.3.2.1 not a code", reply{421, [3]int{4, 0, 0}, "4.3.2.1 not a code", "421 4.3.2.1 not a code"}},
		{550, "5.1.1000 too long", reply{550, [3]int{5, 0, 0}, "5.1.1000 too long", "550 5.1.1000 too long"}},
		// The remote host's text is untrusted: control characters (a terminal escape, a NUL, DEL) are removed.
		{250, "2.0.0 Ok: queued as \x1b[31mX\x00Y\x7f", reply{250, [3]int{2, 0, 0}, "Ok: queued as [31mX Y",
			"250 2.0.0 Ok: queued as  [31mX Y"}},
	}
	for _, c := range cases {
		if got := parseReply(c.code, c.msg); got != c.want {
			t.Errorf("parseReply(%d, %q) = %+v, want %+v", c.code, c.msg, got, c.want)
		}
	}
	if s := (reply{550, [3]int{5, 1, 1}, "No such user", ""}).String(); s != "550 5.1.1 No such user" {
		t.Errorf("String() = %q", s)
	}
	// A long reply is cut to 1000 bytes, on a character boundary.
	long := parseReply(550, "5.7.1 "+strings.Repeat("é", 1000))
	if len(long.raw) > 1000 || len(long.text) > 1000 || !strings.HasPrefix(long.raw, "550 5.7.1 éé") ||
		strings.ContainsRune(long.raw, '\uFFFD') {
		t.Errorf("long reply: raw %d bytes %q..., text %d bytes", len(long.raw), long.raw[:20], len(long.text))
	}
}
