package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"easymail/internal/testkit"
)

// notifySocket is a fake systemd: the unixgram socket a service sends its sd_notify states to.
type notifySocket struct {
	path string
	conn *net.UnixConn
	got  chan string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	// Unix socket paths are short (108 bytes): not under t.TempDir's long name.
	dir, err := os.MkdirTemp("", "em-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &notifySocket{path: filepath.Join(dir, "notify"), got: make(chan string, 100)}
	n.conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := n.conn.Read(buf)
			if err != nil {
				close(n.got)
				return
			}
			n.got <- string(buf[:k])
		}
	}()
	return n
}

// wait returns the first state received that contains want, failing the test after 20 s.
func (n *notifySocket) wait(t *testing.T, want string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case s, ok := <-n.got:
			if !ok {
				t.Fatalf("notify socket closed before %q", want)
			}
			if strings.Contains(s, want) {
				return s
			}
		case <-deadline:
			t.Fatalf("no %q on the notify socket within 20s", want)
		}
	}
}

// activated starts "easymail serve ARGS" in dir as systemd would with socket activation: the listeners
// are bound here (port 0, no race) and passed as descriptors 3 and up, LISTEN_PID naming the process (sh
// sets it to its own pid and execs the binary, which keeps the pid).
func activated(t *testing.T, dir string, env []string, ls []net.Listener, args ...string) (*exec.Cmd, *testkit.SyncBuffer) {
	t.Helper()
	var files []*os.File
	for _, l := range ls {
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	script := fmt.Sprintf(`LISTEN_PID=$$ LISTEN_FDS=%d exec "$0" "$@"`, len(ls))
	cmd := exec.Command("sh", append([]string{"-c", script, binary}, args...)...)
	cmd.Dir, cmd.Env, cmd.ExtraFiles = dir, env, files
	log := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		f.Close()
	}
	for _, l := range ls {
		l.Close() // the child has its copies
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("easymail log:\n%s", lastLines(log.String(), 60))
		}
	})
	return cmd, log
}

// cleanEnv is the environment without the variables that point the CLI or the server somewhere.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EASYMAIL_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, "LISTEN_") &&
			!strings.HasPrefix(kv, "WATCHDOG_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// readmeCommands returns the commands of the README's "A first customer in five commands" after the
// build and serve lines, as written, without their comments.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## A first customer in five commands")
	if !ok {
		t.Fatal("README.md has no section \"A first customer in five commands\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var cmds []string
	sc := bufio.NewScanner(strings.NewReader(section))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(sc.Text(), "    ./easymail ") {
			continue
		}
		if i := strings.Index(l, "  #"); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		cmds = append(cmds, l)
	}
	return cmds
}

// The README's first customer works, exactly as written, with ports other than the defaults: the server and
// the CLI read them from the same ./easymail.yaml, and the CLI finds the token the server wrote.
func TestReadmeFirstCustomerWithOtherPorts(t *testing.T) {
	if _, err := os.Stat("/etc/easymail/easymail.yaml"); err == nil {
		// The README's commands would then read that file, as written; CI's machine must not have one.
		if os.Getenv("CI") != "" {
			t.Fatal("/etc/easymail/easymail.yaml exists: it comes before ./easymail.yaml, so the README's commands cannot be checked here")
		}
		t.Skip("/etc/easymail/easymail.yaml exists on this machine: it comes before ./easymail.yaml for the server and the CLI alike")
	}
	w := newWorld(t)
	dir := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(dir, "easymail")); err != nil {
		t.Fatal(err)
	}
	smtpL, apiL := listen(t), listen(t)
	cfg := fmt.Sprintf("hostname: relay.e2e.test\nsmtp:\n  listen: [%q]\napi:\n  listen: %q\ndns:\n  servers: [%q]\n",
		smtpL.Addr(), apiL.Addr(), w.dns.Addr())
	if err := os.WriteFile(filepath.Join(dir, "easymail.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmds := readmeCommands(t)
	if len(cmds) < 4 || cmds[0] != "./easymail serve &" {
		t.Fatalf("README commands %q: want ./easymail serve & then the client commands", cmds)
	}
	notify := newNotifySocket(t)
	_, log := activated(t, dir, cleanEnv("NOTIFY_SOCKET="+notify.path), []net.Listener{smtpL, apiL}, "serve")
	notify.wait(t, "READY=1")
	// The log is copied from the process by a goroutine: it may come after the notification.
	waitLog(t, log, "admin token written (first start)")
	waitLog(t, log, filepath.Join(dir, "data", "admin.token"))
	waitLog(t, log, "dns: resolvers from dns.servers")

	id := ""
	for _, c := range cmds[1:] {
		if strings.Contains(c, "<ID>") && id == "" {
			t.Fatalf("%q needs the customer id, which no earlier command printed", c)
		}
		line := strings.ReplaceAll(c, "<ID>", id)
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir, cmd.Env = dir, cleanEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s%s", line, err, stdout.String(), stderr.String())
		}
		if id == "" {
			if m := regexp.MustCompile(`(?m)^id:\s+(\S+)`).FindStringSubmatch(stdout.String()); m != nil {
				id = m[1]
			}
		}
		if strings.Contains(c, "domain add") && !strings.Contains(stdout.String(), "v=DKIM1") {
			t.Fatalf("%s printed no DKIM record:\n%s", line, stdout.String())
		}
	}
}

// The unit's readiness protocol and reload: READY=1 once listening, WATCHDOG=1 while healthy, and on SIGHUP
// a bad configuration is refused (the old one kept, the reason logged) while a good one is applied.
func TestServiceReadinessWatchdogAndReload(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "easymail.yaml")
	good := fmt.Sprintf("data_dir: %s\nsmtp:\n  listen: [\"127.0.0.1:0\"]\napi:\n  listen: \"127.0.0.1:0\"\ndns:\n  servers: [%q]\nlog:\n  level: info\n",
		filepath.Join(dir, "data"), w.dns.Addr())
	os.WriteFile(conf, []byte(good), 0o600)
	notify := newNotifySocket(t)
	cmd, log := activated(t, dir, cleanEnv("NOTIFY_SOCKET="+notify.path, "WATCHDOG_USEC=400000", "EASYMAIL_ADMIN_TOKEN="+token),
		nil, "serve", "--config", conf)
	notify.wait(t, "READY=1")
	notify.wait(t, "WATCHDOG=1")

	os.WriteFile(conf, []byte(good+"smtp:\n  max_mesage_size: 1\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	notify.wait(t, "RELOADING=1")
	notify.wait(t, "READY=1")
	waitLog(t, log, "reload: configuration refused; the running configuration is kept")
	if cmd.ProcessState != nil {
		t.Fatal("the relay exited on SIGHUP")
	}

	os.WriteFile(conf, []byte(strings.Replace(good, "level: info", "level: debug", 1)+"delivery:\n  workers: 7\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	notify.wait(t, "RELOADING=1")
	notify.wait(t, "READY=1")
	waitLog(t, log, "reload: log.level applied")
	waitLog(t, log, "take effect at the next restart")
	if !strings.Contains(log.String(), "delivery.workers") {
		t.Fatalf("the keys waiting for a restart are not named:\n%s", log)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	notify.wait(t, "STOPPING=1")
}

func waitLog(t *testing.T, log *testkit.SyncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
