// Package spool stores message contents on the local disk, one file per message, durably.
//
// The durability order is: write the file, fsync it, fsync the directory (so that the new name survives a
// power loss), and only then may the caller commit the queue row that refers to it and answer 250. The
// database row, not the file, is the authority: a file without a row (a crash between the directory sync and
// the commit, or a session that failed) is an orphan, removed by Sweep at start. Files are written under their
// final name, so no rename is needed.
//
// Directory syncs are shared: concurrent Commits wait for one fsync of the directory that started after
// their file was synced (group commit), so N sessions pay N file fsyncs but far fewer directory fsyncs.
//
// The spool knows nothing of SMTP or of the queue.
package spool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Spool is a directory of message files. It is safe for concurrent use.
type Spool struct {
	dir     string
	fs      FS
	dirFile Dir
	dirSync *coalescer
}

// Open opens (creating it if needed) the spool in dir on the real file system.
func Open(dir string) (*Spool, error) {
	return OpenFS(dir, OSFS{})
}

// OpenFS opens the spool in dir on fs.
func OpenFS(dir string, fs FS) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	d, err := fs.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{dir: dir, fs: fs, dirFile: d}
	s.dirSync = &coalescer{fn: d.Sync}
	s.dirSync.cond = sync.NewCond(&s.dirSync.mu)
	return s, nil
}

// Close releases the spool's open directory. Writers must be finished.
func (s *Spool) Close() error { return s.dirFile.Close() }

// Dir returns the spool directory.
func (s *Spool) Dir() string { return s.dir }

func (s *Spool) path(id string) string { return filepath.Join(s.dir, id) }

// validID keeps ids from naming anything outside the spool directory.
func validID(id string) error {
	if id == "" || strings.ContainsAny(id, `/\.`) || len(id) > 64 {
		return fmt.Errorf("spool: invalid message id %q", id)
	}
	return nil
}

// Writer writes one message file. Call Commit to make it durable or Abort to discard it; one of them must
// be called.
type Writer struct {
	s    *Spool
	id   string
	f    File
	buf  *bufio.Writer
	n    int64
	done bool
}

// Create starts a new message file for id.
func (s *Spool) Create(id string) (*Writer, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	f, err := s.fs.Create(s.path(id))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &Writer{s: s, id: id, f: f, buf: bufio.NewWriterSize(f, 64<<10)}, nil
}

// ID returns the message id the writer was created for.
func (w *Writer) ID() string { return w.id }

// Size returns the bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Write appends p to the message.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.buf.Write(p)
	w.n += int64(n)
	return n, err
}

// Content is a message file opened for reading at any offset; concurrent ReadAt calls are safe.
type Content interface {
	io.ReaderAt
	io.Closer
}

// Content flushes what was written so far and opens the file for reading, so that the message can be read
// back before Commit (the content scan reads it from here rather than from a copy in memory). The reader
// sees the first Size() bytes; it stays valid after Commit or Abort until it is closed. The caller closes it.
func (w *Writer) Content() (Content, error) {
	if w.done {
		return nil, errors.New("spool: writer already finished")
	}
	if err := w.buf.Flush(); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	f, err := w.s.fs.Open(w.s.path(w.id))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	c, ok := f.(Content)
	if !ok {
		f.Close()
		return nil, errors.New("spool: the file system's files cannot be read at an offset")
	}
	return c, nil
}

// Commit flushes, fsyncs the file, closes it and waits for a directory fsync that started after. When it
// returns nil the message survives a crash or power loss. On error the file is removed.
func (w *Writer) Commit() error {
	if w.done {
		return errors.New("spool: writer already finished")
	}
	w.done = true
	err := w.buf.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.s.dirSync.do()
	}
	if err != nil {
		w.s.fs.Remove(w.s.path(w.id))
		return fmt.Errorf("spool: commit %s: %w", w.id, err)
	}
	return nil
}

// Abort closes and removes the file. It is safe to call after Commit (it then does nothing).
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	w.s.fs.Remove(w.s.path(w.id))
}

// Open returns the content of message id.
func (s *Spool) Open(id string) (io.ReadCloser, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	return s.fs.Open(s.path(id))
}

// Remove deletes message id. Durability of a removal does not matter (a removed message whose row is gone is
// an orphan, swept at start), so the directory is not synced. A missing file is not an error.
func (s *Spool) Remove(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	if err := s.fs.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Sweep removes every file whose id keep reports as unknown, and returns how many it removed. It must run
// before any session starts writing (at start).
func (s *Spool) Sweep(keep func(id string) bool) (int, error) {
	names, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		if validID(name) != nil || !keep(name) {
			if err := s.fs.Remove(s.path(name)); err == nil {
				n++
			}
		}
	}
	return n, nil
}

// coalescer runs fn for many callers at once: a caller returns after a run of fn that started after the
// caller arrived. A failed fsync is sticky: once the disk reported an error, the page cache may have dropped
// the data, and retrying the fsync would falsely report success.
type coalescer struct {
	fn func() error

	mu      sync.Mutex
	cond    *sync.Cond
	started uint64
	done    uint64
	running bool
	failed  error
}

func (c *coalescer) do() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	target := c.started + 1
	for c.done < target && c.failed == nil {
		if c.running {
			c.cond.Wait()
			continue
		}
		c.running = true
		c.started++
		gen := c.started
		c.mu.Unlock()
		err := c.fn()
		c.mu.Lock()
		c.running = false
		c.done = gen
		if err != nil {
			c.failed = fmt.Errorf("directory sync: %w", err)
		}
		c.cond.Broadcast()
	}
	return c.failed
}
