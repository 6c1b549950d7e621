// Package datadir guards the data directory of a node: one process at a time (Lock, an exclusive flock
// held for the life of the process), and one node identity (CheckNodeID, the node id written to
// <data_dir>/node-id at the first start). Both exist because the spool's recovery removes files that no
// queue row of this node refers to: a second process on the same directory, or the same directory under
// another node id, would otherwise remove acknowledged mail.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the name of the lock file in the data directory. It holds the pid of the process that has
// the lock, for the error message of the next one.
const LockFile = "easymail.lock"

// ErrLocked is wrapped by the error of Lock when another process holds the data directory.
var ErrLocked = errors.New("data_dir is in use by another process")

// Locked is an exclusive lock on a data directory, released by Close (or by the process's exit, however it
// ends: the kernel drops a flock with its last file descriptor).
type Locked struct {
	f *os.File
}

// Lock takes the exclusive lock of the data directory dir, without waiting. When another process holds it,
// the error wraps ErrLocked and names the directory and, when it can be read, the holder's pid.
func Lock(dir string) (*Locked, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data_dir %s: lock: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another process"
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
					holder = fmt.Sprintf("another easymail process (pid %d)", pid)
				}
			}
			return nil, fmt.Errorf("%w: data_dir %s is locked by %s (lock file %s); two processes on one data_dir "+
				"would remove each other's spool: stop the other one, or give this one its own data_dir", ErrLocked, dir, holder, path)
		}
		return nil, fmt.Errorf("data_dir %s: lock %s: %w", dir, path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Locked{f: f}, nil
}

// Close releases the lock. The lock file stays (removing it would let a third process lock a new file
// while a second still waits on the old one).
func (l *Locked) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
