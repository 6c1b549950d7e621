package dkimsign

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
)

// BenchmarkSign measures what smtpin does per message: Begin, writing the message through the signers
// (to io.Discard here, to the spool file there) and Finish. "unsigned" is the same path without a key.
func BenchmarkSign(b *testing.B) {
	for _, bc := range []struct {
		name    string
		size    int
		ed25519 bool
		sign    bool
	}{
		{"unsigned-5KiB", 5 << 10, false, false},
		{"rsa2048-5KiB", 5 << 10, false, true},
		{"rsa2048+ed25519-5KiB", 5 << 10, true, true},
		{"rsa2048-100KiB", 100 << 10, false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, func(o *Options) { o.RSABits = 2048 })
			id := f.customer(b, "Acme", "acme.test")
			if bc.ed25519 {
				if err := f.m.AddEd25519(context.Background(), "acme.test"); err != nil {
					b.Fatal(err)
				}
				for _, k := range f.keys(b, "acme.test") {
					f.publish(k)
				}
				f.m.Tick(context.Background())
			}
			customer := id
			if !bc.sign {
				customer = "nobody"
			}
			body := strings.Repeat(strings.Repeat("x", 76)+"\r\n", bc.size/78)
			msg := testMsg + body
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for range b.N {
				br := bufio.NewReader(strings.NewReader(msg))
				h, err := textproto.ReadHeader(br)
				if err != nil {
					b.Fatal(err)
				}
				s := f.m.Begin(customer, "alice@acme.test", h)
				w := s.Writer(io.Discard)
				textproto.WriteHeader(w, h)
				br.WriteTo(w)
				if _, err := s.Finish(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
