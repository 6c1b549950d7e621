package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Listen[0] != "127.0.0.1:2525" || c.API.Listen != "127.0.0.1:8025" || c.Delivery.Port != 25 ||
		c.Delivery.MaxQueueLifetime != 120*time.Hour || c.Delivery.DelayNotice != 4*time.Hour || c.DataDir != "./data" {
		t.Fatalf("defaults %+v", c)
	}
	if c.NodeID != c.Hostname || c.API.PublicURL != "http://127.0.0.1:8025" {
		t.Fatalf("derived values: node_id %q public_url %q", c.NodeID, c.API.PublicURL)
	}
}

func TestLoadContractExample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`hostname: relay.example.net
data_dir: ./data
database: ""
smtp:
  listen: ["127.0.0.1:2525"]
  max_message_size: 52428800
api:
  listen: "127.0.0.1:8025"
dns:
  servers: []
delivery:
  port: 25
  retry: [1m, 90s]
pools:
  - name: default
    ips:
      - { address: 127.0.0.1, helo: relay.example.net }
rbl:
  zones: []
  interval: 10m
scan:
  clamd: ""
  rspamd: ""
`), 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "relay.example.net" || len(c.Delivery.Retry) != 2 || c.Delivery.Retry[1] != 90*time.Second {
		t.Fatalf("loaded %+v", c)
	}
}

func TestBadConfigNamesTheKey(t *testing.T) {
	cases := []struct{ yaml, key string }{
		{"smtp: {listen: [nocolon]}", "smtp.listen[0]"},
		{"smtp: {max_message_size: 10}", "smtp.max_message_size"},
		{"smtp: {max_header_size: 100}", "smtp.max_header_size"},
		{"smtp: {max_header_fields: 0}", "smtp.max_header_fields"},
		{"delivery: {port: 70000}", "delivery.port"},
		{"delivery: {retry: [1m, -1s]}", "delivery.retry[1]"},
		{"pools: [{name: a, ips: [{address: not-an-ip}]}]", "pools[0].ips[0].address"},
		{"pools: [{name: a, ips: [{address: 127.0.0.1}]}, {name: a, ips: [{address: 127.0.0.2}]}]", "pools[1].name"},
		{"pools: []", "pools"},
		{"dns: {servers: [8.8.8.8]}", "dns.servers[0]"},
		{"database: mysql://x", "database"},
		{"log: {level: loud}", "log.level"},
		{"smtp: {tls_cert: a.pem}", "smtp.tls_cert"},
		{"api: {read_timeout: 0s}", "api.read_timeout"},
		{"api: {idle_timeout: -1s}", "api.idle_timeout"},
		{"api: {max_connections: -1}", "api.max_connections"},
		{"metrics: {listen: nocolon}", "metrics.listen"},
		{`metrics: {listen: "127.0.0.1:8025"}`, "metrics.listen"},
		{"metrics: {token: short}", "metrics.token"},
		{`dkim: {key_file: ""}`, "dkim.key_file"},
	}
	for _, tc := range cases {
		path := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(path, []byte(tc.yaml), 0o600)
		_, err := Load(path)
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != tc.key {
			t.Errorf("%s: error %v, want one naming %s", tc.yaml, err, tc.key)
		}
	}
}

func TestUnknownKeyIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("smtp:\n  listn: [\"127.0.0.1:25\"]\n"), 0o600)
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "listn") {
		t.Fatalf("unknown key accepted: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
}
