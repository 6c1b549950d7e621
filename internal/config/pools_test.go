package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, yaml string) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

func TestPoolsRBLAndIPPoolKeys(t *testing.T) {
	c, err := load(t, `operator_email: noc@ops.example
pools:
  - name: main
    ips:
      - { address: 192.0.2.1, helo: out1.relay.example, weight: 3 }
      - { address: 192.0.2.2, helo: out2.relay.example, warmup: [50, 100, 200] }
  - name: backup
    ips: [{ address: "2001:db8::1" }]
rbl:
  zones:
    - zen.example
    - { zone: strict.example, refused: ["127.0.0.1", "127.255.255.0/24"] }
    - { zone: open.example, refused: [] }
  interval: 200ms
  hold: 30m
ippool:
  block_patterns: ["blocked", "TSS0\\d"]
  block_threshold: 5
  block_window: 2h
  pause_for: 8h
  warmup: [10, 20]
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.OperatorEmail != "noc@ops.example" || c.Pools[0].IPs[0].Weight != 3 || c.Pools[0].IPs[1].Weight != 1 ||
		len(c.Pools[0].IPs[1].Warmup) != 3 || c.Pools[1].IPs[0].HELO != c.Hostname {
		t.Fatalf("pools %+v", c.Pools)
	}
	z := c.RBL.Zones
	if len(z) != 3 || z[0].Zone != "zen.example" || z[0].Refused != nil || strings.Join(z[0].RefusedAnswers(), ",") != "127.255.255.0/24" ||
		z[1].Zone != "strict.example" || len(z[1].RefusedAnswers()) != 2 || z[2].Refused == nil || len(z[2].RefusedAnswers()) != 0 {
		t.Fatalf("zones %+v", z)
	}
	if c.RBL.Interval != 200*time.Millisecond || c.RBL.Hold != 30*time.Minute {
		t.Fatalf("rbl %+v", c.RBL)
	}
	if p := c.IPPool; len(p.BlockPatterns) != 2 || p.BlockThreshold != 5 || p.BlockWindow != 2*time.Hour || p.PauseFor != 8*time.Hour ||
		len(p.Warmup) != 2 {
		t.Fatalf("ippool %+v", p)
	}

	d := Default()
	if d.RBL.Hold != time.Hour || d.IPPool.BlockThreshold != 3 || d.IPPool.BlockWindow != time.Hour || d.IPPool.PauseFor != 4*time.Hour ||
		len(d.IPPool.Warmup) == 0 || d.OperatorEmail != "" {
		t.Fatalf("defaults %+v %+v", d.RBL, d.IPPool)
	}
	d.IPPool.BlockPatterns[0] = "changed"
	if Default().IPPool.BlockPatterns[0] == "changed" {
		t.Fatal("Default shares its block patterns")
	}
}

func TestPoolsRBLAndIPPoolErrorsNameTheKey(t *testing.T) {
	cases := []struct{ yaml, key string }{
		{"pools: [{name: a, ips: [{address: 192.0.2.1, weight: 2000}]}]", "pools[0].ips[0].weight"},
		{"pools: [{name: a, ips: [{address: 192.0.2.1, weight: -1}]}]", "pools[0].ips[0].weight"},
		{"pools: [{name: a, ips: [{address: 192.0.2.1, helo: 'bad name'}]}]", "pools[0].ips[0].helo"},
		{"pools: [{name: a, ips: [{address: 192.0.2.1, warmup: [10, 0]}]}]", "pools[0].ips[0].warmup[1]"},
		{"pools: [{name: a, ips: [{address: 192.0.2.1}]}, {name: b, ips: [{address: 192.0.2.1}]}]", "pools[1].ips[0].address"},
		{"operator_email: not-an-address", "operator_email"},
		{"operator_email: 'NOC <noc@ops.example>'", "operator_email"},
		{"rbl: {zones: ['bad zone']}", "rbl.zones[0].zone"},
		{"rbl: {zones: [localhost]}", "rbl.zones[0].zone"},
		{"rbl: {zones: [a.example, A.example.]}", "rbl.zones[1].zone"},
		{"rbl: {zones: [{zone: a.example, refused: [nope]}]}", "rbl.zones[0].refused[0]"},
		{"rbl: {hold: -1s}", "rbl.hold"},
		{"rbl: {interval: 0s}", "rbl.interval"},
		{"ippool: {block_patterns: ['(']}", "ippool.block_patterns[0]"},
		{"ippool: {block_patterns: ['']}", "ippool.block_patterns[0]"},
		{"ippool: {block_threshold: 0}", "ippool.block_threshold"},
		{"ippool: {block_window: 0s}", "ippool.block_window"},
		{"ippool: {pause_for: -1h}", "ippool.pause_for"},
		{"ippool: {warmup: [5, 0]}", "ippool.warmup[1]"},
	}
	for _, tc := range cases {
		_, err := load(t, tc.yaml)
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != tc.key {
			t.Errorf("%s: error %v, want one naming %s", tc.yaml, err, tc.key)
		}
	}
	for _, y := range []string{"rbl: {zones: [{zone: a.example, refsued: []}]}", "rbl: {zones: [[a]]}", "ippool: {blok_threshold: 2}"} {
		if _, err := load(t, y); err == nil {
			t.Errorf("%s: accepted", y)
		}
	}
}

func TestDefaultBlockPatterns(t *testing.T) {
	var res []*regexp.Regexp
	for _, p := range DefaultBlockPatterns {
		res = append(res, regexp.MustCompile("(?i)"+p))
	}
	match := func(s string) bool {
		for _, re := range res {
			if re.MatchString(s) {
				return true
			}
		}
		return false
	}
	for _, s := range []string{
		"554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
		"554 Service unavailable; Client host [192.0.2.1] blocked using Barracuda Reputation",
		"550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. (S3140)",
		"550 5.7.606 Access denied, banned sending IP [192.0.2.1]",
		"421-4.7.0 Our system has detected an unusual rate of unsolicited mail originating from your IP address",
		"550-5.7.1 this message is likely suspicious due to the very low reputation of the sending IP address",
		"421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints",
		"553 Your IP is blacklisted",
		"554 rejected: listed in a DNSBL",
	} {
		if !match(s) {
			t.Errorf("not recognised as a block: %q", s)
		}
	}
	for _, s := range []string{
		"550 5.1.1 The email account that you tried to reach does not exist",
		"452 4.2.2 The email account that you tried to reach is over quota",
		"421 4.3.2 Service shutting down",
		"451 4.7.1 Greylisted, please try again later",
	} {
		if match(s) {
			t.Errorf("recognised as a block: %q", s)
		}
	}
}

// TestDerivedFromFileHostname: the values derived from the host name follow the file's hostname, not the
// machine's, when the file has no pools section (the default pool's HELO once stayed the machine's name).
func TestDerivedFromFileHostname(t *testing.T) {
	c, err := load(t, "hostname: relay.example.net\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools) != 1 || c.Pools[0].Name != "default" || len(c.Pools[0].IPs) != 1 {
		t.Fatalf("default pools %+v", c.Pools)
	}
	if a := c.Pools[0].IPs[0]; a.Address != "127.0.0.1" || a.HELO != "relay.example.net" || a.Weight != 1 {
		t.Fatalf("default pool IP %+v, want HELO relay.example.net", a)
	}
	if c.NodeID != "relay.example.net" || c.NoticeFrom() != "postmaster@relay.example.net" ||
		c.SPFDomain() != "_spf.example.net" || c.Lifecycle.NoticeFrom != "postmaster@relay.example.net" {
		t.Fatalf("derived node_id %q, notice_from %q, spf_domain %q", c.NodeID, c.NoticeFrom(), c.SPFDomain())
	}
	// A pools section replaces the default pool; an IP without helo gets the file's hostname too.
	c, err = load(t, "hostname: relay.example.net\npools:\n  - name: main\n    ips: [{ address: 192.0.2.1 }]\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools) != 1 || c.Pools[0].Name != "main" || c.Pools[0].IPs[0].HELO != "relay.example.net" {
		t.Fatalf("pools %+v", c.Pools)
	}
	// Without a file the machine's host name is used throughout.
	d := Default()
	if d.Pools[0].IPs[0].HELO != d.Hostname || d.Hostname == "" {
		t.Fatalf("Default: hostname %q, HELO %q", d.Hostname, d.Pools[0].IPs[0].HELO)
	}
	if c, err := Load(""); err != nil || c.Pools[0].IPs[0].HELO != c.Hostname || c.NodeID != c.Hostname {
		t.Fatalf("Load(\"\"): %v %+v node %q", err, c.Pools, c.NodeID)
	}
}
