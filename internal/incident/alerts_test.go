package incident

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// promtool returns the path of promtool (Debian package prometheus). Without it the test is skipped, unless
// CI is set: CI must install it.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found: install the Debian package prometheus (.ci/run does)")
		}
		t.Skip("promtool not found (apt-get install prometheus); CI fails instead of skipping")
	}
	return p
}

// TestAlertRules checks docs/alerts.yml with promtool (syntax, then its unit tests in docs/alerts_test.yml)
// and that every metric it uses is one Easymail exports.
func TestAlertRules(t *testing.T) {
	docs := filepath.Join("..", "..", "docs")
	rules, err := os.ReadFile(filepath.Join(docs, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	src := regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(easymail_[a-z0-9_]+)"`)
	filepath.WalkDir(filepath.Join("..", ".."), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil {
			for _, m := range src.FindAllStringSubmatch(string(b), -1) {
				exported[m[1]] = true
			}
		}
		return nil
	})
	used := regexp.MustCompile(`\beasymail_[a-z0-9_]+`).FindAllString(string(rules), -1)
	if len(used) < 10 {
		t.Fatalf("only %d metric uses in alerts.yml", len(used))
	}
	for _, m := range used {
		if !exported[m] {
			t.Errorf("alerts.yml uses %s, which no source file exports", m)
		}
	}
	tool := promtool(t)
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(tool, args...)
		cmd.Dir = docs
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
