package scan

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// clamdChunk is the size of the INSTREAM chunks sent to clamd.
const clamdChunk = 64 << 10

// Clamd is a clamd client: INSTREAM over TCP or a unix socket. At most MaxConns scans run at once (the
// others wait for a slot, within their context); each scan uses its own connection, as clamd closes a
// connection after each "z" command.
type Clamd struct {
	network, addr string
	dialTimeout   time.Duration
	slots         chan struct{}
}

// NewClamd returns a client for addr, "tcp://host:port" or "unix:///path", with at most maxConns
// connections at once.
func NewClamd(addr string, maxConns int, dialTimeout time.Duration) (*Clamd, error) {
	network, a, err := ParseClamdAddr(addr)
	if err != nil {
		return nil, err
	}
	if maxConns <= 0 {
		maxConns = 1
	}
	if dialTimeout <= 0 {
		dialTimeout = 5 * time.Second
	}
	return &Clamd{network: network, addr: a, dialTimeout: dialTimeout, slots: make(chan struct{}, maxConns)}, nil
}

// ParseClamdAddr splits "tcp://host:port" or "unix:///path" into a network and an address.
func ParseClamdAddr(s string) (network, addr string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("clamd address %q: %w", s, err)
	}
	switch u.Scheme {
	case "tcp":
		if _, _, err := net.SplitHostPort(u.Host); err != nil || u.Path != "" {
			return "", "", fmt.Errorf("clamd address %q: want tcp://host:port", s)
		}
		return "tcp", u.Host, nil
	case "unix":
		if u.Path == "" || u.Host != "" {
			return "", "", fmt.Errorf("clamd address %q: want unix:///path/to/socket", s)
		}
		return "unix", u.Path, nil
	}
	return "", "", fmt.Errorf("clamd address %q: want tcp://host:port or unix:///path", s)
}

// Name returns "clamd".
func (c *Clamd) Name() string { return "clamd" }

// Scan sends msg to clamd with INSTREAM and returns its verdict. The context's deadline bounds the whole
// exchange, including the wait for a connection slot.
func (c *Clamd) Scan(ctx context.Context, _ Envelope, msg []byte) (Verdict, error) {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return Verdict{}, fmt.Errorf("clamd: no connection slot: %w", ctx.Err())
	}
	d := net.Dialer{Timeout: c.dialTimeout}
	conn, err := d.DialContext(ctx, c.network, c.addr)
	if err != nil {
		return Verdict{}, fmt.Errorf("clamd: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	reply, err := instream(conn, msg)
	if err != nil {
		return Verdict{}, fmt.Errorf("clamd: %w", err)
	}
	return parseClamdReply(reply)
}

// instream runs one INSTREAM exchange on conn. When clamd stops reading (its StreamMaxLength) it still
// answers, so the reply is read even after a write error.
func instream(conn net.Conn, msg []byte) (string, error) {
	w := bufio.NewWriterSize(conn, clamdChunk+4)
	var werr error
	write := func(b []byte) {
		if werr == nil {
			_, werr = w.Write(b)
		}
	}
	write([]byte("zINSTREAM\x00"))
	var n [4]byte
	for len(msg) > 0 && werr == nil {
		k := min(len(msg), clamdChunk)
		binary.BigEndian.PutUint32(n[:], uint32(k))
		write(n[:])
		write(msg[:k])
		msg = msg[k:]
	}
	write([]byte{0, 0, 0, 0})
	if werr == nil {
		werr = w.Flush()
	}
	reply, rerr := bufio.NewReader(conn).ReadString(0)
	if rerr != nil && reply == "" {
		if werr != nil {
			return "", werr
		}
		return "", rerr
	}
	return strings.TrimRight(reply, "\x00\r\n"), nil
}

// parseClamdReply reads "stream: OK", "stream: NAME FOUND" or "... ERROR".
func parseClamdReply(r string) (Verdict, error) {
	s := strings.TrimPrefix(r, "stream: ")
	switch {
	case s == "OK":
		return Verdict{Result: ResultClean}, nil
	case strings.HasSuffix(s, " FOUND"):
		return Verdict{Result: ResultVirus, Name: strings.TrimSuffix(s, " FOUND")}, nil
	}
	return Verdict{}, errors.New("clamd: " + r)
}
