package cli

import (
	"runtime"
	"runtime/debug"
)

// version is set at build time by `make build` and `make deb` (-ldflags "-X easymail/internal/cli.version=V").
var version string

// versionString describes the build: the version (set at build time, else the module's), VCS revision and
// Go version.
func versionString() string {
	v, rev, dirty := "(devel)", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if version != "" {
		v = version
	}
	s := "easymail " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		s += " (" + rev + ")"
	}
	return s + " " + runtime.Version()
}
