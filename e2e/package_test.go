package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"easymail/internal/testkit"
)

// unitSettings reads a systemd unit's Key=Value lines (the last of a key wins, as for systemd).
func unitSettings(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if ok {
			out[k] = v
		}
	}
	return out
}

// replaceLine replaces the line of s that starts with prefix, failing the test when there is none.
func replaceLine(t *testing.T, s, prefix, line string) string {
	t.Helper()
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = line
			return strings.Join(lines, "\n")
		}
	}
	t.Fatalf("the sample configuration has no line starting with %q", prefix)
	return ""
}

// `make deb` builds the package; its contents are checked, it is unpacked into a temporary root as dpkg
// would install it, the unit is verified, and the unit's own ExecStart command line is run from that root
// with a temporary configuration made from the packaged one, as systemd would: readiness and the watchdog
// over a fake NOTIFY_SOCKET, ExecReload's SIGHUP, then SIGTERM.
func TestDebianPackage(t *testing.T) {
	need(t, "dpkg-deb")
	need(t, "make")
	dist := t.TempDir()
	const version = "1.2.3~e2e"
	mk := exec.Command("make", "-C", "..", "deb", "DIST="+dist, "VERSION="+version, "ARCH="+runtime.GOARCH)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	deb := filepath.Join(dist, fmt.Sprintf("easymail_%s_%s.deb", version, runtime.GOARCH))
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("make deb did not write %s: %v", deb, err)
	}
	list, err := exec.Command("dpkg-deb", "-c", deb).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v\n%s", err, list)
	}
	for _, want := range []string{"./usr/bin/easymail", "./lib/systemd/system/easymail.service", "./etc/easymail/easymail.yaml",
		"./usr/share/man/man1/easymail.1.gz", "./usr/share/bash-completion/completions/easymail", "./var/lib/easymail/"} {
		if !strings.Contains(string(list), want+"\n") {
			t.Errorf("the package lacks %s:\n%s", want, list)
		}
	}
	if out, err := exec.Command("dpkg-deb", "-I", deb, "conffiles").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "/etc/easymail/easymail.yaml" {
		t.Errorf("conffiles: %q, %v", out, err)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		out, err := exec.Command("dpkg-deb", "-I", deb, script).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg-deb -I %s: %v\n%s", script, err, out)
		}
		check := exec.Command("sh", "-n")
		check.Stdin = strings.NewReader(string(out))
		if msg, err := check.CombinedOutput(); err != nil {
			t.Errorf("%s is not valid sh: %v\n%s", script, err, msg)
		}
		if script == "postinst" && (!strings.Contains(string(out), "useradd --system") || !strings.Contains(string(out), "install -d -m 0700 -o easymail")) {
			t.Errorf("postinst does not create the user and the data directory:\n%s", out)
		}
	}

	root := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	unitPath := filepath.Join(root, "lib/systemd/system/easymail.service")
	unit := unitSettings(t, unitPath)
	for k, v := range map[string]string{"Type": "notify", "User": "easymail", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
		"ReadWritePaths": "/var/lib/easymail", "AmbientCapabilities": "CAP_NET_BIND_SERVICE", "LimitNOFILE": "65536",
		"WatchdogSec": "60s", "ExecReload": "/bin/kill -HUP $MAINPID"} {
		if unit[k] != v {
			t.Errorf("unit %s=%q, want %q", k, unit[k], v)
		}
	}
	// The packaged configuration is valid as it is, and its data directory is the one the unit may write.
	check := exec.Command(filepath.Join(root, "usr/bin/easymail"), "config", "check", "--config", filepath.Join(root, "etc/easymail/easymail.yaml"))
	check.Env = cleanEnv()
	out, err := check.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "data_dir: /var/lib/easymail\n") {
		t.Fatalf("config check of the packaged configuration: %v\n%s", err, out)
	}
	if v, err := exec.Command(filepath.Join(root, "usr/bin/easymail"), "version").Output(); err != nil || !strings.Contains(string(v), version) {
		t.Errorf("easymail version = %q, %v; want %s", v, err, version)
	}

	t.Run("systemd-analyze verify", func(t *testing.T) {
		analyze := need(t, "systemd-analyze")
		// The unit names /usr/bin/easymail and man:easymail(1), which are in the unpacked root, not installed.
		body, _ := os.ReadFile(unitPath)
		dir := t.TempDir()
		rewritten := strings.ReplaceAll(string(body), "ExecStart=/usr/bin/easymail", "ExecStart="+filepath.Join(root, "usr/bin/easymail"))
		os.WriteFile(filepath.Join(dir, "easymail.service"), []byte(rewritten), 0o644)
		v := exec.Command(analyze, "verify", filepath.Join(dir, "easymail.service"))
		v.Env = append(os.Environ(), "MANPATH="+filepath.Join(root, "usr/share/man"))
		if out, err := v.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})

	// The unit's command line, from the unpacked root, with the packaged configuration adapted to a test:
	// its data directory, loopback ports picked by the kernel, the fake DNS.
	w := newWorld(t)
	sample, err := os.ReadFile(filepath.Join(root, "etc/easymail/easymail.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(sample)
	conf = replaceLine(t, conf, "data_dir:", "data_dir: "+filepath.Join(t.TempDir(), "data"))
	conf = replaceLine(t, conf, "  listen: [\":25\"]", `  listen: ["127.0.0.1:0"]`)
	conf = replaceLine(t, conf, "  listen: \"127.0.0.1:8025\"", `  listen: "127.0.0.1:0"`)
	conf = replaceLine(t, conf, "  servers: []", fmt.Sprintf("  servers: [%q]", w.dns.Addr()))
	confPath := filepath.Join(t.TempDir(), "easymail.yaml")
	os.WriteFile(confPath, []byte(conf), 0o600)
	argv := strings.Fields(unit["ExecStart"])
	if len(argv) != 4 || argv[0] != "/usr/bin/easymail" || argv[2] != "--config" {
		t.Fatalf("ExecStart=%q: want /usr/bin/easymail serve --config FILE", unit["ExecStart"])
	}
	argv[0], argv[3] = filepath.Join(root, argv[0]), confPath
	notify := newNotifySocket(t)
	cmd := exec.Command(argv[0], argv[1:]...)
	watchdog, _ := time.ParseDuration(unit["WatchdogSec"])
	// The watchdog interval of the unit, shortened so that the test sees a ping soon.
	cmd.Env = cleanEnv("NOTIFY_SOCKET="+notify.path, fmt.Sprintf("WATCHDOG_USEC=%d", (watchdog/100).Microseconds()))
	log := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("easymail log:\n%s", lastLines(log.String(), 40))
		}
	})
	notify.wait(t, "READY=1")
	notify.wait(t, "WATCHDOG=1")
	cmd.Process.Signal(syscall.SIGHUP) // ExecReload
	notify.wait(t, "RELOADING=1")
	notify.wait(t, "READY=1")
	cmd.Process.Signal(syscall.SIGTERM)
	notify.wait(t, "STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("easymail serve exited with %v", err)
	}
}
