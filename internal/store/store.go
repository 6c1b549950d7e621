// Package store opens Easymail's database (the control plane, the queue state and the message log), applies
// its versioned migrations, and offers two ways to write: Tx, one transaction now, and Batch, a group commit
// in which many concurrent callers share one transaction and so one fsync.
//
// SQLite (modernc.org/sqlite, pure Go) in WAL mode with synchronous=FULL is the embedded default: a commit
// is on disk when it returns. Queries are written with "?" placeholders in portable SQL.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
)

func init() {
	sql.Register(driverName, cachingDriver{d: &sqlite.Driver{}})
}

// driverName is modernc's SQLite driver behind a prepared-statement cache.
const driverName = "sqlite-cached"

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open database. R serves reads (many connections); writes go through Tx or Batch, which share one
// writer connection, as SQLite allows one writer at a time.
type DB struct {
	R *sql.DB
	w *sql.DB

	batches chan *batchReq
	done    chan struct{}
	stopped chan struct{}

	// wmu serialises writers, so that a lazy batch's synchronous=NORMAL never covers another transaction.
	wmu sync.Mutex
	// lazy is whether the writer connection is at synchronous=NORMAL; guarded by wmu.
	lazy bool
}

// Open opens (creating it if needed) the SQLite database at path and migrates it to the latest version.
func Open(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(30000)" +
		"&_pragma=foreign_keys(1)&_txlock=immediate"
	w, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open(driverName, dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	db := &DB{R: r, w: w, batches: make(chan *batchReq, 1024), done: make(chan struct{}), stopped: make(chan struct{})}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	go db.batchLoop()
	return db, nil
}

// Close stops the batcher, after the batches already submitted, and closes the database.
func (db *DB) Close() error {
	close(db.done)
	<-db.stopped
	return errors.Join(db.w.Close(), db.R.Close())
}

// Tx runs fn in one write transaction and commits it durably, or rolls it back when fn returns an error.
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if err := db.setLazy(false); err != nil {
		return err
	}
	return db.tx(ctx, fn)
}

// TxScrub is Tx for changes that must not leave the old values anywhere in the database files (secrets
// replaced by their encrypted form): SQLite overwrites the freed content with zeros (secure_delete) during
// the transaction, and after the commit the WAL is checkpointed into the database and truncated, so that
// no older page version stays in either file.
func (db *DB) TxScrub(ctx context.Context, fn func(*sql.Tx) error) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if err := db.setLazy(false); err != nil {
		return err
	}
	if _, err := db.w.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
		return fmt.Errorf("store: secure_delete: %w", err)
	}
	err := db.tx(ctx, fn)
	if _, perr := db.w.ExecContext(context.WithoutCancel(ctx), "PRAGMA secure_delete = OFF"); err == nil && perr != nil {
		err = fmt.Errorf("store: secure_delete: %w", perr)
	}
	if err != nil {
		return err
	}
	var busy, logFrames, checkpointed int
	if err := db.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &checkpointed); err != nil {
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	if busy != 0 {
		return errors.New("store: checkpoint: the database was busy; old page versions may remain in the WAL")
	}
	return nil
}

// setLazy switches the writer connection between synchronous=NORMAL (lazy) and FULL. Callers hold wmu.
func (db *DB) setLazy(lazy bool) error {
	if lazy == db.lazy {
		return nil
	}
	mode := "FULL"
	if lazy {
		mode = "NORMAL"
	}
	if _, err := db.w.Exec("PRAGMA synchronous = " + mode); err != nil {
		return fmt.Errorf("store: set synchronous=%s: %w", mode, err)
	}
	db.lazy = lazy
	return nil
}

func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

type batchReq struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	lazy bool
	done chan error
}

// maxBatch bounds the number of callers that share one transaction.
const maxBatch = 512

