package config

import (
	"errors"
	"testing"
	"time"
)

func TestPortalSection(t *testing.T) {
	c := Default()
	c.Hostname = "relay.example.net"
	if err := Parse([]byte("portal:\n  listen: 127.0.0.1:8443\n  secure_cookies: false\n  idle_timeout: 30m\n"), &c); err != nil {
		t.Fatal(err)
	}
	c.fill()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Portal.Listen != "127.0.0.1:8443" || c.Portal.SecureCookies || c.Portal.IdleTimeout != 30*time.Minute ||
		c.Portal.SessionLifetime != 12*time.Hour || c.Portal.LoginAttempts != 5 {
		t.Fatalf("portal %+v", c.Portal)
	}
	for _, bad := range []struct{ yaml, key string }{
		{"portal:\n  listen: nope\n", "portal.listen"},
		{"portal:\n  listen: 127.0.0.1:8025\n", "portal.listen"},
		{"portal:\n  idle_timeout: 13h\n", "portal.idle_timeout"},
		{"portal:\n  session_lifetime: 1s\n", "portal.session_lifetime"},
		{"portal:\n  login_attempts: 0\n", "portal.login_attempts"},
		{"portal:\n  ip_login_attempts: 0\n", "portal.ip_login_attempts"},
		{"portal:\n  login_window: 1s\n", "portal.login_window"},
	} {
		c := Default()
		c.Hostname = "relay.example.net"
		if err := Parse([]byte(bad.yaml), &c); err != nil {
			t.Fatal(err)
		}
		c.fill()
		var ke *KeyError
		if err := c.Validate(); !errors.As(err, &ke) || ke.Key != bad.key {
			t.Errorf("%q: %v, want an error on %s", bad.yaml, err, bad.key)
		}
	}
}
