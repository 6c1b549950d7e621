package cli

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"easymail/internal/config"
	"easymail/internal/testkit"
)

// --help on every command and every group prints the usage on standard output and exits 0.
func TestHelpOnEveryCommandExitsZero(t *testing.T) {
	groups := map[string]bool{}
	for _, c := range commands() {
		words := strings.Fields(c.name)
		for n := 1; n < len(words); n++ {
			groups[strings.Join(words[:n], " ")] = true
		}
		for _, h := range []string{"--help", "-h"} {
			code, out, errs := runRaw(append(words, h)...)
			if code != 0 || !strings.HasPrefix(out, "usage: easymail "+c.name) || errs != "" {
				t.Errorf("easymail %s %s: exit %d, stdout %q, stderr %q", c.name, h, code, firstLine(out), errs)
			}
		}
		if code, out, _ := runRaw("help", c.name); code != 0 || !strings.HasPrefix(out, "usage: easymail "+c.name) {
			t.Errorf("easymail help %s: exit %d, %q", c.name, code, firstLine(out))
		}
	}
	for g := range groups {
		code, out, errs := runRaw(append(strings.Fields(g), "--help")...)
		if code != 0 || !strings.HasPrefix(out, "usage: easymail "+g+" SUBCOMMAND") || errs != "" {
			t.Errorf("easymail %s --help: exit %d, stdout %q, stderr %q", g, code, firstLine(out), errs)
		}
	}
	// The command list is aligned: every summary starts in the same column.
	_, out, _ := runRaw("help")
	col := -1
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "  --") || strings.HasPrefix(l, "   ") {
			continue
		}
		i := strings.Index(l[2:], "  ")
		for i >= 0 && i+4 < len(l) && l[2+i+2] == ' ' {
			i++
		}
		if col < 0 {
			col = i
		} else if i != col {
			t.Errorf("misaligned usage line %q (summary at %d, not %d)", l, i, col)
		}
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func TestUnknownCommandSaysDidYouMean(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"custmer", "list"}, `unknown command "custmer list" (did you mean "easymail customer list"?)`},
		{[]string{"queue", "lst"}, `unknown subcommand "lst" (did you mean "easymail queue list"?)`},
		{[]string{"help", "queue", "lst"}, `did you mean "easymail queue list"?`},
		{[]string{"conifg", "check"}, `did you mean "easymail config check"?`},
	} {
		code, _, errs := runRaw(tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("easymail %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, errs, tc.want)
		}
	}
	if code, _, errs := runRaw("customer", "show"); code != 2 || !strings.Contains(errs, "needs 1 argument") {
		t.Errorf("missing argument: exit %d, %q", code, errs)
	}
	if code, _, errs := runRaw("customer", "list", "--bogus"); code != 2 || !strings.Contains(errs, "-bogus") {
		t.Errorf("unknown flag: exit %d, %q", code, errs)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "data_dir: data\ndatabase: \"\"\nsmtp:\n  max_message_size: 20MB\ndelivery:\n  max_queue_lifetime: 3d\n")
	code, out, errs := runRaw("config", "check", "--config", good)
	if code != 0 || errs != "" {
		t.Fatalf("config check: exit %d, %s", code, errs)
	}
	mustContain(t, out, "good.yaml: valid", "max_message_size: 20000000", "max_queue_lifetime: 3d", "data_dir: "+filepath.Join(dir, "data"),
		"max_recipients: 1000", "retry: [5m, 10m, 20m, 40m, 1h, 2h, 4h]")
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Fatal("config check created the data directory")
	}
	// What it prints is itself a valid configuration.
	printed := write("printed.yaml", out)
	if code, _, errs := runRaw("config", "check", "--config", printed); code != 0 {
		t.Fatalf("the printed configuration does not check: %s", errs)
	}

	for _, tc := range []struct{ body, want string }{
		{"smtp:\n  max_mesage_size: 10\n", "bad.yaml:2: smtp.max_mesage_size: unknown key; did you mean smtp.max_message_size?"},
		{"smtp:\n  max_recipients: lots\n", `bad.yaml:2: smtp.max_recipients: "lots" is not a whole number`},
		{"delivery:\n  max_queue_lifetime: 5 days\n", "bad.yaml:2: delivery.max_queue_lifetime: \"5 days\" is not a duration: write a number and a unit (ms, s, m, h, d for days, w for weeks)"},
		{"api:\n  listen: 8025\n", `bad.yaml:2: api.listen: "8025" is not host:port`},
		{"data_dir: good.yaml\n", "data_dir: " + good + " is not a directory"},
	} {
		bad := write("bad.yaml", tc.body)
		code, out, errs := runRaw("config", "check", "--config", bad)
		if code != 1 || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 1 and %q", tc.body, code, out, errs, tc.want)
		}
	}
	if code, _, errs := runRaw("config", "check", "--config", filepath.Join(dir, "missing.yaml")); code != 1 || !strings.Contains(errs, "missing.yaml") {
		t.Errorf("missing file: exit %d, %q", code, errs)
	}
	// A flag's bad value is named as such, not as the file's line.
	if code, _, errs := runRaw("config", "check", "--config", good, "--smtp-listen", "127.0.0.1:99999"); code != 1 ||
		!strings.Contains(errs, "smtp.listen[0] (set by a flag or an EASYMAIL_ variable)") {
		t.Errorf("bad flag: exit %d, %q", code, errs)
	}
}

