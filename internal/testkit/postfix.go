// Throwaway Postfix instances: the customer's own mail server that relays through Easymail, or a remote MX
// that Easymail delivers to. Each instance has its own configuration, queue and data directories, logs to its
// own file, and is stopped when the test ends.

package testkit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// postfixCommand is the Postfix control program; its absence decides whether Postfix tests can run.
const postfixCommand = "/usr/sbin/postfix"

// postqueueCommand is Postfix's queue tool (flush, listing).
const postqueueCommand = "/usr/sbin/postqueue"

// PostfixOptions configures a throwaway Postfix instance.
type PostfixOptions struct {
	// ListenAddr is where this Postfix's smtpd accepts mail, e.g. "127.0.0.50:2600". Required. A port of 0
	// picks a free port; Addr reports the one chosen.
	ListenAddr string
	// RelayHost is the smarthost every message is sent to (Postfix relayhost), e.g. "[127.0.0.1]:2525"; the
	// brackets turn off the MX lookup. Empty delivers by Transport.
	RelayHost string
	// Transport is the default_transport and relay_transport, e.g. "smtp:[127.0.0.1]:2526": where everything
	// goes when RelayHost is empty.
	Transport string
	// MyNetworks are the clients allowed to relay (Postfix mynetworks). Default: "127.0.0.0/8".
	MyNetworks string
	// Extra holds more main.cf settings; they override the ones StartPostfix writes.
	Extra map[string]string
}

// Postfix is a running throwaway Postfix instance.
type Postfix struct {
	t        testing.TB
	dir      string
	confDir  string
	queueDir string
	addr     string
	stopOnce sync.Once
}

// StartPostfix writes the configuration of a new Postfix instance in a fresh directory, checks it with
// "postfix check" (failing the test with Postfix's own messages), starts it, waits until its smtpd accepts
// connections and registers its stop with t.Cleanup.
//
// When /usr/sbin/postfix is missing the test is skipped, unless the environment variable CI is set: then it
// fails, so that a CI machine without Postfix cannot pass by skipping.
func StartPostfix(t testing.TB, o PostfixOptions) *Postfix {
	t.Helper()
	if _, err := os.Stat(postfixCommand); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("testkit: Postfix is not installed (%v); set CI=true to make this a failure", err)
		}
		t.Fatalf("testkit: Postfix is required when CI is set: %v", err)
	}
	if _, err := postfixListenAddr(o.ListenAddr); err != nil {
		t.Fatalf("testkit: PostfixOptions.ListenAddr: %v", err)
	}
	if o.RelayHost == "" && o.Transport == "" && !postfixRoutesItself(o.Extra) {
		t.Fatalf("testkit: PostfixOptions needs RelayHost or Transport (or relayhost, default_transport or " +
			"transport_maps in Extra); without them Postfix would look up MX records in public DNS")
	}
	// Postfix's master binds the smtpd's port itself. A port of 0 is replaced by one free a moment before;
	// should another program take it first, the master fails to bind and the start is tried again on
	// another port.
	for attempt := 1; ; attempt++ {
		addr, err := postfixListenAddr(o.ListenAddr)
		if err != nil {
			t.Fatalf("testkit: PostfixOptions.ListenAddr: %v", err)
		}
		p, inUse, msg := startPostfixOn(t, o, addr)
		if p != nil {
			return p
		}
		if !inUse || attempt == 5 || !strings.HasSuffix(o.ListenAddr, ":0") {
			t.Fatal(msg)
		}
		t.Logf("testkit: Postfix could not bind %s (taken meanwhile); trying another port", addr)
	}
}

