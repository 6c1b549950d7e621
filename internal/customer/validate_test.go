package customer

import (
	"strings"
	"testing"
)

func TestNormalizeDomain(t *testing.T) {
	ok := map[string]string{
		"Example.COM":                    "example.com",
		"example.com.":                   "example.com",
		" mail.example.org ":             "mail.example.org",
		"bücher.example":                 "xn--bcher-kva.example",
		"XN--BCHER-KVA.example":          "xn--bcher-kva.example",
		"a-b.c0.example.net":             "a-b.c0.example.net",
		"acme.test":                      "acme.test",
		strings.Repeat("a", 63) + ".com": strings.Repeat("a", 63) + ".com",
	}
	for in, want := range ok {
		got, err := NormalizeDomain(in)
		if err != nil || got != want {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", ".", "com", "localhost", "example..com", ".example.com", "example.com..", "-a.example.com",
		"a-.example.com", "exa mple.com", "exa_mple.com", "user@example.com", "1.2.3.4", "example.123",
		strings.Repeat("a", 64) + ".com", strings.Repeat("abcdefghi.", 26) + "com", "a/b.com", "[1.2.3.4]",
	}
	for _, in := range bad {
		if got, err := NormalizeDomain(in); err == nil {
			t.Errorf("NormalizeDomain(%q) = %q, want an error", in, got)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	cases := map[string]string{
		"Mail.Example.com": "mail.example.com",
		"192.0.2.1":        "192.0.2.1",
		"[2001:db8::1]":    "2001:db8::1",
		"2001:DB8::0001":   "2001:db8::1",
		"::ffff:192.0.2.7": "192.0.2.7",
	}
	for in, want := range cases {
		got, _, err := NormalizeHost(in)
		if err != nil || got != want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fe80::1%eth0", "localhost", "bad_host.example", "1.2.3"} {
		if got, _, err := NormalizeHost(in); err == nil {
			t.Errorf("NormalizeHost(%q) = %q, want an error", in, got)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	cases := map[string]string{
		"192.0.2.1":            "192.0.2.1/32",
		"10.1.2.3/24":          "10.1.2.0/24",
		" 198.51.100.0/24 ":    "198.51.100.0/24",
		"2001:db8::1":          "2001:db8::1/128",
		"2001:db8:1:2::/48":    "2001:db8:1::/48",
		"::ffff:192.0.2.0/120": "192.0.2.0/24",
		"::ffff:192.0.2.9":     "192.0.2.9/32",
		"127.0.0.1":            "127.0.0.1/32",
	}
	for in, want := range cases {
		got, err := ParsePrefix(in)
		if err != nil || got.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "10.0.0.0/33", "10.0.0.0/", "0.0.0.0/0", "10.0.0.0/7", "2001::/16",
		"fe80::1%eth0", "::ffff:0.0.0.0/90", "192.0.2.1/24/1"} {
		if got, err := ParsePrefix(in); err == nil {
			t.Errorf("ParsePrefix(%q) = %v, want an error", in, got)
		}
	}
}

func TestCheckRange(t *testing.T) {
	for _, c := range []struct {
		in           string
		allowPrivate bool
		ok           bool
	}{
		{"192.0.2.0/24", false, true},
		{"10.0.0.0/8", false, false},
		{"10.0.0.0/8", true, true},
		{"172.20.1.1/32", false, false},
		{"127.0.0.1/32", false, false},
		{"127.0.0.1/32", true, true},
		{"fd00::/48", false, false},
		{"fd00:1::/48", true, true},
		{"2001:db8::/32", false, true},
		{"224.0.0.1/32", true, false},
		{"255.255.255.255/32", true, false},
		{"0.0.0.0/8", true, false},
		{"ff02::1/128", true, false},
	} {
		p, err := ParsePrefix(c.in)
		if err != nil {
			t.Fatalf("ParsePrefix(%q): %v", c.in, err)
		}
		if err := checkRange(p, c.allowPrivate); (err == nil) != c.ok {
			t.Errorf("checkRange(%s, private=%v) = %v, want ok=%v", c.in, c.allowPrivate, err, c.ok)
		}
	}
}