func TestConfigDefaultIsAccepted(t *testing.T) {
	code, out, _ := runRaw("config", "default")
	if code != 0 || out != string(config.Sample) || !strings.HasPrefix(out, "# /etc/easymail/easymail.yaml") {
		t.Fatalf("config default: exit %d, %q", code, firstLine(out))
	}
	path := filepath.Join(t.TempDir(), "easymail.yaml")
	os.WriteFile(path, []byte(out), 0o600)
	if code, _, errs := runRaw("config", "check", "--config", path); code != 0 {
		t.Fatalf("config check rejects the sample: %s", errs)
	}
}

func TestCompletionAndMan(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{""}, []string{"customer", "queue", "config", "completion", "help"}},
		{[]string{"cu"}, []string{"customer"}},
		{[]string{"customer", "domain", ""}, []string{"add", "dkim", "readiness"}},
		{[]string{"queue", "list", "--c"}, []string{"--customer", "--config"}},
		{[]string{"completion", ""}, []string{"bash", "fish", "zsh"}},
		{[]string{"serve", "--"}, []string{"--smtp-listen", "--api-listen", "--data-dir", "--hostname"}},
	} {
		code, out, _ := runRaw(append([]string{"__complete"}, tc.args...)...)
		if code != 0 {
			t.Fatalf("__complete %q: exit %d", tc.args, code)
		}
		got := strings.Fields(out)
		for _, w := range tc.want {
			if !contains(got, w) {
				t.Errorf("__complete %q = %v, lacks %q", tc.args, got, w)
			}
		}
	}
	if _, out, _ := runRaw("__complete", "cu"); strings.TrimSpace(out) != "customer" {
		t.Errorf("__complete cu = %q", out)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if code, out, _ := runRaw("completion", sh); code != 0 || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d", sh, code)
		}
	}
	if code, _, errs := runRaw("completion", "tcsh"); code != 2 || !strings.Contains(errs, "bash, zsh or fish") {
		t.Errorf("completion tcsh: exit %d, %q", code, errs)
	}
	var b strings.Builder
	writeMan(&b, func() time.Time { return time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC) })
	man := b.String()
	mustContain(t, man, `.TH EASYMAIL 1 "2026-01-02"`, ".SH EXIT STATUS", `.B easymail queue list`, `\fB\-\-customer\fR`)
	for _, c := range commands() {
		if !strings.Contains(man, ".B easymail "+roff(c.name)+"\n") {
			t.Errorf("the man page lacks %s", c.name)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// A client command that cannot reach the API says where it looked and how to point it elsewhere.
func TestConnectionErrorNamesTheAddress(t *testing.T) {
	// A port held bound but not listening: connections to it are refused, and no other test can take it.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testkit.ReserveMXPort(t, "127.0.0.1").Port()))
	code, _, errs := runRaw("customer", "list", "--api", "http://"+addr, "--token", "x")
	if code != 1 || !strings.Contains(errs, "is `easymail serve` running at "+addr+"? (set --api or EASYMAIL_API") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

// TestConfigCheckChanged: config check --changed (postconf -n) prints the keys set to other values than the
// defaults, one "key = value" line each, secrets masked, and nothing of what is left at its default.
func TestConfigCheckChanged(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "easymail.yaml")
	body := "data_dir: data\nsmtp:\n  max_message_size: 20MB\n  max_recipients: 1000\ndelivery:\n  retry: [1m, 5m]\n" +
		"metrics:\n  token: s3cr3t-t0ken-value-long-enough-0123456789\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runRaw("config", "check", "--config", p, "--changed")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"data_dir = " + filepath.Join(dir, "data"), "delivery.retry = [1m, 5m]", "metrics.token = '" + config.Mask + "'",
		"smtp.max_message_size = 20000000"}
	if len(lines) != len(want)+1 || !strings.Contains(lines[0], "differ from the built-in defaults") ||
		strings.Join(lines[1:], "\n") != strings.Join(want, "\n") {
		t.Fatalf("config check --changed:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	if strings.Contains(out, "s3cr3t") || strings.Contains(out, "max_recipients") {
		t.Fatalf("a secret or a default value is shown:\n%s", out)
	}
}