// Batch runs fn inside a transaction shared with other concurrent callers and returns once that transaction
// is committed (durably, with synchronous=FULL). fn runs inside a savepoint: an error from fn rolls back
// fn's own changes only, and is returned to its caller. fn must not keep tx after it returns.
func (db *DB) Batch(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.submit(ctx, &batchReq{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// BatchLazy is Batch for changes that may be lost in a power failure (not in a process crash): its
// transaction is committed without an fsync when no caller in the batch needs one. In WAL mode such a commit
// is written to the log in order and made durable by the next durable commit or checkpoint, so a lazy change
// is never durable after a later durable one is lost.
func (db *DB) BatchLazy(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.submit(ctx, &batchReq{ctx: ctx, fn: fn, lazy: true, done: make(chan error, 1)})
}

func (db *DB) submit(ctx context.Context, req *batchReq) error {
	// A closed database refuses at once: the select below picks at random among ready cases, and the send
	// into the buffer is ready after Close too.
	select {
	case <-db.done:
		return errClosed
	default:
	}
	select {
	case db.batches <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-db.done:
		return errClosed
	}
	// Once submitted, the outcome must be waited for: the caller may not report failure for work that
	// commits. A request that reached the buffer after the batcher's final drain (Close racing with this
	// call) is never run: the batcher has stopped without answering it.
	select {
	case err := <-req.done:
		return err
	case <-db.stopped:
		select {
		case err := <-req.done:
			return err
		default:
			return errClosed
		}
	}
}

// errClosed is returned by Batch and BatchLazy on a closed database.
var errClosed = errors.New("store: closed")

func (db *DB) batchLoop() {
	defer close(db.stopped)
	for {
		var first *batchReq
		select {
		case first = <-db.batches:
		case <-db.done:
			// Drain what was submitted before Close.
			for {
				select {
				case r := <-db.batches:
					db.runBatch([]*batchReq{r})
				default:
					return
				}
			}
		}
		reqs := []*batchReq{first}
	collect:
		for len(reqs) < maxBatch {
			select {
			case r := <-db.batches:
				reqs = append(reqs, r)
			default:
				break collect
			}
		}
		db.runBatch(reqs)
	}
}

func (db *DB) runBatch(reqs []*batchReq) {
	errs := make([]error, len(reqs))
	lazy := true
	for _, r := range reqs {
		lazy = lazy && r.lazy
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if err := db.setLazy(lazy); err != nil {
		for _, r := range reqs {
			r.done <- err
		}
		return
	}
	err := db.tx(context.Background(), func(tx *sql.Tx) error {
		for i, r := range reqs {
			if err := r.ctx.Err(); err != nil {
				errs[i] = err
				continue
			}
			if _, err := tx.Exec("SAVEPOINT b"); err != nil {
				return err
			}
			if errs[i] = r.fn(tx); errs[i] != nil {
				if _, err := tx.Exec("ROLLBACK TO SAVEPOINT b"); err != nil {
					return err
				}
			}
			if _, err := tx.Exec("RELEASE SAVEPOINT b"); err != nil {
				return err
			}
		}
		return nil
	})
	for i, r := range reqs {
		if err != nil {
			r.done <- fmt.Errorf("store: batch commit: %w", err)
		} else {
			r.done <- errs[i]
		}
	}
}

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := db.w.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := filepath.Base(name)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its version number", base)
		}
		if applied[v] {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			for _, stmt := range splitStatements(string(body)) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w\n%s", base, err, stmt)
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, Now())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// splitStatements splits a migration file into statements at semicolons ending a line, dropping comments.
func splitStatements(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// Now returns the current time as stored: Unix milliseconds.
func Now() int64 { return time.Now().UnixMilli() }

// Millis converts t to the stored form.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// Time converts a stored time back.
func Time(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// IsUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY constraint failure.
func IsUniqueViolation(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "UNIQUE constraint failed") ||
		strings.Contains(err.Error(), "constraint failed: UNIQUE") || strings.Contains(err.Error(), "duplicate key"))
}
