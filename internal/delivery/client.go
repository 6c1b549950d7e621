package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"easymail/internal/dsn"
)

// The go-smtp client (v0.25.1) cannot be used here: its only STARTTLS entry point (NewClientStartTLS) sends
// "EHLO localhost" before the upgrade, where we must announce the source IP's HELO name (RFC 5321 §4.1.4), and
// its Mail always adds BODY=8BITMIME. This small client speaks just what delivery needs, over net/textproto.

// maxReplySize bounds one reply from a remote host (all lines together), so that a hostile server cannot make
// us buffer without end. RFC 5321 §4.5.3.1.5 limits a reply line to 512 octets; EHLO replies run to a few
// dozen lines.
const maxReplySize = 64 << 10

// errReplyTooLong is returned when a reply exceeds maxReplySize.
var errReplyTooLong = errors.New("reply too long")

// reply is one SMTP reply from the remote host.
type reply struct {
	code     int
	enhanced [3]int // RFC 3463 code; the class followed by .0.0 when the server gave none
	text     string // the text of all lines, joined by spaces, without the enhanced code
	// raw is the reply as the server wrote it: the code, then the text of each line (enhanced codes
	// included) joined by spaces.
	raw string
}

// String returns the reply as "550 5.1.1 text".
func (r reply) String() string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.code, r.enhanced[0], r.enhanced[1], r.enhanced[2], r.text)
}

// parseReply splits the enhanced status code (RFC 2034 §4) from the text of a reply read by textproto. A code
// whose class does not match the reply's is ignored (RFC 3463 §2). The remote host's text is untrusted: both
// text and raw are cleaned as a DSN's diagnostic is (dsn.SanitizeDiagnostic: lines joined, control characters
// removed, at most 1000 bytes), since they end up in logs, the trace, the CLI's terminal and DSNs.
func parseReply(code int, msg string) reply {
	r := reply{code: code, enhanced: [3]int{code / 100, 0, 0}, raw: dsn.SanitizeDiagnostic(strconv.Itoa(code) + " " + msg)}
	lines := strings.Split(msg, "\n")
	first, rest, _ := strings.Cut(lines[0], " ")
	if e, ok := parseEnhanced(first); ok && e[0] == code/100 {
		r.enhanced = e
		lines[0] = rest
		// The code is repeated on every line of a multi-line reply.
		for i := 1; i < len(lines); i++ {
			if f, rest, _ := strings.Cut(lines[i], " "); f == first {
				lines[i] = rest
			}
		}
	}
	r.text = strings.Join(strings.Fields(dsn.SanitizeDiagnostic(strings.Join(lines, " "))), " ")
	return r
}

// parseEnhanced parses "5.1.1" (RFC 3463 §2: class 2, 4 or 5, subject 0-999, detail 0-999).
func parseEnhanced(s string) ([3]int, bool) {
	var e [3]int
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return e, false
	}
	for i, p := range parts {
		if p == "" || len(p) > 3 {
			return e, false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return e, false
		}
		e[i] = n
	}
	if e[0] != 2 && e[0] != 4 && e[0] != 5 {
		return e, false
	}
	return e, true
}

// replyLimiter caps the bytes read for one reply; reset before each.
type replyLimiter struct {
	r    io.Reader
	left int
}

func (l *replyLimiter) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errReplyTooLong
	}
	if len(p) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= n
	return n, err
}

// client is one SMTP connection to a remote host. It is used by one goroutine at a time.
type client struct {
	raw     net.Conn // the TCP connection; deadlines are set on it
	conn    net.Conn // raw, or the TLS connection over it
	limit   *replyLimiter
	text    *textproto.Conn
	timeout time.Duration // per command (RFC 5321 §4.5.3.2)

	host     string            // MX host name, for messages
	ext      map[string]string // EHLO keywords (upper case) and their parameters
	tlsState *tls.ConnectionState
	verify   string      // how the certificate was checked (Result.TLSVerify)
	stop     func() bool // stops the context watcher set by watch
	sent     int         // messages carried, for the provider's messages-per-connection limit (shaping.go)
}

func newClient(raw net.Conn, host string, timeout time.Duration) *client {
	c := &client{raw: raw, host: host, timeout: timeout, verify: VerifyNone}
	c.setConn(raw)
	return c
}

func (c *client) setConn(conn net.Conn) {
	c.conn = conn
	c.limit = &replyLimiter{r: conn}
	c.text = textproto.NewConn(struct {
		io.Reader
		io.Writer
		io.Closer
	}{c.limit, conn, conn})
}

// watch closes the connection when ctx is done, which makes a blocked read or write return at once. unwatch
// stops it and reports whether the connection is still open.
func (c *client) watch(ctx context.Context) {
	c.stop = context.AfterFunc(ctx, func() { c.raw.Close() })
}

func (c *client) unwatch() bool {
	if c.stop == nil {
		return true
	}
	stopped := c.stop()
	c.stop = nil
	return stopped
}

// has reports whether the server announced the EHLO keyword ext.
func (c *client) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// readRaw reads one reply before the deadline already set, as textproto gives it: the code and the lines'
// text joined by newlines.
func (c *client) readRaw() (int, string, error) {
	c.limit.left = maxReplySize
	code, msg, err := c.text.ReadResponse(0)
	if err != nil {
		return 0, "", err
	}
	if code < 200 || code > 599 {
		return 0, "", fmt.Errorf("malformed reply code %d", code)
	}
	return code, msg, nil
}

