package config

import (
	"errors"
	"testing"
	"time"
)

func TestLifecycleDefaultsAndDerivation(t *testing.T) {
	c := Default()
	c.Hostname = "relay.example.net"
	if c.NoticeFrom() != "postmaster@relay.example.net" || c.SPFDomain() != "_spf.example.net" {
		t.Fatalf("derived %q %q", c.NoticeFrom(), c.SPFDomain())
	}
	if err := Parse([]byte("lifecycle:\n  spf_domain: SPF.Example.NET.\n  notices: [240h]\n  grace: 0s\n"), &c); err != nil {
		t.Fatal(err)
	}
	c.fill()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Lifecycle.SPFDomain != "spf.example.net" || len(c.Lifecycle.Notices) != 1 || c.Lifecycle.Notices[0] != 240*time.Hour {
		t.Fatalf("parsed %+v", c.Lifecycle)
	}
}

func TestLifecycleValidation(t *testing.T) {
	for _, tc := range []struct {
		yaml, key string
	}{
		{"lifecycle:\n  notices: [720h, 0s]\n", "lifecycle.notices[1]"},
		{"lifecycle:\n  notices: [168h, 168h]\n", "lifecycle.notices"},
		{"lifecycle:\n  grace: -1h\n", "lifecycle.grace"},
		{"lifecycle:\n  interval: 0s\n", "lifecycle.interval"},
		{"lifecycle:\n  notice_from: not an address\n", "lifecycle.notice_from"},
		{"lifecycle:\n  notice_from: Ops <ops@example.net>\n", "lifecycle.notice_from"},
		{"lifecycle:\n  spf_domain: \"bad domain\"\n", "lifecycle.spf_domain"},
	} {
		c := Default()
		c.Hostname = "relay.example.net"
		if err := Parse([]byte(tc.yaml), &c); err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		c.fill()
		var ke *KeyError
		if err := c.Validate(); !errors.As(err, &ke) || ke.Key != tc.key {
			t.Errorf("%q: %v, want an error on %s", tc.yaml, err, tc.key)
		}
	}
}
