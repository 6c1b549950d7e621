package delivery

import "testing"

func TestParseReply(t *testing.T) {
	cases := []struct {
		code int
		msg  string
		want reply
	}{
		{550, "5.1.1 No such user", reply{550, [3]int{5, 1, 1}, "No such user"}},
		{550, "No such user", reply{550, [3]int{5, 0, 0}, "No such user"}},
		{452, "4.5.3", reply{452, [3]int{4, 5, 3}, ""}},
		// Multi-line, the enhanced code repeated on every line (RFC 2034 §4).
		{554, "5.7.1 Message rejected\n5.7.1 see https://example.com/why", reply{554, [3]int{5, 7, 1},
			"Message rejected see https://example.com/why"}},
		// A code of the wrong class is not an enhanced code for this reply.
		{450, "5.1.1 odd", reply{450, [3]int{4, 0, 0}, "5.1.1 odd"}},
		{250, "mx.example Hello\nPIPELINING\nSIZE 100", reply{250, [3]int{2, 0, 0}, "mx.example Hello PIPELINING SIZE 100"}},
		{421, "4.3.2.1 not a code", reply{421, [3]int{4, 0, 0}, "4.3.2.1 not a code"}},
		{550, "5.1.1000 too long", reply{550, [3]int{5, 0, 0}, "5.1.1000 too long"}},
	}
	for _, c := range cases {
		if got := parseReply(c.code, c.msg); got != c.want {
			t.Errorf("parseReply(%d, %q) = %+v, want %+v", c.code, c.msg, got, c.want)
		}
	}
	if s := (reply{550, [3]int{5, 1, 1}, "No such user"}).String(); s != "550 5.1.1 No such user" {
		t.Errorf("String() = %q", s)
	}
}
