package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

// TestSignVerify: the signature is HMAC-SHA256 of "t." + body, checked independently; Verify refuses a
// changed body, another secret, an old time and a malformed header.
func TestSignVerify(t *testing.T) {
	at := time.Unix(1900000000, 0)
	body := []byte(`{"event":"delivered"}`)
	h := Sign("whsec_x", at, body)
	m := hmac.New(sha256.New, []byte("whsec_x"))
	m.Write([]byte("1900000000." + string(body)))
	if want := "t=1900000000,v1=" + hex.EncodeToString(m.Sum(nil)); h != want {
		t.Fatalf("Sign = %s, want %s", h, want)
	}
	if !Verify("whsec_x", h, body, at.Add(time.Minute), 5*time.Minute) {
		t.Fatal("valid signature refused")
	}
	for name, ok := range map[string]bool{
		"changed body": Verify("whsec_x", h, []byte(`{"event":"bounced"}`), at, 0),
		"other secret": Verify("whsec_y", h, body, at, 0),
		"too old":      Verify("whsec_x", h, body, at.Add(time.Hour), 5*time.Minute),
		"no v1":        Verify("whsec_x", "t=1900000000", body, at, 0),
		"no t":         Verify("whsec_x", "v1=00", body, at, 0),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
}