// startPostfixOn configures and starts an instance whose smtpd listens on addr. It returns the running
// instance, or why it did not start and whether the reason is the address being in use.
func startPostfixOn(t testing.TB, o PostfixOptions, addr string) (p *Postfix, inUse bool, msg string) {
	t.Helper()
	base := postfixBaseDir(t)
	p = &Postfix{
		t:        t,
		dir:      base,
		confDir:  filepath.Join(base, "conf"),
		queueDir: filepath.Join(base, "queue"),
		addr:     addr,
	}
	dataDir := filepath.Join(base, "data")
	for _, d := range []string{p.confDir, p.queueDir, dataDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, false, fmt.Sprintf("testkit: %v", err)
		}
		// The process umask may have narrowed the mode; the postfix user must traverse these.
		if err := os.Chmod(d, 0o755); err != nil {
			return nil, false, fmt.Sprintf("testkit: %v", err)
		}
	}
	// The master opens data_directory/master.lock as the mail owner, so the data directory is the postfix
	// user's (postfix check warns otherwise).
	if err := chownToPostfix(dataDir); err != nil {
		return nil, false, fmt.Sprintf("testkit: %v", err)
	}
	mainCF, err := postfixMainCF(o, addr, base, p.queueDir, dataDir)
	if err != nil {
		return nil, false, fmt.Sprintf("testkit: %v", err)
	}
	if err := os.WriteFile(filepath.Join(p.confDir, "main.cf"), []byte(mainCF), 0o644); err != nil {
		return nil, false, fmt.Sprintf("testkit: %v", err)
	}
	if err := os.WriteFile(filepath.Join(p.confDir, "master.cf"), []byte(postfixMasterCF(addr)), 0o644); err != nil {
		return nil, false, fmt.Sprintf("testkit: %v", err)
	}

	// Early configuration errors are printed only when stderr is a terminal (logging is not set up yet),
	// hence the pseudo-terminal.
	if out, err := postfixRunTTY(postfixCommand, "-c", p.confDir, "check"); err != nil {
		return nil, false, fmt.Sprintf("testkit: postfix -c %s check: %v\n%s\nmaillog:\n%s", p.confDir, err, postfixClip(out), postfixClip(p.Log()))
	}
	// The master daemon keeps no terminal; a plain file takes whatever the start script prints, so that
	// nothing waits for the daemon to close a pipe. "postfix start" runs the master with -w: it returns
	// once the master has opened its sockets, and fails if it could not.
	out, err := postfixRunToFile(filepath.Join(base, "start.out"), postfixCommand, "-c", p.confDir, "start")
	if err != nil {
		p.stop()
		log := p.Log()
		return nil, strings.Contains(out+log, "Address already in use"),
			fmt.Sprintf("testkit: postfix -c %s start: %v\n%s\nmaillog:\n%s", p.confDir, err, postfixClip(out), postfixClip(log))
	}
	t.Cleanup(p.stop)
	if err := postfixWaitTCP(addr, 10*time.Second); err != nil {
		return nil, false, fmt.Sprintf("testkit: Postfix started but %v\nmaillog:\n%s", err, postfixClip(p.Log()))
	}
	return p, false, ""
}

// Dir returns the instance's directory: conf/ (main.cf, master.cf), queue/, data/ and maillog.
func (p *Postfix) Dir() string { return p.dir }

// Addr returns the host:port the instance's smtpd listens on.
func (p *Postfix) Addr() string { return p.addr }

// Log returns the contents of the instance's maillog, or "" before anything was logged.
func (p *Postfix) Log() string {
	b, err := os.ReadFile(filepath.Join(p.dir, "maillog"))
	if err != nil {
		return ""
	}
	return string(b)
}

// Flush asks the instance to attempt delivery of every queued message now (postqueue -f). A failure fails
// the test.
func (p *Postfix) Flush() {
	p.t.Helper()
	out, err := exec.Command(postqueueCommand, "-c", p.confDir, "-f").CombinedOutput()
	if err != nil {
		p.t.Errorf("testkit: postqueue -c %s -f: %v\n%s", p.confDir, err, out)
	}
}

// QueueEmpty reports whether the instance's queue holds no message (postqueue -p). It reports false when
// the queue cannot be listed.
func (p *Postfix) QueueEmpty() bool {
	out, err := p.queueListing()
	return err == nil && strings.Contains(out, "Mail queue is empty")
}

