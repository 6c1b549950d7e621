package config

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestIncidentsDefaultsAndSLATypes(t *testing.T) {
	c := Default()
	c.Hostname = "relay.example.net"
	yaml := "incidents:\n  default_sla: gold\n  sla_types:\n    gold:\n      days: [mon, tue, wed, thu, fri, sat, sun]\n" +
		"      hours: \"00:00-24:00\"\n      holidays: none\n      response: {phone: 5m}\n      resolution: {P1: 4h}\n"
	if err := Parse([]byte(yaml), &c); err != nil {
		t.Fatal(err)
	}
	c.fill()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.IncidentAddress() != "incidents@relay.example.net" {
		t.Fatalf("address %q", c.IncidentAddress())
	}
	std, gold := c.Incidents.SLATypes["standard"], c.Incidents.SLATypes["gold"]
	if std.Response["email"] != 30*time.Minute || std.Hours != "07:00-19:00" || std.TimeZone != "Europe/Luxembourg" {
		t.Fatalf("standard kept: %+v", std)
	}
	// Filled from the default where left empty.
	if gold.Response["phone"] != 5*time.Minute || gold.Response["email"] != 30*time.Minute || gold.TimeZone != "Europe/Luxembourg" ||
		gold.Resolution["P1"] != 4*time.Hour {
		t.Fatalf("gold: %+v", gold)
	}
	days, open, closeAt, err := gold.Window()
	if err != nil || len(days) != 7 || open != 0 || closeAt != 24*time.Hour {
		t.Fatalf("gold window %v %s %s %v", days, open, closeAt, err)
	}
	days, open, closeAt, _ = std.Window()
	if !slices.Equal(days, []time.Weekday{1, 2, 3, 4, 5}) || open != 7*time.Hour || closeAt != 19*time.Hour {
		t.Fatalf("standard window %v %s %s", days, open, closeAt)
	}
}

func TestIncidentsValidation(t *testing.T) {
	for _, tc := range []struct{ yaml, key string }{
		{"incidents:\n  address: nobody\n", "incidents.address"},
		{"incidents:\n  default_sla: platinum\n", "incidents.default_sla"},
		{"incidents:\n  sla_types:\n    x:\n      timezone: Mars/Olympus\n", "incidents.sla_types.x.timezone"},
		{"incidents:\n  sla_types:\n    x:\n      days: [monday]\n", "incidents.sla_types.x.days"},
		{"incidents:\n  sla_types:\n    x:\n      hours: \"19:00-07:00\"\n", "incidents.sla_types.x.hours"},
		{"incidents:\n  sla_types:\n    x:\n      holidays: france\n", "incidents.sla_types.x.holidays"},
		{"incidents:\n  sla_types:\n    x:\n      extra_holidays: [24.12.2026]\n", "incidents.sla_types.x.extra_holidays[0]"},
		{"incidents:\n  sla_types:\n    x:\n      response: {fax: 1h}\n", "incidents.sla_types.x.response.fax"},
		{"incidents:\n  sla_types:\n    x:\n      response: {phone: 0s}\n", "incidents.sla_types.x.response.phone"},
		{"incidents:\n  sla_types:\n    x:\n      resolution: {P5: 1h}\n", "incidents.sla_types.x.resolution.P5"},
		{"incidents:\n  monitors:\n    interval: 0s\n", "incidents.monitors.interval"},
		{"incidents:\n  monitors:\n    failure_rate: 1.5\n", "incidents.monitors.failure_rate"},
		{"incidents:\n  monitors:\n    cert_expiry: -1h\n", "incidents.monitors.cert_expiry"},
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
