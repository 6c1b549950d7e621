package resolver

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"easymail/internal/testkit"
)

// TestLookupTLSA reads TLSA records and reports the AD bit of the answer as the server set it.
func TestLookupTLSA(t *testing.T) {
	d := testkit.NewDNS(t)
	d.AddTLSA("_25._tcp.mx.example.test", 3, 1, 1, "00112233")
	r := newResolver(t, d.Addr())
	ctx := context.Background()

	recs, secure, err := r.LookupTLSA(ctx, "_25._tcp.mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if secure {
		t.Error("answer without AD reported secure")
	}
	if len(recs) != 1 || recs[0].Usage != 3 || recs[0].Selector != 1 || recs[0].MatchingType != 1 ||
		!bytes.Equal(recs[0].Data, []byte{0x00, 0x11, 0x22, 0x33}) {
		t.Fatalf("records = %+v", recs)
	}

	d.SetAuthenticated(true)
	if _, secure, err = r.LookupTLSA(ctx, "_25._tcp.mx.example.test"); err != nil || !secure {
		t.Fatalf("with AD: secure=%v err=%v", secure, err)
	}
	_, secure, err = r.LookupTLSA(ctx, "_25._tcp.other.example.test")
	if !errors.Is(err, ErrNotFound) || !secure {
		t.Fatalf("authenticated denial: secure=%v err=%v, want ErrNotFound and secure", secure, err)
	}
}
