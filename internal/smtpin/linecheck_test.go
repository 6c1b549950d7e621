package smtpin

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"easymail/internal/smtperr"
)

func TestLineChecker(t *testing.T) {
	cases := []struct {
		in   string
		want error
	}{
		{"a\r\nb\r\n", nil},
		{"", nil},
		{"\r\n\r\n\r\n", nil},
		{"a\nb\r\n", smtperr.BareLineEnding},
		{"a\rb\r\n", smtperr.BareLineEnding},
		{"a\r\n\n", smtperr.BareLineEnding},
		{"a\r\r\n", smtperr.BareLineEnding},
		{"ends with CR\r", smtperr.BareLineEnding},
		{"nul\x00\r\n", smtperr.NULByte},
		{"line\r\n.\nMAIL FROM:<x@y>\r\n", smtperr.BareLineEnding},
	}
	for _, tc := range cases {
		// One byte at a time, so that CR and LF fall in different reads.
		for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
			lc := &lineChecker{r: r}
			_, err := io.Copy(io.Discard, lc)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Errorf("%q: %v, want %v", tc.in, err, tc.want)
			}
		}
	}
}

func BenchmarkLineChecker(b *testing.B) {
	msg := strings.Repeat(strings.Repeat("x", 76)+"\r\n", 1300) // 100 KB
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		lc := &lineChecker{r: strings.NewReader(msg)}
		if _, err := io.Copy(io.Discard, lc); err != nil {
			b.Fatal(err)
		}
	}
}
