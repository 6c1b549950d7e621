package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadString(t *testing.T, yaml string) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "easymail.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

// Every decoding error names the YAML path and the line, and unknown keys the closest known one.
func TestDecodeErrorsNamePathAndLine(t *testing.T) {
	cases := []struct {
		yaml, key string
		line      int
		want      string
	}{
		{"smtp:\n  listen: [\"127.0.0.1:2525\"]\n  max_mesage_size: 10\n", "smtp.max_mesage_size", 3, "did you mean smtp.max_message_size?"},
		{"max_message_size: 10\n", "max_message_size", 1, "did you mean smtp.max_message_size?"},
		{"smtp:\n  max_recipients: lots\n", "smtp.max_recipients", 2, `"lots" is not a whole number`},
		{"delivery:\n  retry: [1m, soon]\n", "delivery.retry[1]", 2, "is not a duration"},
		{"delivery:\n  max_queue_lifetime: 5 days\n", "delivery.max_queue_lifetime", 2, "d for days"},
		{"smtp:\n  max_message_size: 50 parsecs\n", "smtp.max_message_size", 2, "unknown size unit"},
		{"smtp: [1, 2]\n", "smtp", 1, "must be a mapping"},
		{"dkim:\n  sign: maybe\n", "dkim.sign", 2, "not a boolean"},
		{"pools:\n  - name: a\n    ips:\n      - {address: 127.0.0.1, wieght: 2}\n", "pools[0].ips[0].wieght", 4, "did you mean pools[0].ips[0].weight?"},
		{"log:\n  level: info\n  level: debug\n", "log.level", 3, "set twice"},
		{"zzzz: 1\n", "zzzz", 1, "the keys here are"},
		{"rbl:\n  zones: [{zone: a.example, refuse: []}]\n", "rbl.zones[0]", 2, "unknown key"},
		{"smtp:\n listen: [\n", "(syntax)", 2, "not valid YAML"},
		// A validation error found after decoding carries the line of its key too.
		{"hostname: relay.example.net\ndelivery:\n  port: 70000\n", "delivery.port", 3, "1-65535"},
		{"smtp:\n  listen: [\"127.0.0.1:25x\"]\n", "smtp.listen[0]", 2, "port must be a number"},
		{"api:\n  listen: \"bad host!:80\"\n", "api.listen", 2, "neither an IP address nor a host name"},
	}
	for _, tc := range cases {
		_, err := loadString(t, tc.yaml)
		var ke *KeyError
		if !errors.As(err, &ke) {
			t.Errorf("%q: error %v, want a *KeyError", tc.yaml, err)
			continue
		}
		if ke.Key != tc.key || ke.Line != tc.line || !strings.Contains(ke.Error(), tc.want) || ke.File == "" {
			t.Errorf("%q: got key %q line %d file %q: %v; want key %q line %d containing %q", tc.yaml, ke.Key, ke.Line, ke.File, err, tc.key, tc.line, tc.want)
		}
		if !strings.Contains(err.Error(), "easymail.yaml:") {
			t.Errorf("%q: %v does not name the file and line", tc.yaml, err)
		}
	}
}

