package dkimsign

import (
	"testing"

	"github.com/emersion/go-message/textproto"
)

func TestAlignment(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"acme.test", "acme.test", true},
		{"mail.acme.test", "acme.test", true},
		{"a.acme.test", "b.acme.test", true},
		{"acme.test", "notacme.test", false},
		{"example.co.uk", "mail.example.co.uk", true},
		{"example.co.uk", "other.co.uk", false},
		{"shop.github.io", "blog.github.io", false}, // github.io is a public suffix: distinct organizations
		{"acme.test", "", false},
		{"", "", false},
	} {
		if got := Aligned(tc.a, tc.b); got != tc.want {
			t.Errorf("Aligned(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if got := OrgDomain("a.b.example.co.uk"); got != "example.co.uk" {
		t.Errorf("OrgDomain = %q", got)
	}
}

func TestBulkMarkers(t *testing.T) {
	for _, tc := range []struct {
		name               string
		fields             [][2]string
		bulk, lu, oneClick bool
	}{
		{"plain", nil, false, false, false},
		{"precedence bulk", [][2]string{{"Precedence", " Bulk"}}, true, false, false},
		{"precedence list", [][2]string{{"Precedence", "list"}}, true, false, false},
		{"precedence junk", [][2]string{{"Precedence", "junk"}}, false, false, false},
		{"list-id", [][2]string{{"List-Id", "<news.acme.test>"}}, true, false, false},
		{"mailto unsubscribe", [][2]string{{"List-Unsubscribe", "<mailto:u@acme.test>"}}, true, true, false},
		{"one-click", [][2]string{{"List-Unsubscribe", "<mailto:u@acme.test>, <https://acme.test/u?id=1>"},
			{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"}}, true, true, true},
		{"post without https", [][2]string{{"List-Unsubscribe", "<http://acme.test/u>"},
			{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"}}, true, true, false},
		{"wrong post value", [][2]string{{"List-Unsubscribe", "<https://acme.test/u>"},
			{"List-Unsubscribe-Post", "yes"}}, true, true, false},
	} {
		h := textproto.Header{}
		for _, f := range tc.fields {
			h.Add(f[0], f[1])
		}
		bulk, lu, oc := bulkMarkers(h)
		if bulk != tc.bulk || lu != tc.lu || oc != tc.oneClick {
			t.Errorf("%s: %v %v %v, want %v %v %v", tc.name, bulk, lu, oc, tc.bulk, tc.lu, tc.oneClick)
		}
	}
}