// WaitQueueEmpty waits until the queue is empty and fails the test, showing the queue and the log, if it is
// not empty within timeout.
func (p *Postfix) WaitQueueEmpty(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := p.queueListing()
		if err == nil && strings.Contains(out, "Mail queue is empty") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testkit: Postfix queue in %s not empty after %v (err %v):\n%s\nmaillog:\n%s",
				p.dir, timeout, err, postfixClip(out), postfixClip(p.Log()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the instance (postfix stop) and makes sure its master process and the master's children are
// gone. It is called at cleanup; calling it earlier simulates the server going down. Later calls do nothing.
func (p *Postfix) Stop() { p.stop() }

// Queue returns Postfix's queue listing (postqueue -p), for a test's failure message.
func (p *Postfix) Queue() string {
	out, err := p.queueListing()
	if err != nil {
		return out + err.Error()
	}
	return out
}

func (p *Postfix) queueListing() (string, error) {
	out, err := exec.Command(postqueueCommand, "-c", p.confDir, "-p").CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("postqueue -c %s -p: %w", p.confDir, err)
	}
	return string(out), nil
}

func (p *Postfix) stop() {
	p.stopOnce.Do(func() {
		pid := p.masterPID()
		out, err := exec.Command(postfixCommand, "-c", p.confDir, "stop").CombinedOutput()
		if err != nil && pid != 0 {
			p.t.Errorf("testkit: postfix -c %s stop: %v\n%s", p.confDir, err, out)
		}
		if pid == 0 {
			return
		}
		// The master calls setsid(), so it leads a process group that its children share. The master reaps
		// none of the children once it has exited; wait for every live member of the group.
		if !postfixWaitGroupGone(pid, 10*time.Second) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			if !postfixWaitGroupGone(pid, 5*time.Second) {
				p.t.Errorf("testkit: Postfix master %d (%s) and its children survive SIGKILL", pid, p.dir)
			}
		}
	})
}

// masterPID reads the running master's pid, or 0.
func (p *Postfix) masterPID() int {
	b, err := os.ReadFile(filepath.Join(p.queueDir, "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// postfixWaitGroupGone waits until no process of process group pgid is alive (zombies count as gone: this
// machine's init may never reap them).
func postfixWaitGroupGone(pgid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !postfixGroupAlive(pgid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func postfixGroupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state ppid pgrp ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			return true
		}
	}
	return false
}

// postfixListenAddr validates ListenAddr and replaces a port of 0 with a free one.
func postfixListenAddr(a string) (string, error) {
	if a == "" {
		return "", errors.New("required (e.g. 127.0.0.50:2600)")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", err
	}
	if net.ParseIP(host) == nil {
		return "", fmt.Errorf("%q: host must be an IP address", a)
	}
	if port != "0" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: bad port", a)
		}
		return a, nil
	}
	l, err := net.Listen("tcp", a)
	if err != nil {
		return "", fmt.Errorf("finding a free port on %s: %w", host, err)
	}
	free := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", err
	}
	return free, nil
}

// postfixRoutesItself reports whether Extra routes mail by itself.
func postfixRoutesItself(extra map[string]string) bool {
	for _, k := range []string{"relayhost", "default_transport", "transport_maps"} {
		if extra[k] != "" {
			return true
		}
	}
	return false
}

// postfixMainCF renders main.cf: Extra over the defaults, sorted by name.
func postfixMainCF(o PostfixOptions, addr, base, queueDir, dataDir string) (string, error) {
	host, _, _ := net.SplitHostPort(addr)
	protocols := "ipv4"
	if ip := net.ParseIP(host); ip.To4() == nil {
		protocols = "all"
	}
	mynetworks := o.MyNetworks
	if mynetworks == "" {
		mynetworks = "127.0.0.0/8"
	}
	s := map[string]string{
		"compatibility_level": "3.6",
		"queue_directory":     queueDir,
		"data_directory":      dataDir,
		// postlogd writes here; the prefix list is a safety check on maillog_file.
		"maillog_file":          filepath.Join(base, "maillog"),
		"maillog_file_prefixes": base,
		"myhostname":            postfixHostname(addr),
		"myorigin":              "$myhostname",
		"mydestination":         "",
		"local_recipient_maps":  "",
		"local_transport":       "error:local delivery is disabled",
		"alias_maps":            "",
		"alias_database":        "",
		// Loopback addresses other than 127.0.0.1 are not interface addresses, so inet_interfaces cannot
		// name them; the smtpd's own address is in master.cf.
		"inet_interfaces": "loopback-only",
		"inet_protocols":  protocols,
		"mynetworks":      mynetworks,
		"relayhost":       o.RelayHost,
		// No DNS at all: tests never reach real resolvers (and there is none).
		"smtp_dns_support_level": "disabled",
		"lmtp_dns_support_level": "disabled",
		"smtpd_peername_lookup":  "no",
		// Quick retries so that tests of deferral and retry finish in seconds.
		"minimal_backoff_time": "1s",
		"maximal_backoff_time": "2s",
		"queue_run_delay":      "1s",
		// Opportunistic TLS, as a customer's Postfix usually has (RFC 3207).
		"smtp_tls_security_level": "may",
		"biff":                    "no",
		"append_dot_mydomain":     "no",
		"smtpd_banner":            "$myhostname ESMTP",
	}
	if o.Transport != "" {
		s["default_transport"] = o.Transport
		s["relay_transport"] = o.Transport
	}
	for k, v := range o.Extra {
		if k == "" || strings.ContainsAny(k, " \t\r\n=#") {
			return "", fmt.Errorf("PostfixOptions.Extra: bad parameter name %q", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			return "", fmt.Errorf("PostfixOptions.Extra[%q]: value must be one line", k)
		}
		s[k] = v
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Written by easymail/internal/testkit for one test.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, s[k])
	}
	return b.String(), nil
}

