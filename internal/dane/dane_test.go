package dane

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"easymail/internal/resolver"
	"easymail/internal/testkit"
)

func chainOf(t *testing.T, raw [][]byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestVerify(t *testing.T) {
	ca := testkit.NewCA(t)
	now := time.Now()
	good := chainOf(t, ca.Good("mx.example.test").Certificate)
	expired := chainOf(t, ca.Expired("mx.example.test").Certificate)
	wrongName := chainOf(t, ca.Good("other.example.test").Certificate)
	other := chainOf(t, testkit.NewCA(t).Good("mx.example.test").Certificate)

	ee := func(c *x509.Certificate, sel, m uint8) resolver.TLSA {
		return resolver.TLSA{Usage: UsageDANEEE, Selector: sel, MatchingType: m, Data: Record(c, sel, m)}
	}
	ta := func(sel, m uint8) resolver.TLSA {
		return resolver.TLSA{Usage: UsageDANETA, Selector: sel, MatchingType: m, Data: Record(ca.Cert, sel, m)}
	}
	for _, tc := range []struct {
		name   string
		recs   []resolver.TLSA
		chain  []*x509.Certificate
		result string // "" for a match
	}{
		{"EE full cert", []resolver.TLSA{ee(good[0], 0, 0)}, good, ""},
		{"EE spki sha256", []resolver.TLSA{ee(good[0], 1, 1)}, good, ""},
		{"EE cert sha512", []resolver.TLSA{ee(good[0], 0, 2)}, good, ""},
		// DANE-EE ignores names and dates (RFC 7672 §3.1.1).
		{"EE expired still matches", []resolver.TLSA{ee(expired[0], 1, 1)}, expired, ""},
		{"EE other key", []resolver.TLSA{ee(good[0], 1, 1)}, other, "validation-failure"},
		{"TA spki sha256", []resolver.TLSA{ta(1, 1)}, good, ""},
		{"TA cert full", []resolver.TLSA{ta(0, 0)}, good, ""},
		{"TA expired leaf", []resolver.TLSA{ta(1, 1)}, expired, "certificate-expired"},
		{"TA wrong name", []resolver.TLSA{ta(1, 1)}, wrongName, "certificate-host-mismatch"},
		{"TA other CA", []resolver.TLSA{ta(1, 1)}, other, "validation-failure"},
		{"unusable PKIX-EE only", []resolver.TLSA{{Usage: 1, Selector: 1, MatchingType: 1, Data: Record(good[0], 1, 1)}}, good, "validation-failure"},
		{"one of several", []resolver.TLSA{ee(other[0], 1, 1), ta(1, 1)}, good, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.recs, tc.chain, "mx.example.test", now)
			var de *Error
			switch {
			case tc.result == "" && err != nil:
				t.Fatalf("Verify: %v, want a match", err)
			case tc.result != "" && (!errors.As(err, &de) || de.Result != tc.result):
				t.Fatalf("Verify: %v, want %s", err, tc.result)
			}
		})
	}
	if len(Usable([]resolver.TLSA{{Usage: 0}, {Usage: 3, Selector: 2}, {Usage: 2, MatchingType: 3}, {Usage: 3}})) != 1 {
		t.Error("Usable kept an unusable record")
	}
}
