package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestContentLimits: scan.content_limits keys override their defaults one by one, and a bad value is an
// error naming its key.
func TestContentLimits(t *testing.T) {
	load := func(yaml string) (Config, error) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(path, []byte(yaml), 0o600)
		return Load(path)
	}
	c, err := load("scan: {content_limits: {max_time: 2s, action: quarantine}}")
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Scan.ContentLimits
	if cl.MaxTime != 2*time.Second || cl.Action != "quarantine" || cl.MaxDecompressedBytes != 64<<20 || cl.MaxDepth != 16 ||
		cl.MaxParts != 1000 || cl.MaxArchiveEntries != 10000 {
		t.Fatalf("content limits %+v", cl)
	}
	if l := cl.RuleLimits("/spool"); l.ScratchDir != "/spool" || l.MaxTime != 2*time.Second {
		t.Fatalf("rule limits %+v", l)
	}
	for yaml, key := range map[string]string{
		"scan: {content_limits: {action: tag}}":               "scan.content_limits.action",
		"scan: {content_limits: {max_decompressed_bytes: 0}}": "scan.content_limits.max_decompressed_bytes",
		"scan: {content_limits: {max_depth: 0}}":              "scan.content_limits.max_depth",
		"scan: {content_limits: {max_time: -1s}}":             "scan.content_limits.max_time",
		"scan: {content_limits: {max_archive_entries: -5}}":   "scan.content_limits.max_archive_entries",
		"scan: {content_limits: {max_parts: 0}}":              "scan.content_limits.max_parts",
	} {
		_, err := load(yaml)
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != key {
			t.Errorf("%s: error %v, want one naming %s", yaml, err, key)
		}
	}
}
