package contentrules

import (
	"bytes"
	"io"
	"os"
)

// spillMem is how much of an archive is held in memory; a larger one goes to a scratch file.
const spillMem = 256 << 10

// spill holds an archive while it is opened (zip needs to read it at any offset): in memory up to
// spillMem bytes, then in a file in dir, removed as soon as it is created so that nothing is left behind
// even by a crash. Close releases it.
type spill struct {
	dir string
	// size is the size expected, when known (0 if not): a larger one than spillMem goes to a file at once.
	size int64
	mem  []byte
	f    *os.File
	n    int64
}

func (s *spill) Write(p []byte) (int, error) {
	if s.f == nil && s.mem == nil && s.size > 0 && s.size <= spillMem {
		s.mem = make([]byte, 0, s.size)
	}
	if s.f == nil && s.size <= spillMem && len(s.mem)+len(p) <= spillMem {
		s.mem = append(s.mem, p...)
		s.n += int64(len(p))
		return len(p), nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, ".scan-*.tmp")
		if err != nil {
			return 0, &scratchError{err}
		}
		// Unlinked at once: the open file lives until Close. (If the removal fails, Close removes it.)
		if os.Remove(f.Name()) == nil {
			s.dir = ""
		}
		s.f = f
		if _, err := f.Write(s.mem); err != nil {
			return 0, &scratchError{err}
		}
		s.mem = nil
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	if err != nil {
		return n, &scratchError{err}
	}
	return n, nil
}

// scratchError is a failure to write a scratch file: a local failure, not a property of the message.
type scratchError struct{ err error }

func (e *scratchError) Error() string { return "contentrules: scratch file: " + e.err.Error() }
func (e *scratchError) Unwrap() error { return e.err }

// readerAt returns the content written so far.
func (s *spill) readerAt() io.ReaderAt {
	if s.f != nil {
		return s.f
	}
	return bytes.NewReader(s.mem)
}

func (s *spill) Close() {
	if s.f != nil {
		s.f.Close()
		if s.dir != "" {
			os.Remove(s.f.Name())
		}
	}
	s.mem = nil
}
