package smtpin

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"easymail/internal/access"
	"easymail/internal/queue"
	"easymail/internal/spool"
	"easymail/internal/store"
)

// memQueue is a Queue in memory that records what was enqueued and what was logged as refused.
type memQueue struct {
	mu       sync.Mutex
	enqueued []queue.Envelope
	rejected []rejection
}

// rejection is one refusal logged.
type rejection struct {
	env    queue.Envelope
	reason string
}

func (q *memQueue) Enqueue(_ context.Context, env queue.Envelope) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.enqueued = append(q.enqueued, env)
	return nil
}

func (q *memQueue) LogRejected(_ context.Context, env queue.Envelope, reason string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rejected = append(q.rejected, rejection{env, reason})
	return nil
}

// refusals returns the refusals logged.
func (q *memQueue) refusals() []rejection {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]rejection(nil), q.rejected...)
}

func (q *memQueue) all() []queue.Envelope {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]queue.Envelope(nil), q.enqueued...)
}

// noSyncFS is the OS file system without fsync, for fast tests that do not test durability.
type noSyncFS struct{ spool.OSFS }

func (f noSyncFS) Create(name string) (spool.File, error) {
	file, err := f.OSFS.Create(name)
	if err != nil {
		return nil, err
	}
	return noSyncFile{file}, nil
}

func (f noSyncFS) OpenDir(dir string) (spool.Dir, error) {
	d, err := f.OSFS.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	return noSyncDir{d}, nil
}

type noSyncFile struct{ spool.File }

func (noSyncFile) Sync() error { return nil }

type noSyncDir struct{ spool.Dir }

func (noSyncDir) Sync() error { return nil }

// testServer is a Server on a loopback port for customer C1 (domain acme.test, client 127.0.0.1), with an
// in-memory queue.
type testServer struct {
	srv   *Server
	addr  string
	q     *memQueue
	spool *spool.Spool
	db    *store.DB
}

// startServer starts a test server; adjust may change its options first.
func startServer(tb testing.TB, adjust func(*Options)) *testServer {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "db.sqlite"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	now := store.Now()
	for _, q := range []string{
		`INSERT INTO customers (id, name, contact_email, pool, status, created_at, updated_at) VALUES ('C1', 'Acme', 'it@acme.test', 'default', 'active', ?, ?)`,
		`INSERT INTO customer_domains (domain, customer_id, created_at) VALUES ('acme.test', 'C1', ?)`,
		`INSERT INTO source_ips (id, customer_id, cidr, created_at) VALUES ('S1', 'C1', '127.0.0.1/32', ?)`,
	} {
		args := []any{now}
		if strings.Count(q, "?") == 2 {
			args = append(args, now)
		}
		if err := db.Tx(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(q, args...); return err }); err != nil {
			tb.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	acc := access.New(db, nil, log)
	if err := acc.Reload(ctx); err != nil {
		tb.Fatal(err)
	}
	sp, err := spool.OpenFS(filepath.Join(dir, "spool"), noSyncFS{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sp.Close() })
	mq := &memQueue{}
	o := Options{Hostname: "relay.test", Access: acc, Spool: sp, Queue: mq, MaxMessageSize: 1 << 20, MaxRecipients: 10,
		MaxReceived: 50, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, Logger: log}
	if adjust != nil {
		adjust(&o)
	}
	srv := New(o)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(l)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &testServer{srv: srv, addr: l.Addr().String(), q: mq, spool: sp, db: db}
}

// rawClient is a line-level SMTP client for hostile sessions.
type rawClient struct {
	tb   testing.TB
	conn net.Conn
	buf  []byte
}

// dialRaw connects from localIP ("" for any) and, unless early, reads the greeting.
func dialRaw(tb testing.TB, addr, localIP string) *rawClient {
	tb.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	return &rawClient{tb: tb, conn: conn}
}

// send writes s as is.
func (c *rawClient) send(s string) {
	c.tb.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.tb.Fatalf("write %q: %v", s, err)
	}
}

// reply reads one whole (possibly multi-line) reply and returns its last line.
func (c *rawClient) reply() string {
	c.tb.Helper()
	line, err := c.readReply()
	if err != nil {
		c.tb.Fatalf("reading a reply: %v (so far %q)", err, c.buf)
	}
	return line
}

func (c *rawClient) readReply() (string, error) {
	for {
		for {
			i := strings.Index(string(c.buf), "\r\n")
			if i < 0 {
				break
			}
			line := string(c.buf[:i])
			c.buf = c.buf[i+2:]
			if len(line) >= 4 && line[3] == '-' {
				continue
			}
			return line, nil
		}
		b := make([]byte, 4096)
		n, err := c.conn.Read(b)
		c.buf = append(c.buf, b[:n]...)
		if err != nil {
			return "", err
		}
	}
}

// cmd sends one command line and returns the last line of its reply.
func (c *rawClient) cmd(line string) string {
	c.tb.Helper()
	c.send(line + "\r\n")
	return c.reply()
}

// closed reports whether the server closed the connection (reads EOF or a reset) within a few seconds.
func (c *rawClient) closed() bool {
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 256)
	for {
		_, err := c.conn.Read(b)
		if err != nil {
			var ne net.Error
			return !(asNetErr(err, &ne) && ne.Timeout())
		}
	}
}

func asNetErr(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}
