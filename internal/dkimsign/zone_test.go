package dkimsign

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDKIMRecordZone(t *testing.T) {
	value := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 380)
	r := Record{Selector: "s1", Name: "s1._domainkey.acme.example", Type: "TXT", Value: value}
	parts := r.Strings()
	if len(parts) != 2 || len(parts[0]) != 255 || strings.Join(parts, "") != value {
		t.Fatalf("strings %d: %v", len(parts), parts)
	}
	want := `s1._domainkey.acme.example. IN TXT ( "` + value[:255] + `" "` + value[255:] + `" )`
	if got := r.Zone(); got != want {
		t.Fatalf("zone\n%s\nwant\n%s", got, want)
	}
	short := Record{Name: "s2._domainkey.acme.example.", Type: "TXT", Value: "v=DKIM1; k=ed25519; p=abc"}
	if got := short.Zone(); got != `s2._domainkey.acme.example. IN TXT "v=DKIM1; k=ed25519; p=abc"` {
		t.Fatalf("short zone %q", got)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]string
	json.Unmarshal(b, &back)
	if back["value"] != value || back["zone"] != want || back["name"] != r.Name {
		t.Fatalf("JSON %s", b)
	}
}
