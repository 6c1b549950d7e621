package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SystemFile and LocalFile are where a configuration is looked for when none is named: the package's file,
// then easymail.yaml in the current directory.
const (
	SystemFile = "/etc/easymail/easymail.yaml"
	LocalFile  = "easymail.yaml"
)

// Overrides are the values given on the command line or in the environment, over the file's.
type Overrides struct {
	// SMTPListen replaces smtp.listen when not empty; APIListen, DataDir and Hostname replace their keys
	// when not "".
	SMTPListen []string
	APIListen  string
	DataDir    string
	Hostname   string
}

// OverridesFromEnv reads EASYMAIL_SMTP_LISTEN (comma-separated), EASYMAIL_API_LISTEN, EASYMAIL_DATA_DIR and
// EASYMAIL_HOSTNAME.
func OverridesFromEnv(getenv func(string) string) Overrides {
	var o Overrides
	if s := strings.TrimSpace(getenv("EASYMAIL_SMTP_LISTEN")); s != "" {
		for _, a := range strings.Split(s, ",") {
			if a = strings.TrimSpace(a); a != "" {
				o.SMTPListen = append(o.SMTPListen, a)
			}
		}
	}
	o.APIListen = getenv("EASYMAIL_API_LISTEN")
	o.DataDir = getenv("EASYMAIL_DATA_DIR")
	o.Hostname = getenv("EASYMAIL_HOSTNAME")
	return o
}

// Over returns o with the values of p (flags) over its own (environment).
func (o Overrides) Over(p Overrides) Overrides {
	if len(p.SMTPListen) > 0 {
		o.SMTPListen = p.SMTPListen
	}
	for _, f := range []struct{ dst, src *string }{{&o.APIListen, &p.APIListen}, {&o.DataDir, &p.DataDir}, {&o.Hostname, &p.Hostname}} {
		if *f.src != "" {
			*f.dst = *f.src
		}
	}
	return o
}

// FindFile returns the configuration file to read: named (from --config or EASYMAIL_CONFIG) when not "",
// else SystemFile if it exists, else LocalFile if it exists, else "" (the embedded defaults).
func FindFile(named string) string {
	if named != "" {
		return named
	}
	for _, p := range []string{SystemFile, LocalFile} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// LoadWith reads the YAML file at path (none when "") over the defaults, applies o, derives the values left
// empty and validates the result. A relative data_dir is taken relative to the file's directory (so that the
// server and the CLI, started from anywhere, agree), or to the current directory without a file; a data
// directory given in o is relative to the current directory. Errors are *KeyError with the file and line.
func LoadWith(path string, o Overrides) (Config, error) {
	c := defaults()
	var lines map[string]int
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		if lines, err = parse(b, &c); err != nil {
			return c, inFile(err, path, nil)
		}
		if !filepath.IsAbs(c.DataDir) && c.DataDir != "" {
			if abs, err := filepath.Abs(filepath.Join(filepath.Dir(path), c.DataDir)); err == nil {
				c.DataDir = abs
			}
		}
	}
	if len(o.SMTPListen) > 0 {
		c.SMTP.Listen = o.SMTPListen
	}
	if o.APIListen != "" {
		c.API.Listen = o.APIListen
	}
	if o.DataDir != "" {
		c.DataDir = o.DataDir
		if abs, err := filepath.Abs(o.DataDir); err == nil {
			c.DataDir = abs
		}
	}
	if o.Hostname != "" {
		c.Hostname = o.Hostname
	}
	c.fill()
	if err := c.Validate(); err != nil {
		var ke *KeyError
		if errors.As(err, &ke) && o.overrides(ke.Key) {
			ke.Key += " (set by a flag or an EASYMAIL_ variable)"
			return c, ke
		}
		return c, inFile(err, path, lines)
	}
	return c, nil
}

// overrides reports whether o sets key.
func (o Overrides) overrides(key string) bool {
	switch {
	case strings.HasPrefix(key, "smtp.listen"):
		return len(o.SMTPListen) > 0
	case key == "api.listen":
		return o.APIListen != ""
	case key == "data_dir":
		return o.DataDir != ""
	case key == "hostname":
		return o.Hostname != ""
	}
	return false
}

// inFile adds the file, and the line of the key when known, to a *KeyError.
func inFile(err error, path string, lines map[string]int) error {
	var ke *KeyError
	if !errors.As(err, &ke) {
		return err
	}
	ke.File = path
	if ke.Line == 0 {
		ke.Line = lines[ke.Key]
	}
	return ke
}

// CheckPaths checks the file system paths of the configuration without creating anything: data_dir is a
// directory or can be made in one, and smtp.tls_cert and smtp.tls_key are readable files.
func (c *Config) CheckPaths() error {
	bad := func(key, format string, args ...any) error {
		return &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	dir := c.DataDir
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				if dir == c.DataDir {
					return bad("data_dir", "%s is not a directory", c.DataDir)
				}
				return bad("data_dir", "%s cannot be made: %s is not a directory", c.DataDir, dir)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return bad("data_dir", "%v", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	for _, f := range []struct{ key, path string }{{"smtp.tls_cert", c.SMTP.TLSCert}, {"smtp.tls_key", c.SMTP.TLSKey}} {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(c.Path(f.path))
		if err != nil {
			return bad(f.key, "%v", err)
		}
		fh.Close()
	}
	return nil
}

// checkListen checks a listen address: host:port, the host an IP address, a host name or empty (every
// address), the port a number 0-65535 (0: one the kernel picks).
func checkListen(key, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &KeyError{Key: key, Msg: fmt.Sprintf("%q is not host:port (e.g. 127.0.0.1:2525, [::1]:2525 or :25): %v", addr, strings.TrimPrefix(err.Error(), "address "+addr+": "))}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return &KeyError{Key: key, Msg: fmt.Sprintf("%q: the port must be a number 0-65535", addr)}
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !isHostName(host) {
		return &KeyError{Key: key, Msg: fmt.Sprintf("%q: %q is neither an IP address nor a host name", addr, host)}
	}
	return nil
}
