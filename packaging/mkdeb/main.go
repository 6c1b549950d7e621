// Command mkdeb builds Easymail's Debian package from packaging/nfpm.yaml with nfpm as a library: `make deb`
// runs it from the repository root after building the binary, the man page and the completion scripts into
// the dist directory. It writes DIST/easymail_VERSION_ARCH.deb and prints its path.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
)

func main() {
	conf := flag.String("config", "packaging/nfpm.yaml", "nfpm configuration")
	version := flag.String("version", "", "package version (required)")
	arch := flag.String("arch", "amd64", "architecture, as GOARCH")
	binary := flag.String("binary", "", "the easymail binary (required)")
	dist := flag.String("dist", "dist", "directory of the man page and completion scripts, and of the package")
	flag.Parse()
	if *version == "" || *binary == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: mkdeb -version V -binary PATH [-arch GOARCH] [-dist DIR] [-config FILE]")
		os.Exit(2)
	}
	path, err := build(*conf, map[string]string{"VERSION": *version, "ARCH": *arch, "BINARY": *binary, "DIST": *dist}, *dist)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

// build packages conf with vars expanded and writes the package into dir.
func build(conf string, vars map[string]string, dir string) (string, error) {
	cfg, err := nfpm.ParseFileWithEnvMapping(conf, func(k string) string { return vars[k] })
	if err != nil {
		return "", err
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	target := filepath.Join(dir, pkg.ConventionalFileName(info))
	info.Target = target
	f, err := os.Create(target)
	if err != nil {
		return "", err
	}
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		os.Remove(target)
		return "", err
	}
	return target, f.Close()
}
