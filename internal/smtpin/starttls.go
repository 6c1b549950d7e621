package smtpin

import (
	"bytes"
	"errors"
	"strings"

	"easymail/internal/smtperr"
)

// STARTTLS takes no parameters (RFC 3207 §4: "501 Syntax error (no parameters allowed)"), but go-smtp
// drops whatever follows the command name and starts TLS anyway, and offers no hook before it does. The
// connection does the check instead: until TLS starts it hands go-smtp the client's input one line per Read,
// so that go-smtp's buffer never holds more than the line it is executing, and it remembers the start of
// that line. When go-smtp then writes its go-ahead for STARTTLS (the only 220 reply after the greeting),
// the connection knows the command line it answers. A STARTTLS with parameters gets our 501 instead; the
// TLS handshake go-smtp then attempts fails at its first read, without consuming any input, and go-smtp's
// reply to that failure is not sent. The session goes on in plain text, as if the command had never come.
//
// A successful STARTTLS drops what the client sent after the command (CVE-2011-0411: it was pipelined in
// plain text before the handshake); so does go-smtp with its own buffer.

// TLS states of a clientConn.
const (
	tlsPlain    = iota // plain text: input is handed out one line at a time
	tlsRefusing        // a STARTTLS with parameters was refused; go-smtp's handshake attempt is under way
	tlsStarted         // TLS started: reads and writes pass through
)

var (
	errStartTLSParams = smtperr.New(501, smtperr.PermBadArguments, "Syntax error (no parameters allowed)")
	// errStartTLSRefused fails the handshake go-smtp attempts after a refused STARTTLS.
	errStartTLSRefused = errors.New("smtp: STARTTLS refused")
)

// lineHead remembers what matters of the line being read: its first eight bytes, and whether anything but
// white space follows them.
type lineHead struct {
	n      int
	head   [8]byte
	params bool
	done   bool // the line ended (its LF was read)
}

// feed adds b, a part of one line that ends with its LF if it has one.
func (l *lineHead) feed(b []byte) {
	if l.done {
		*l = lineHead{}
	}
	if len(b) > 0 && b[len(b)-1] == '\n' {
		l.done = true
	}
	for _, c := range b {
		if l.n >= len(l.head) && l.params {
			return
		}
		if l.n < len(l.head) {
			l.head[l.n] = c
		} else if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			l.params = true
		}
		l.n++
	}
}

// startTLSWithParams reports whether the line is a STARTTLS command (as go-smtp reads one: any line that
// starts with the name, in any case) with something after the name.
func (l *lineHead) startTLSWithParams() bool {
	return l.n >= len(l.head) && strings.EqualFold(string(l.head[:]), "STARTTLS") && l.params
}

// Read reads from the client. Before TLS it returns at most one line per call (see above).
func (c *clientConn) Read(p []byte) (int, error) {
	switch c.tlsState.Load() {
	case tlsStarted:
		return c.Conn.Read(p)
	case tlsRefusing:
		return 0, errStartTLSRefused
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.rpos == c.wpos {
		if c.rbuf == nil {
			c.rbuf = make([]byte, 16<<10)
		}
		// An error that comes with data comes again at the next read (EOF, a deadline).
		n, err := c.Conn.Read(c.rbuf)
		if n == 0 {
			return 0, err
		}
		c.rpos, c.wpos = 0, n
	}
	b := c.rbuf[c.rpos:c.wpos]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	}
	n := copy(p, b)
	c.rpos += n
	c.line.feed(p[:n])
	return n, nil
}

// startTLSReply looks at a reply go-smtp writes before TLS starts. It returns the bytes to send instead, and
// whether to send anything at all.
func (c *clientConn) startTLSReply(p []byte) ([]byte, bool) {
	switch c.tlsState.Load() {
	case tlsStarted:
		return p, true
	case tlsRefusing:
		// go-smtp's reply to the failed handshake ("550 5.0.0 Handshake error") ends the refusal; it, and
		// anything the TLS layer may write before it, is not sent.
		if bytes.HasPrefix(p, []byte("550 ")) {
			c.tlsState.Store(tlsPlain)
		}
		return nil, false
	}
	if !c.greeted {
		c.greeted = true
		return p, true
	}
	if !bytes.HasPrefix(p, []byte("220 ")) {
		return p, true
	}
	if c.line.startTLSWithParams() {
		c.tlsState.Store(tlsRefusing)
		return []byte(errStartTLSParams.Reply() + "\r\n"), true
	}
	// The plain-text input after the command is dropped with the buffer.
	c.tlsState.Store(tlsStarted)
	c.rbuf, c.rpos, c.wpos = nil, 0, 0
	return p, true
}
