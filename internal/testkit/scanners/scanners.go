// Package scanners starts a real clamd and a real rspamd on loopback for tests, offline: clamd with a
// one-signature database that detects the EICAR test file (clamav/eicar.ndb, reported as
// "Eicar-Test-Signature.UNOFFICIAL"), rspamd with the test overrides in rspamd/ (GTUBE patterns on,
// online-only modules off, DNS answered NXDOMAIN by a local stub). The work is done by start-scanners.sh in
// this directory, which `make bench-scan` uses as well. Used only from tests.
//
// The daemons come from Debian's clamav-daemon and rspamd packages (.ci/run installs them); without them a
// test fails with a message that says what to install. They run as the user running the tests, root or not.
package scanners

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Scanners are a running clamd and rspamd.
type Scanners struct {
	// Clamd is "tcp://127.0.0.1:PORT"; Rspamd is "http://127.0.0.1:PORT".
	Clamd, Rspamd string
	// ClamdAddr is clamd's host:port.
	ClamdAddr string

	dir string
	env map[string]string
}

// Dir returns the directory of the start script and the daemons' configuration.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Start starts clamd and rspamd on free loopback ports and stops them when the test ends. A start that
// fails, as when another program takes one of the ports first, is tried again on new ports (three times).
func Start(t testing.TB) *Scanners {
	t.Helper()
	for _, bin := range []string{"clamd", "rspamd", "perl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed: these integration tests need a real clamd and rspamd "+
				"(apt-get install -y --no-install-recommends clamav-daemon rspamd; .ci/run does it)", bin)
		}
	}
	// The daemons bind their ports themselves: the ports are picked free here and may be taken by another
	// program before the daemons bind them. The script then fails (a daemon that cannot bind exits, and a
	// port found in use is refused), so a failed start is tried again on new ports.
	var (
		dir  string
		out  []byte
		errs []string
	)
	for attempt := 1; ; attempt++ {
		// Under /tmp: Debian's AppArmor profile of clamd allows it there.
		d, err := os.MkdirTemp("/tmp", "easymail-scanners-")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(Dir(), "start-scanners.sh"), "start", d)
		cmd.Env = append(os.Environ(),
			"CLAMD_PORT="+strconv.Itoa(freePort(t, "tcp")),
			"RSPAMD_PORT="+strconv.Itoa(freePort(t, "tcp")),
			"RSPAMD_CONTROLLER_PORT="+strconv.Itoa(freePort(t, "tcp")),
			"DNS_STUB_PORT="+strconv.Itoa(freePort(t, "udp")),
		)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		// The daemons' own output goes to files in d, so Output returns once they answer.
		out, err = cmd.Output()
		if err == nil {
			dir = d
			break
		}
		os.RemoveAll(d)
		errs = append(errs, fmt.Sprintf("attempt %d: %v\n%s", attempt, err, stderr.String()))
		// A port taken shows as a port in use or a daemon that exited; a daemon that is only slow is not
		// helped by another try.
		taken := strings.Contains(stderr.String(), "already in use") || strings.Contains(stderr.String(), ") exited")
		if attempt == 3 || !taken {
			t.Fatalf("starting clamd and rspamd:\n%s", strings.Join(errs, "\n"))
		}
	}
	if len(errs) > 0 {
		t.Logf("clamd and rspamd started after failed attempts (a port taken meanwhile?):\n%s", strings.Join(errs, "\n"))
	}
	s := &Scanners{dir: dir, env: map[string]string{}}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			s.env[k] = v
		}
	}
	s.ClamdAddr = s.env["CLAMD_ADDR"]
	s.Clamd = "tcp://" + s.ClamdAddr
	s.Rspamd = "http://" + s.env["RSPAMD_ADDR"]
	t.Cleanup(func() {
		stop := exec.Command(filepath.Join(Dir(), "start-scanners.sh"), "stop", dir)
		if b, err := stop.CombinedOutput(); err != nil {
			t.Errorf("stopping the scanners: %v\n%s", err, b)
		}
		os.RemoveAll(dir)
	})
	return s
}

// StopClamd stops clamd (SIGTERM) and waits until its port is closed.
func (s *Scanners) StopClamd(t testing.TB) {
	t.Helper()
	pid, err := strconv.Atoi(s.env["CLAMD_PID"])
	if err != nil {
		t.Fatalf("no clamd pid: %q", s.env["CLAMD_PID"])
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.ClamdAddr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("clamd still answers 20s after SIGTERM")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// EICAR returns the 68-byte EICAR antivirus test file. It is assembled here so that the repository does not
// carry it whole (a scanner on a developer's machine would flag the source file).
func EICAR() string {
	return strings.Join([]string{`X5O!P%@AP[4\PZX54(P^)7CC)7}`, "$EICAR-STANDARD-", "ANTIVIRUS-TEST-FILE!", "$H+H*"}, "")
}

// GTUBE returns the GTUBE antispam test pattern, which rspamd always rejects (score 15).
func GTUBE() string {
	return "XJS*C4JDBQADN1.NSBN3*2IDNEN*" + "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
}

// Message returns a well-formed message (CRLF, with Date and Message-ID, so that rspamd scores it low)
// with body.
func Message(from, to, subject, body string) string {
	return fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%d.%s>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n", from, to, subject,
		time.Now().Format(time.RFC1123Z), time.Now().UnixNano(), from, strings.ReplaceAll(body, "\n", "\r\n"))
}