// readReply reads one reply before the deadline already set.
func (c *client) readReply() (reply, error) {
	code, msg, err := c.readRaw()
	if err != nil {
		return reply{}, err
	}
	return parseReply(code, msg), nil
}

// send writes one command line with the connection's deadline set timeout from now.
func (c *client) send(timeout time.Duration, format string, args ...any) error {
	if err := c.raw.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	return c.text.PrintfLine(format, args...)
}

// cmd sends one command line and reads its reply, both within timeout.
func (c *client) cmd(timeout time.Duration, format string, args ...any) (reply, error) {
	if err := c.send(timeout, format, args...); err != nil {
		return reply{}, err
	}
	return c.readReply()
}

// greet reads the server's greeting (RFC 5321 §4.3.1).
func (c *client) greet() (reply, error) {
	if err := c.raw.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return reply{}, err
	}
	return c.readReply()
}

// hello sends EHLO and records the extensions; a server that does not know EHLO (500/502, RFC 5321
// §4.1.4 and §3.2) gets HELO and is taken to have none.
func (c *client) hello(name string) (reply, error) {
	c.ext = map[string]string{}
	if err := c.send(c.timeout, "EHLO %s", name); err != nil {
		return reply{}, err
	}
	code, msg, err := c.readRaw()
	if err != nil {
		return reply{}, err
	}
	if code == 500 || code == 502 {
		return c.cmd(c.timeout, "HELO %s", name)
	}
	if code/100 == 2 {
		for _, line := range strings.Split(msg, "\n")[1:] {
			kw, param, _ := strings.Cut(strings.TrimSpace(line), " ")
			if kw != "" {
				c.ext[strings.ToUpper(kw)] = param
			}
		}
	}
	return parseReply(code, msg), nil
}

// startTLS sends STARTTLS and, on a 220, performs the TLS handshake (RFC 3207 §4). A reply other than 220 is
// returned with a nil error: the session goes on in plain text. A handshake failure is returned as an error
// of type tlsError.
func (c *client) startTLS(ctx context.Context, cfg *tls.Config) (reply, error) {
	r, err := c.cmd(c.timeout, "STARTTLS")
	if err != nil || r.code != 220 {
		return r, err
	}
	// RFC 3207 §5 and CVE-2011-0411: anything the server sent after its 220 would be taken as coming over TLS.
	if c.text.R.Buffered() > 0 {
		return r, tlsError{errors.New("data after the STARTTLS reply")}
	}
	tc := tls.Client(c.raw, cfg)
	if err := c.raw.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return r, err
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return r, tlsError{err}
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	c.setConn(tc)
	c.ext = nil
	return r, nil
}

// tlsError is a failed TLS handshake.
type tlsError struct{ err error }

func (e tlsError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e tlsError) Unwrap() error { return e.err }

// tlsDescription returns "TLS1.3 TLS_AES_128_GCM_SHA256", or "" on a plain-text connection.
func (c *client) tlsDescription() string {
	if c.tlsState == nil {
		return ""
	}
	return strings.ReplaceAll(tls.VersionName(c.tlsState.Version), " ", "") + " " +
		tls.CipherSuiteName(c.tlsState.CipherSuite)
}

// data sends the message content after a 354 and returns the reply to the final dot. Each write must progress
// within the command timeout, so the whole transfer is allowed time in proportion to its size; the reply to
// the final dot gets twice the command timeout (RFC 5321 §4.5.3.2.6 recommends 10 minutes against 5 for the
// other commands). Read errors from content come back as a sourceError.
func (c *client) data(content io.Reader) (reply, error) {
	dw := c.text.DotWriter()
	w := &deadlineWriter{w: dw, conn: c.raw, timeout: c.timeout}
	src := &sourceReader{r: content}
	if _, err := io.Copy(w, src); err != nil {
		if src.err != nil {
			return reply{}, sourceError{src.err}
		}
		return reply{}, err
	}
	if err := c.raw.SetDeadline(time.Now().Add(2 * c.timeout)); err != nil {
		return reply{}, err
	}
	if err := dw.Close(); err != nil {
		return reply{}, err
	}
	return c.readReply()
}

// deadlineWriter renews the connection's deadline before each write.
type deadlineWriter struct {
	w       io.Writer
	conn    net.Conn
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if err := d.conn.SetDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.w.Write(p)
}

// sourceReader remembers a read error of the message content, to tell it from a network error.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// sourceError is a failure to read the message content (a local problem, not the remote host's).
type sourceError struct{ err error }

func (e sourceError) Error() string { return "reading message content: " + e.err.Error() }
func (e sourceError) Unwrap() error { return e.err }

// quit sends QUIT, waits briefly for the reply and closes the connection (RFC 5321 §4.1.1.10).
func (c *client) quit(timeout time.Duration) {
	_, _ = c.cmd(timeout, "QUIT")
	c.close()
}

// close closes the connection without QUIT.
func (c *client) close() {
	c.unwatch()
	c.conn.Close()
	c.raw.Close()
}
