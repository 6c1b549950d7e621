package dsn

import (
	"bytes"
	"os"
	"testing"
)

// FuzzParse feeds arbitrary messages to Parse. Seeds are in testdata/fuzz/FuzzParse; the built reports and
// the Postfix sample are added here. Parse must not panic, and a report it accepts must have recipients with
// valid status codes.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("testdata/postfix-bounce.eml"); err == nil {
		f.Add(data)
	}
	for _, r := range []Report{failedReport(), delayedReport()} {
		var b bytes.Buffer
		if err := Build(&b, r, bytes.NewReader([]byte(testOriginal)), 1000); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseMessage(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(p.Report.Recipients) == 0 {
			t.Fatalf("accepted a report without recipients")
		}
		for _, rc := range p.Report.Recipients {
			if !statusRE.MatchString(rc.Status) {
				t.Fatalf("accepted status %q", rc.Status)
			}
		}
		r, err := Parse(bytes.NewReader(data))
		if err != nil || len(r.Recipients) != len(p.Report.Recipients) {
			t.Fatalf("Parse and ParseMessage disagree: %v", err)
		}
	})
}
