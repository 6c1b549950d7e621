package spool

import (
	"io"
	"os"
)

// FS is the file system under the spool. It exists so that tests can record the order of writes and syncs
// (a kill -9 cannot prove an fsync: the page cache survives a process crash).
type FS interface {
	// Create creates a new file for writing; it fails if the file exists.
	Create(name string) (File, error)
	// Open opens a file for reading.
	Open(name string) (io.ReadCloser, error)
	// Remove removes a file.
	Remove(name string) error
	// OpenDir opens a directory so that its entries (created and removed names) can be made durable with
	// Sync. The spool keeps it open, to pay no open per sync.
	OpenDir(dir string) (Dir, error)
	// ReadDir lists the names in a directory.
	ReadDir(dir string) ([]string, error)
}

// Dir is an open directory.
type Dir interface {
	// Sync makes the directory's entries durable (fsync of the directory).
	Sync() error
	Close() error
}

// File is a spool file being written.
type File interface {
	io.Writer
	// Sync makes the file's content durable (fsync).
	Sync() error
	Close() error
}

// OSFS is the real file system.
type OSFS struct{}

// Create creates name with mode 0600, failing if it exists.
func (OSFS) Create(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// Open opens name for reading.
func (OSFS) Open(name string) (io.ReadCloser, error) { return os.Open(name) }

// Remove removes name.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// OpenDir opens the directory dir.
func (OSFS) OpenDir(dir string) (Dir, error) { return os.Open(dir) }

// ReadDir lists the names in dir.
func (OSFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}
