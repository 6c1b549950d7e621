package config

import (
	"errors"
	"testing"
)

// FuzzConfig feeds arbitrary YAML to Parse and Validate, as Load does with a configuration file: neither
// may panic, and every validation error must be a *KeyError naming a key.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"hostname: relay.example.net\ndata_dir: ./data\nsmtp:\n  listen: [\"127.0.0.1:2525\"]\n  max_message_size: 52428800\n",
		"smtp: {max_connections: 1000, max_connections_per_ip: 50, connection_rate_per_ip: \"100/1m burst 20\", pregreet_delay: 2s}\n",
		"smtp: {session_timeout: 30m, data_timeout: 10m, max_errors: 20}\n",
		"limits: {messages_per_minute: 100, messages_per_hour: 3000, recipients_per_minute: 1000, burst: 200}\n",
		"compromise: {enabled: true, window: 10m, factor: 10, floor: 500, baseline: 168h, refused_ratio: 0.5, refused_min: 50}\n",
		"pools:\n  - name: a\n    ips:\n      - {address: 192.0.2.1, helo: out.example.net, weight: 3, warmup: [50, 100]}\n",
		"rbl:\n  zones: [zen.example.org, {zone: bl.example.org, refused: [127.255.255.0/24]}]\n  interval: 10m\n",
		"delivery: {retry: [1m, 5m], max_queue_lifetime: 120h, port: 25}\n",
		"ippool: {block_patterns: ['(?i)blocked', '['], block_threshold: 3}\n",
		"smtp: {connection_rate_per_ip: \"x/y\"}\n",
		"a: &a [*a, *a]\n",
		"hostname: [1, 2]\n",
		"dkim: {rsa_bits: 2048, rotate_every: 1h, check_interval: 2h}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		if err := Parse(data, &c); err != nil {
			return
		}
		c.fill()
		err := c.Validate()
		var ke *KeyError
		if err != nil && (!errors.As(err, &ke) || ke.Key == "") {
			t.Fatalf("validation error without a key: %v", err)
		}
	})
}