func TestUnitsAccepted(t *testing.T) {
	c, err := loadString(t, `smtp:
  max_message_size: 50MB
  max_header_size: 100KiB
  listen: 127.0.0.1:2600
delivery:
  max_queue_lifetime: 5d
  retry: [90s, 1h30m, 1w]
scan:
  content_limits: {max_decompressed_bytes: 1GiB}
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.MaxMessageSize != 50_000_000 || c.SMTP.MaxHeaderSize != 102400 || c.Delivery.MaxQueueLifetime != 120*time.Hour ||
		c.Delivery.Retry[1] != 90*time.Minute || c.Delivery.Retry[2] != 168*time.Hour || c.Scan.ContentLimits.MaxDecompressedBytes != 1<<30 ||
		len(c.SMTP.Listen) != 1 || c.SMTP.Listen[0] != "127.0.0.1:2600" {
		t.Fatalf("units: %+v %+v", c.SMTP, c.Delivery)
	}
	for _, s := range []string{"5", "d", "1x", "--1s", ""} {
		if _, err := ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) accepted", s)
		}
	}
	for d, want := range map[time.Duration]string{0: "0s", 120 * time.Hour: "5d", time.Hour: "1h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", 200 * time.Millisecond: "200ms"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(FormatDuration(d)); err != nil || back != d {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", d, back, err)
		}
	}
}

// The embedded sample loads as it is, and the effective configuration printed from it loads back to the
// same configuration.
func TestSampleAndEffectiveRoundTrip(t *testing.T) {
	c, err := loadString(t, string(Sample))
	if err != nil {
		t.Fatalf("the sample does not load: %v", err)
	}
	if c.DataDir != "/var/lib/easymail" || c.SMTP.Listen[0] != ":25" {
		t.Fatalf("sample: data_dir %q listen %v", c.DataDir, c.SMTP.Listen)
	}
	c.Database = "postgres://easymail:s3cret@db.example/easymail"
	c.Metrics.Token = "scrape-t0ken-0123456789"
	c.Delivery.TLSPolicies = map[string]string{"bank.example": "verify"}
	out, err := c.Effective()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "postgres://easymail:xxxxx@db.example") {
		t.Fatalf("the database password is not masked:\n%s", out)
	}
	if strings.Contains(string(out), "scrape-t0ken") {
		t.Fatalf("metrics.token is not masked:\n%s", out)
	}
	// Keys of inline structs (delivery's TLS keys) and of maps (incidents.sla_types) are shown too.
	for _, want := range []string{"max_queue_lifetime: 5d", "max_message_size: 50MiB", "sign: true", "node_id: ",
		"tls_policy: may", "bank.example: verify", "standard:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("effective configuration lacks %q:\n%s", want, out)
		}
	}
	c.Metrics.Token = ""
	out, err = c.Effective()
	if err != nil {
		t.Fatal(err)
	}
	back := Default()
	if err := Parse(out, &back); err != nil {
		t.Fatalf("the effective configuration does not parse: %v\n%s", err, out)
	}
	back.fill()
	again, err := back.Effective()
	if err != nil || string(again) != string(out) {
		t.Fatalf("round trip differs (%v):\n%s\n---\n%s", err, out, again)
	}
}

func TestCheckPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("x"), 0o600)
	c := Default()
	c.DataDir = filepath.Join(dir, "new", "data")
	if err := c.CheckPaths(); err != nil {
		t.Fatalf("a data_dir to be made: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Fatal("CheckPaths created the data directory")
	}
	for _, bad := range []string{file, filepath.Join(file, "data")} {
		c.DataDir = bad
		var ke *KeyError
		if err := c.CheckPaths(); !errors.As(err, &ke) || ke.Key != "data_dir" {
			t.Errorf("data_dir %s: %v", bad, err)
		}
	}
	c.DataDir = dir
	c.SMTP.TLSCert, c.SMTP.TLSKey = filepath.Join(dir, "missing.pem"), file
	var ke *KeyError
	if err := c.CheckPaths(); !errors.As(err, &ke) || ke.Key != "smtp.tls_cert" {
		t.Errorf("missing certificate: %v", err)
	}
}

// A relative data_dir is relative to the file's directory; overrides win over the file.
func TestDataDirRelativeToFileAndOverrides(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "easymail.yaml")
	os.WriteFile(path, []byte("data_dir: spool-here\napi:\n  listen: 127.0.0.1:8025\n"), 0o600)
	c, err := Load(path)
	if err != nil || c.DataDir != filepath.Join(dir, "spool-here") {
		t.Fatalf("data_dir %q, %v", c.DataDir, err)
	}
	env := OverridesFromEnv(func(k string) string {
		return map[string]string{"EASYMAIL_API_LISTEN": "127.0.0.1:9000", "EASYMAIL_SMTP_LISTEN": "127.0.0.1:2600, 127.0.0.2:2600",
			"EASYMAIL_HOSTNAME": "env.example.net"}[k]
	})
	c, err = LoadWith(path, env.Over(Overrides{Hostname: "flag.example.net"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Listen != "127.0.0.1:9000" || len(c.SMTP.Listen) != 2 || c.SMTP.Listen[1] != "127.0.0.2:2600" ||
		c.Hostname != "flag.example.net" || c.API.PublicURL != "http://127.0.0.1:9000" || c.Pools[0].IPs[0].HELO != "flag.example.net" {
		t.Fatalf("overrides: %+v", c)
	}
}
