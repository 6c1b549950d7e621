package node_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/cli"
	"easymail/internal/config"
)

// TestFileHostnameIsTheDefaultHELO: a configuration file that sets hostname and has no pools section sends
// mail with EHLO <hostname> from the default pool, and the IP's supervision checks that name (the default
// pool's HELO once stayed the machine's name, filled in before the file was read).
func TestFileHostnameIsTheDefaultHELO(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		file := fmt.Sprintf(`hostname: relay.example.net
data_dir: %s
smtp:
  listen: [%q]
api:
  listen: %q
dns:
  servers: [%q]
  timeout: 2s
delivery:
  port: %d
  retry: [1s]
`, c.DataDir, c.SMTP.Listen[0], c.API.Listen, c.DNS.Servers[0], c.Delivery.Port)
		path := filepath.Join(t.TempDir(), "easymail.yaml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		loaded, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		*c = loaded
	})
	e.dns.AddPTR("127.0.0.1", "relay.example.net")
	e.dns.AddA("relay.example.net", "127.0.0.1")
	mx := e.mx(t, "dest.test", 11)
	if _, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "helo")); err != nil {
		t.Fatal(err)
	}
	if got := mx.WaitMessages(t, 1, 15*time.Second)[0]; got.HELO != "relay.example.net" || got.RemoteIP != "127.0.0.1" {
		t.Fatalf("the fake MX saw EHLO %q from %s, want relay.example.net from 127.0.0.1", got.HELO, got.RemoteIP)
	}

	if ip := ips(t, e.n)["127.0.0.1"]; ip.Pool != "default" || ip.HELO != "relay.example.net" {
		t.Fatalf("GET /ips: %+v", ip)
	}
	var ip api.IP
	e.n.API(t, "POST", "/ips/127.0.0.1/check", nil, 200, &ip)
	if ip.HELO != "relay.example.net" || ip.FCrDNS.Status != api.FCrDNSOK {
		t.Fatalf("ip check: HELO %q, FCrDNS %+v", ip.HELO, ip.FCrDNS)
	}
	var out, errs bytes.Buffer
	code := cli.Main(context.Background(), []string{"--api", e.n.APIURL, "--token", e.n.Token, "ip", "check", "127.0.0.1"}, &out, &errs)
	if code != 0 || !strings.Contains(out.String(), "relay.example.net") || !strings.Contains(out.String(), "fcrdns") ||
		strings.Contains(out.String(), api.FCrDNSMismatch) {
		t.Fatalf("easymail ip check: exit %d\n%s%s", code, out.String(), errs.String())
	}
}
