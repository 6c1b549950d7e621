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

	"github.com/emersion/go-smtp"

	"easymail/internal/access"
	"easymail/internal/queue"
	"easymail/internal/spool"
	"easymail/internal/store"
)

// events records, in order, what happened to a message on its way to the 250.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.log, ",")
}

type recordingFS struct {
	spool.OSFS
	ev *events
}

func (f recordingFS) Create(name string) (spool.File, error) {
	file, err := f.OSFS.Create(name)
	if err != nil {
		return nil, err
	}
	f.ev.add("create")
	return recordingFile{file, f.ev}, nil
}

func (f recordingFS) OpenDir(dir string) (spool.Dir, error) {
	d, err := f.OSFS.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	return recordingDir{d, f.ev}, nil
}

type recordingDir struct {
	spool.Dir
	ev *events
}

func (d recordingDir) Sync() error { d.ev.add("syncdir"); return d.Dir.Sync() }

type recordingFile struct {
	spool.File
	ev *events
}

func (f recordingFile) Sync() error { f.ev.add("fsync"); return f.File.Sync() }

// recordingQueue marks when the queue transaction has committed.
type recordingQueue struct {
	*queue.Queue
	ev *events
}

func (q recordingQueue) Enqueue(ctx context.Context, env queue.Envelope) error {
	err := q.Queue.Enqueue(ctx, env)
	if err == nil {
		q.ev.add("commit")
	}
	return err
}

// TestReplyOnlyAfterDurableCommit checks the order that makes "250" a promise: the message file is
// fsynced, then its directory, then the queue row is committed, and only then does the client see 250.
func TestReplyOnlyAfterDurableCommit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	acc := access.New(db, nil, log)
	if err := acc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	sp, err := spool.OpenFS(filepath.Join(dir, "spool"), recordingFS{ev: ev})
	if err != nil {
		t.Fatal(err)
	}
	q := queue.New(queue.Options{DB: db, Spool: sp, NodeID: "n1", Hostname: "relay.test", Retry: []time.Duration{time.Minute},
		MaxLifetime: time.Hour, Workers: 1, Logger: log})
	srv := New(Options{Hostname: "relay.test", Access: acc, Spool: sp, Queue: recordingQueue{q, ev},
		MaxMessageSize: 1 << 20, MaxRecipients: 10, MaxReceived: 50, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, Logger: log})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(ctx)

	c, err := smtp.Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("alice@acme.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@dest.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "From: alice@acme.test\r\nSubject: durable\r\n\r\nbody\r\n")
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	ev.add("250")
	if !strings.Contains(resp.StatusText, "queued as") {
		t.Fatalf("reply %q", resp.StatusText)
	}
	if got, want := ev.String(), "create,fsync,syncdir,commit,250"; got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
	var n int
	if err := db.R.QueryRow(`SELECT COUNT(*) FROM messages WHERE status = 'queued'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d queued rows (%v), want 1", n, err)
	}
}
