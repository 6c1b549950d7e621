package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"

	"modernc.org/sqlite"
)

// The queue runs the same few statements thousands of times a second; SQLite spends more time parsing SQL
// than executing such small statements. cachingDriver keeps each connection's prepared statements by query
// text, transparently for every caller of database/sql.

// maxCachedStmts bounds the statements kept per connection; past it the cache starts over.
const maxCachedStmts = 256

type cachingDriver struct{ d *sqlite.Driver }

func (c cachingDriver) Open(name string) (driver.Conn, error) {
	conn, err := c.d.Open(name)
	if err != nil {
		return nil, err
	}
	return &cachingConn{Conn: conn, stmts: map[string]driver.Stmt{}}, nil
}

// cachingConn is a driver connection whose Exec and Query go through cached prepared statements. database/sql
// uses a connection from one goroutine at a time; the mutex only guards Close against a late use.
type cachingConn struct {
	driver.Conn
	mu    sync.Mutex
	stmts map[string]driver.Stmt
}

func (c *cachingConn) stmt(ctx context.Context, query string) (driver.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	if len(c.stmts) >= maxCachedStmts {
		for q, st := range c.stmts {
			st.Close()
			delete(c.stmts, q)
		}
	}
	pc, ok := c.Conn.(driver.ConnPrepareContext)
	if !ok {
		return nil, errors.New("store: driver cannot prepare with a context")
	}
	st, err := pc.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

// ExecContext runs query through its cached prepared statement.
func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.(driver.StmtExecContext).ExecContext(ctx, args)
}

// QueryContext runs query through its cached prepared statement.
func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.(driver.StmtQueryContext).QueryContext(ctx, args)
}

// BeginTx forwards to the driver (the connection's DSN sets BEGIN IMMEDIATE).
func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return nil, errors.New("store: driver cannot begin with a context")
}

// PrepareContext forwards explicit preparations to the driver.
func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return pc.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

// Close closes the cached statements, then the connection.
func (c *cachingConn) Close() error {
	c.mu.Lock()
	for q, st := range c.stmts {
		st.Close()
		delete(c.stmts, q)
	}
	c.mu.Unlock()
	return c.Conn.Close()
}
