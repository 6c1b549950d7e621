package config

import (
	"errors"
	"testing"
	"time"
)

func TestAnalysisSections(t *testing.T) {
	c := Default()
	if c.Suppression.TTL != 720*time.Hour || c.Retention.Log != 4380*time.Hour || c.Retention.Interval != 24*time.Hour ||
		c.Retention.Batch != 1000 || c.Retention.Pause != 200*time.Millisecond {
		t.Fatalf("defaults %+v %+v", c.Suppression, c.Retention)
	}
	if err := Parse([]byte("suppression:\n  ttl: 48h\nretention:\n  log: 2160h\n  interval: 12h\n  batch: 500\n  pause: 0s\n"), &c); err != nil {
		t.Fatal(err)
	}
	c.fill()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Suppression.TTL != 48*time.Hour || c.Retention.Log != 2160*time.Hour || c.Retention.Batch != 500 {
		t.Fatalf("parsed %+v %+v", c.Suppression, c.Retention)
	}
	for _, bad := range []struct {
		change func(*Config)
		key    string
	}{
		{func(c *Config) { c.Suppression.TTL = -time.Hour }, "suppression.ttl"},
		{func(c *Config) { c.Retention.Log = -time.Hour }, "retention.log"},
		{func(c *Config) { c.Retention.Log = time.Minute }, "retention.log"},
		{func(c *Config) { c.Retention.Interval = 0 }, "retention.interval"},
		{func(c *Config) { c.Retention.Batch = 0 }, "retention.batch"},
		{func(c *Config) { c.Retention.Batch = 1_000_000 }, "retention.batch"},
		{func(c *Config) { c.Retention.Pause = -time.Second }, "retention.pause"},
	} {
		c := Default()
		c.fill()
		bad.change(&c)
		var ke *KeyError
		if err := c.Validate(); !errors.As(err, &ke) || ke.Key != bad.key {
			t.Errorf("want an error on %s, got %v", bad.key, err)
		}
	}
	// 0 turns automatic suppression off and keeps the log forever: both valid.
	c = Default()
	c.fill()
	c.Suppression.TTL, c.Retention.Log = 0, 0
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
