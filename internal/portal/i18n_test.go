package portal

import (
	"io/fs"
	"regexp"
	"testing"
)

// TestCatalogueComplete checks that every string of the templates, and every confirmation, has its French
// translation, so that a French page is never half English.
func TestCatalogueComplete(t *testing.T) {
	files, err := templateFiles()
	if err != nil || len(files) == 0 {
		t.Fatalf("templates: %v %v", files, err)
	}
	key := regexp.MustCompile(`\{\{t "([^"]+)"`)
	n := 0
	for _, f := range files {
		b, err := fs.ReadFile(templateFS, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range key.FindAllStringSubmatch(string(b), -1) {
			n++
			if _, ok := french[m[1]]; !ok {
				t.Errorf("%s: %q has no French translation", f, m[1])
			}
		}
	}
	for k, msg := range flashes {
		if _, ok := french[msg]; !ok {
			t.Errorf("confirmation %s: %q has no French translation", k, msg)
		}
	}
	if n < 100 {
		t.Fatalf("only %d strings found in the templates", n)
	}
	if got := printer("fr").Sprintf("%d recipients of %d messages waiting", 3, 2); got != "3 destinataires de 2 messages en attente" {
		t.Fatalf("French with arguments: %q", got)
	}
}