// postfixHostname derives a distinct myhostname from the listen address: Postfix refuses to deliver to a
// server that greets it with its own name, so two instances must differ.
func postfixHostname(addr string) string {
	var b strings.Builder
	b.WriteString("postfix-")
	for _, r := range addr {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' {
			b.WriteRune(r)
		} else if r != '[' && r != ']' {
			b.WriteByte('-')
		}
	}
	b.WriteString(".test")
	return b.String()
}

// postfixMasterCF renders master.cf: every service unchrooted (the new queue directory has none of the files
// a chroot needs) and the smtpd bound to addr only.
func postfixMasterCF(addr string) string {
	return `# service type  private unpriv  chroot  wakeup  maxproc command
` + addr + ` inet n - n - - smtpd
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
tlsmgr     unix  -       -       n       1000?   1       tlsmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
`
}

// postfixBaseDir returns a fresh directory whose every ancestor the postfix user can traverse: the master
// opens files in data_directory, and postfix check walks the queue, as that user. t.TempDir's directories are
// mode 0700, so they are opened up; if an ancestor outside them is still closed, /var/tmp is used instead.
func postfixBaseDir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	tmp := filepath.Clean(os.TempDir())
	for p := d; strings.HasPrefix(p, tmp+string(filepath.Separator)); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatalf("testkit: %v", err)
		}
	}
	if postfixTraversable(d) {
		return d
	}
	v, err := os.MkdirTemp("/var/tmp", "easymail-postfix-")
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(v) })
	if err := os.Chmod(v, 0o755); err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return v
}

// postfixTraversable reports whether "other" users may search every directory from d up to the root.
func postfixTraversable(d string) bool {
	for p := d; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if p == filepath.Dir(p) {
			return true
		}
	}
}

func chownToPostfix(dir string) error {
	u, err := user.Lookup("postfix")
	if err != nil {
		return fmt.Errorf("the postfix user: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}

// postfixRunTTY runs a command with its stdout and stderr on a new pseudo-terminal and returns what it
// printed. Postfix commands print their fatal errors to stderr only when it is a terminal.
func postfixRunTTY(name string, args ...string) (string, error) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		// No pseudo-terminals: run plainly and show what there is.
		out, err := exec.Command(name, args...).CombinedOutput()
		return string(out), err
	}
	defer func() { _ = ptmx.Close() }()
	var ptsNum uint32
	var ctlErr error
	rc, err := ptmx.SyscallConn()
	if err != nil {
		return "", err
	}
	if err := rc.Control(func(fd uintptr) {
		if ctlErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ctlErr != nil {
			return
		}
		ptsNum, ctlErr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
	}); err != nil {
		return "", err
	}
	if ctlErr != nil {
		return "", fmt.Errorf("pseudo-terminal: %w", ctlErr)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(ptsNum), 10), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout = pts
	cmd.Stderr = pts
	err = cmd.Start()
	_ = pts.Close()
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		// Reading ends with EIO once the last holder of the terminal's other side has closed it.
		_, _ = io.Copy(&buf, ptmx)
		close(done)
	}()
	werr := cmd.Wait()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		// A descendant kept the terminal open; what was read is enough.
		_ = ptmx.SetReadDeadline(time.Now())
		<-done
	}
	return strings.ReplaceAll(buf.String(), "\r\n", "\n"), werr
}

// postfixRunToFile runs a command with stdout and stderr going to the file at path and returns what it wrote.
func postfixRunToFile(path, name string, args ...string) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	cmd := exec.Command(name, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	err = cmd.Run()
	out, _ := os.ReadFile(path)
	return string(out), err
}

// postfixWaitTCP waits until addr accepts a TCP connection.
func postfixWaitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s accepts no connection after %v: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postfixClip keeps the last 8 KiB of a long text for a failure message.
func postfixClip(s string) string {
	const keep = 8 << 10
	if len(s) <= keep {
		return s
	}
	return "…" + s[len(s)-keep:]
}
