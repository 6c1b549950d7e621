package spool

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// recFS records file-system operations in order, on top of the real file system.
type recFS struct {
	OSFS
	mu      sync.Mutex
	ops     []string
	failDir error
}

func (r *recFS) log(op string) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func (r *recFS) Create(name string) (File, error) {
	f, err := r.OSFS.Create(name)
	if err != nil {
		return nil, err
	}
	r.log("create")
	return &recFile{File: f, r: r}, nil
}

func (r *recFS) OpenDir(dir string) (Dir, error) {
	d, err := r.OSFS.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	return &recDir{Dir: d, r: r}, nil
}

type recDir struct {
	Dir
	r *recFS
}

func (d *recDir) Sync() error {
	d.r.log("syncdir")
	if d.r.failDir != nil {
		return d.r.failDir
	}
	return d.Dir.Sync()
}

type recFile struct {
	File
	r *recFS
}

func (f *recFile) Write(p []byte) (int, error) { f.r.log("write"); return f.File.Write(p) }
func (f *recFile) Sync() error                 { f.r.log("sync"); return f.File.Sync() }
func (f *recFile) Close() error                { f.r.log("close"); return f.File.Close() }

func TestCommitSyncOrder(t *testing.T) {
	fs := &recFS{}
	s, err := OpenFS(t.TempDir(), fs)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Create("A1")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: x\r\n\r\nbody\r\n")
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(fs.ops, ",")
	if got != "create,write,sync,close,syncdir" {
		t.Fatalf("operations = %s, want create,write,sync,close,syncdir", got)
	}
	r, err := s.Open("A1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "Subject: x\r\n\r\nbody\r\n" {
		t.Fatalf("content %q", b)
	}
}

func TestConcurrentCommitsShareDirectorySyncs(t *testing.T) {
	fs := &recFS{}
	s, err := OpenFS(t.TempDir(), fs)
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.Create(fmt.Sprintf("M%d", i))
			if err != nil {
				t.Error(err)
				return
			}
			io.WriteString(w, "x\r\n")
			if err := w.Commit(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	syncs, dirSyncs := 0, 0
	for _, op := range fs.ops {
		switch op {
		case "sync":
			syncs++
		case "syncdir":
			dirSyncs++
		}
	}
	if syncs != n {
		t.Fatalf("file syncs = %d, want %d", syncs, n)
	}
	if dirSyncs < 1 || dirSyncs > n {
		t.Fatalf("directory syncs = %d", dirSyncs)
	}
	t.Logf("%d commits, %d directory syncs", n, dirSyncs)
}

func TestDirectorySyncFailureIsStickyAndRemovesFile(t *testing.T) {
	fs := &recFS{failDir: errors.New("EIO")}
	s, err := OpenFS(t.TempDir(), fs)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := s.Create("B1")
	if err := w.Commit(); err == nil {
		t.Fatal("commit succeeded despite a failed directory sync")
	}
	if _, err := s.Open("B1"); err == nil {
		t.Fatal("file of a failed commit is still there")
	}
	fs.failDir = nil
	w, _ = s.Create("B2")
	if err := w.Commit(); err == nil {
		t.Fatal("commit succeeded after an earlier directory sync failure")
	}
}

func TestSweepAndAbort(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"K1", "K2", "O1"} {
		w, _ := s.Create(id)
		w.Commit()
	}
	w, _ := s.Create("X1")
	w.Abort()
	n, err := s.Sweep(func(id string) bool { return strings.HasPrefix(id, "K") })
	if err != nil || n != 1 {
		t.Fatalf("sweep removed %d (%v), want 1", n, err)
	}
	for id, want := range map[string]bool{"K1": true, "K2": true, "O1": false, "X1": false} {
		r, err := s.Open(id)
		if (err == nil) != want {
			t.Errorf("%s present=%v, want %v", id, err == nil, want)
		}
		if r != nil {
			r.Close()
		}
	}
	if _, err := s.Create("../evil"); err == nil {
		t.Fatal("id with a path separator accepted")
	}
}
