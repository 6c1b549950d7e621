package scan

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// clamdChunk is the size of the INSTREAM chunks sent to clamd.
const clamdChunk = 64 << 10

// Clamd is a clamd client: INSTREAM over TCP or a unix socket. Connections are pooled: each one is a clamd
// session (IDSESSION), which clamd keeps open between commands, so that a scan does not pay for a new
// connection. At most MaxConns scans run at once (the others wait for a slot, within their context); an idle
// connection is reused for at most idleReuse, under clamd's own IdleTimeout (30 s by default).
type Clamd struct {
	network, addr string
	dialTimeout   time.Duration
	slots         chan struct{}
	idle          chan *clamdConn
}

// idleReuse is how long an idle pooled connection is reused.
const idleReuse = 10 * time.Second

// clamdConn is a connection in session mode.
type clamdConn struct {
	net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	used time.Time
	// chunk is the INSTREAM chunk being sent, reused for every message on the connection.
	chunk []byte
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
	return &Clamd{network: network, addr: a, dialTimeout: dialTimeout, slots: make(chan struct{}, maxConns),
		idle: make(chan *clamdConn, maxConns)}, nil
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

// Judge turns a virus found into the policy's virus action (reject or quarantine); a clean message calls
// for nothing. Its summary in X-Easymail-Scan is the result (clean, virus).
func (c *Clamd) Judge(a Answer, pol *ResolvedPolicy) Judgement {
	j := Judgement{Summary: a.Result}
	if a.Result == ResultVirus {
		j.Action, j.Verdict, j.Reason = Reject, ResultVirus, "Virus found: "+oneLine(a.Name)
		if pol.VirusAction == Quarantine {
			j.Action = Quarantine
		}
	}
	return j
}

// Scan sends msg to clamd with INSTREAM and returns its verdict. The context's deadline bounds the whole
// exchange, including the wait for a connection slot. A pooled connection that clamd has closed meanwhile is
// replaced by a new one, once.
func (c *Clamd) Scan(ctx context.Context, _ Envelope, msg Message) (Answer, error) {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return Answer{}, fmt.Errorf("clamd: no connection slot: %w", ctx.Err())
	}
	for attempt := 0; ; attempt++ {
		conn, pooled, err := c.get(ctx)
		if err != nil {
			return Answer{}, fmt.Errorf("clamd: %w", err)
		}
		reply, err := c.exchange(ctx, conn, msg)
		if err != nil {
			conn.Close()
			if pooled && attempt == 0 && ctx.Err() == nil {
				continue
			}
			return Answer{}, fmt.Errorf("clamd: %w", err)
		}
		v, err := parseClamdReply(reply)
		if err != nil {
			// An ERROR reply (size limit, ...) may come with clamd closing the session.
			conn.Close()
			return v, err
		}
		conn.used = time.Now()
		select {
		case c.idle <- conn:
		default:
			conn.Close()
		}
		return v, nil
	}
}

// get returns an idle pooled connection, or a new one in session mode.
func (c *Clamd) get(ctx context.Context) (*clamdConn, bool, error) {
	for {
		select {
		case conn := <-c.idle:
			if time.Since(conn.used) < idleReuse {
				return conn, true, nil
			}
			conn.Close()
			continue
		default:
		}
		break
	}
	d := net.Dialer{Timeout: c.dialTimeout}
	nc, err := d.DialContext(ctx, c.network, c.addr)
	if err != nil {
		return nil, false, err
	}
	conn := &clamdConn{Conn: nc, r: bufio.NewReader(nc), w: bufio.NewWriterSize(nc, 4+clamdChunk+4)}
	if _, err := conn.w.WriteString("zIDSESSION\x00"); err != nil {
		nc.Close()
		return nil, false, err
	}
	return conn, false, nil
}

// exchange runs one INSTREAM command on conn, within ctx.
func (c *Clamd) exchange(ctx context.Context, conn *clamdConn, msg Message) (string, error) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	reply, err := instream(conn, msg)
	if err != nil {
		return "", err
	}
	// In a session every reply starts with the command's number: "1: stream: OK".
	if i := strings.Index(reply, ": "); i > 0 && strings.Trim(reply[:i], "0123456789") == "" {
		reply = reply[i+2:]
	}
	return reply, nil
}

// instream runs one INSTREAM exchange on conn, sending msg from its reader in chunks. When clamd stops
// reading (its StreamMaxLength) it still answers, so the reply is read even after a write error. A failure
// to read the message fails the exchange.
func instream(conn *clamdConn, msg Message) (string, error) {
	var werr error
	write := func(b []byte) {
		if werr == nil {
			_, werr = conn.w.Write(b)
		}
	}
	write([]byte("zINSTREAM\x00"))
	if conn.chunk == nil {
		conn.chunk = make([]byte, 4+clamdChunk)
	}
	r := msg.Open()
	for werr == nil {
		k, err := io.ReadFull(r, conn.chunk[4:])
		if k > 0 {
			binary.BigEndian.PutUint32(conn.chunk[:4], uint32(k))
			write(conn.chunk[:4+k])
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("reading the message: %w", err)
		}
	}
	write([]byte{0, 0, 0, 0})
	if werr == nil {
		werr = conn.w.Flush()
	}
	reply, rerr := conn.r.ReadString(0)
	if rerr != nil {
		if werr != nil && reply == "" {
			return "", werr
		}
		if reply == "" {
			return "", rerr
		}
	}
	return strings.TrimRight(reply, "\x00\r\n"), nil
}

// parseClamdReply reads "stream: OK", "stream: NAME FOUND" or "... ERROR".
func parseClamdReply(r string) (Answer, error) {
	s := strings.TrimPrefix(r, "stream: ")
	switch {
	case s == "OK":
		return Answer{Result: ResultClean}, nil
	case strings.HasSuffix(s, " FOUND"):
		return Answer{Result: ResultVirus, Name: strings.TrimSuffix(s, " FOUND")}, nil
	}
	return Answer{}, errors.New("clamd: " + r)
}
