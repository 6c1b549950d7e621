// Package secretfile writes the small secret files Easymail keeps in its data directory (the onboarding
// key, the DKIM master key, the generated admin token): readable by Easymail's user only, complete or not
// at all.
package secretfile

import (
	"os"
	"path/filepath"
)

// Create writes data to a new file at path with mode 0600: into a temporary file in the same directory
// (made with mode 0700 if missing), synced, then hard-linked to path, which fails with an error wrapping
// fs.ErrExist if path exists (another process made it meanwhile, or it is an older key); then the directory
// is synced, so that the name survives a crash.
func Create(path string, data []byte) error { return write(path, data, false) }

// Replace is Create, but the temporary file is renamed over path, replacing a file that is there.
func Replace(path string, data []byte) error { return write(path, data, true) }

func write(path string, data []byte, replace bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".secret-*.tmp") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if replace {
		err = os.Rename(tmp, path)
	} else {
		err = os.Link(tmp, path)
	}
	if err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
