// Package e2e tests the built easymail binary from outside, as operators and customers' servers see it:
// real SMTP clients (swaks, Postfix), kill -9 and restart, fake DNS and MX hosts on loopback.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"easymail/internal/testkit"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "easymail-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "easymail")
	build := exec.Command("go", "build", "-o", binary, "../cmd/easymail")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const token = "e2e-P7wK3zQ9vM2xR8nL5cT4hY6bJ1dF0gA"

// relay is one easymail process.
type relay struct {
	cmd      *exec.Cmd
	dataDir  string
	config   string
	smtpAddr string
	apiURL   string
	log      *testkit.SyncBuffer
}

// world is the fake Internet around a relay: DNS and a port shared by the fake MX hosts.
type world struct {
	dns *testkit.DNS
	mxp *testkit.MXPort
	// retry is the relays' delivery.retry; "1s" when empty.
	retry string
}

func newWorld(t *testing.T) *world {
	return &world{dns: testkit.NewDNS(t), mxp: testkit.ReserveMXPort(t)}
}

// mx starts a fake MX for domain on 127.0.0.<x>.
func (w *world) mx(t *testing.T, domain string, x int) *testkit.MX {
	ip := fmt.Sprintf("127.0.0.%d", x)
	m := w.mxp.NewMX(t, ip)
	w.dns.AddMX(domain, "mx."+domain, 10)
	w.dns.AddA("mx."+domain, ip)
	return m
}

// writeConfig writes a configuration for a relay in dataDir. The relay listens on ports the kernel picks
// (port 0) and says which in its "easymail ready" log line, so that no port is picked free here and bound
// later by the relay.
func (w *world) writeConfig(t *testing.T, dataDir string) (path string) {
	retry := w.retry
	if retry == "" {
		retry = "1s"
	}
	cfg := fmt.Sprintf(`hostname: relay.e2e.test
data_dir: %s
smtp:
  listen: ["127.0.0.1:0"]
api:
  listen: "127.0.0.1:0"
dns:
  servers: ["%s"]
delivery:
  port: %d
  retry: [%s]
  connect_timeout: 3s
pools:
  - name: default
    ips:
      - { address: 127.0.0.3, helo: out3.e2e.test }
log:
  level: debug
  format: json
`, dataDir, w.dns.Addr(), w.mxp.Port(), retry)
	path = filepath.Join(dataDir, "easymail.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readyLine finds the relay's "easymail ready" log line (JSON) and returns the addresses it listens on.
func readyLine(log string) (smtpAddr, apiAddr string, ok bool) {
	for _, l := range strings.Split(log, "\n") {
		var rec struct {
			Msg  string   `json:"msg"`
			SMTP []string `json:"smtp"`
			API  string   `json:"api"`
		}
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "easymail ready" && len(rec.SMTP) > 0 && rec.API != "" {
			return rec.SMTP[0], rec.API, true
		}
	}
	return "", "", false
}

// start runs easymail serve with the configuration in dataDir (writing one if needed).
func (w *world) start(t *testing.T, dataDir string) *relay {
	t.Helper()
	r := &relay{dataDir: dataDir, log: &testkit.SyncBuffer{}}
	r.config = w.writeConfig(t, dataDir)
	r.cmd = exec.Command(binary, "serve", "--config", r.config)
	r.cmd.Env = append(os.Environ(), "EASYMAIL_ADMIN_TOKEN="+token)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("easymail log:\n%s", lastLines(r.log.String(), 60))
		}
	})
	// The line is logged once every listener is open.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if smtpAddr, apiAddr, ok := readyLine(r.log.String()); ok {
			r.smtpAddr, r.apiURL = smtpAddr, "http://"+apiAddr
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("easymail did not say it was ready within 20s:\n%s", r.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *relay) stop() {
	if r.cmd.ProcessState != nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
}

func (r *relay) kill() {
	r.cmd.Process.Signal(syscall.SIGKILL)
	r.cmd.Wait()
}

// customer provisions a customer with a domain and source IPs, through the CLI as an operator would.
func (r *relay) customer(t *testing.T, name, domain string, cidrs ...string) string {
	t.Helper()
	out := r.cli(t, "customer", "add", "--name", name, "--contact", "it@"+domain, "--pool", "default", "--json")
	var c struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" {
		t.Fatalf("customer add printed %q (%v)", out, err)
	}
	r.cli(t, "customer", "domain", "add", c.ID, domain)
	for _, cidr := range cidrs {
		r.cli(t, "customer", "source-ip", "add", c.ID, cidr)
	}
	return c.ID
}

// cli runs an easymail client command against this relay and returns its standard output.
func (r *relay) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "EASYMAIL_API="+r.apiURL, "EASYMAIL_TOKEN="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("easymail %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// need skips the test when a tool is missing outside CI, and fails it in CI, where .ci/run installs it.
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run installs it", tool)
		}
		t.Skipf("%s is not installed", tool)
	}
	return p
}
