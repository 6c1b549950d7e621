package portal

import (
	"html/template"
	"strings"
	"testing"
)

// TestQueryLinks: a link built with query keeps its parameters, escaped once, whatever the values hold.
func TestQueryLinks(t *testing.T) {
	tpl := template.Must(template.New("x").Funcs(funcs("en")).Parse(
		`<a href="/messages?{{query "domain" .D "status" "deferred" "empty" ""}}">x</a>`))
	var b strings.Builder
	if err := tpl.Execute(&b, map[string]string{"D": `ex&mple.test "<x>`}); err != nil {
		t.Fatal(err)
	}
	want := `<a href="/messages?domain=ex%26mple.test&#43;%22%3Cx%3E&amp;status=deferred">x</a>`
	if b.String() != want {
		t.Fatalf("got  %s\nwant %s", b.String(), want)
	}
}
