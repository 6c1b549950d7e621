package contentrules

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"easymail/internal/contentrules/contentrulestest"
	"easymail/internal/fielderr"
)

// check runs s on msg with the default limits and returns the hits.
func check(s *Set, msg []byte) []Hit {
	return s.Check(bytes.NewReader(msg), int64(len(msg)), Limits{}).Hits
}

func seed(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// zipMessage returns a message with a zip attachment holding the named files.
func zipMessage(t testing.TB, files ...string) []byte {
	t.Helper()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for _, f := range files {
		w, err := zw.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("data"))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return []byte("From: a@acme.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n" +
		"Content-Type: text/plain\r\n\r\nhi\r\n--q\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename=\"files.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(zb.Bytes()) + "\r\n--q--\r\n")
}

var testRules = []Rule{
	{Name: "exe", Type: TypeExtension, Values: []string{"exe", ".SCR"}, Action: "reject", Reason: "Executable attachment"},
	{Name: "double", Type: TypeDoubleExtension, Values: []string{"exe"}, Action: "reject", Reason: "Double extension"},
	{Name: "pdf", Type: TypeMIMEType, Values: []string{"application/pdf"}, Action: "tag", Reason: "PDF"},
	{Name: "subject", Type: TypeHeader, Pattern: `(?i)^subject: rechnung für`, Action: "quarantine", Reason: "Invoice scam"},
	{Name: "body", Type: TypeBody, Pattern: `100 EUR`, Action: "tag", Reason: "Money"},
	{Name: "big", Type: TypeSize, MaxBytes: 700, Action: "reject", Reason: "Too big for this customer"},
}

func TestCheck(t *testing.T) {
	s, err := Compile(testRules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range check(s, seed(t, "multipart.eml")) {
		got[h.Rule] = h.Where
	}
	want := map[string]string{
		"exe":     "invoice.pdf.exe",
		"double":  "invoice.pdf.exe",
		"pdf":     "invoice.pdf.exe (application/pdf)",
		"subject": "Subject",
		"body":    "text/plain",
		"big":     "785 bytes",
	}
	if len(got) != len(want) {
		t.Fatalf("hits %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("rule %s: where %q, want %q", k, got[k], v)
		}
	}
	if h := check(s, seed(t, "plain.eml")); len(h) != 0 {
		t.Fatalf("plain message hits %v", h)
	}
}

func TestArchives(t *testing.T) {
	s, err := Compile(testRules[:2], "rules")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		msg  []byte
		want string // rule:where, "" for none
	}{
		{zipMessage(t, "doc.txt", "tools/Setup.EXE"), "exe:files.zip: tools/Setup.EXE"},
		{zipMessage(t, "doc.txt", "report.pdf"), ""},
		{zipMessage(t, "invoice.pdf.exe"), "exe:files.zip: invoice.pdf.exe"},
		{zipMessage(t, "run.exe. "), "exe:files.zip: run.exe. "},
		{seed(t, "nested-zip.eml"), "exe:docs.zip/nested.zip: deep/run.exe"},
	} {
		hits := check(s, c.msg)
		got := ""
		if len(hits) > 0 {
			got = hits[0].Rule + ":" + hits[0].Where
		}
		if got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		r     Rule
		field string
	}{
		{Rule{Type: "extension", Values: []string{"exe"}, Action: "drop", Reason: "x"}, "r[0].action"},
		{Rule{Type: "extension", Values: []string{"exe"}, Action: "reject"}, "r[0].reason"},
		{Rule{Type: "extension", Values: []string{"a.b"}, Action: "reject", Reason: "x"}, "r[0].values"},
		{Rule{Type: "mime_type", Values: []string{"pdf"}, Action: "reject", Reason: "x"}, "r[0].values"},
		{Rule{Type: "body", Pattern: "(", Action: "reject", Reason: "x"}, "r[0].pattern"},
		{Rule{Type: "size", Action: "reject", Reason: "x"}, "r[0].max_bytes"},
		{Rule{Type: "virus", Action: "reject", Reason: "x"}, "r[0].type"},
	} {
		_, err := Compile([]Rule{c.r}, "r")
		e, ok := err.(*fielderr.Error)
		if !ok || e.Field != c.field {
			t.Errorf("%+v: error %v, want field %s", c.r, err, c.field)
		}
	}
}

func TestExtensions(t *testing.T) {
	for name, want := range map[string]string{
		"a.pdf.exe": "pdf,exe", ".bashrc": "", "x": "", `C:\dir\file.JS`: "js", "a..exe": "exe", "dir/a.tar.gz": "tar,gz",
	} {
		if got := strings.Join(extensions(name), ","); got != want {
			t.Errorf("%q: %q, want %q", name, got, want)
		}
	}
}

// FuzzWalk feeds arbitrary messages to the MIME and archive walker and the rules: it must not panic, and
// must stay within its limits.
func FuzzWalk(f *testing.F) {
	for _, n := range []string{"plain.eml", "multipart.eml", "nested-zip.eml"} {
		f.Add(seed(f, n))
	}
	f.Add(zipMessage(f, "a.pdf.exe", "b.zip"))
	// Hostile archives, built here: a small zip bomb, a deep nesting, many entries.
	f.Add(contentrulestest.Message("a@acme.test", "bomb.zip", contentrulestest.ZipBomb(3, 4, 64<<10)))
	f.Add(contentrulestest.Message("a@acme.test", "deep.zip", contentrulestest.Nested(20, "run.exe", true)))
	f.Add(contentrulestest.Message("a@acme.test", "many.zip", contentrulestest.ManyEntries(50)))
	s, err := Compile(testRules, "rules")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		parts := 0
		lim := Limits{}.withDefaults()
		walked, err := Walk(bytes.NewReader(msg), Limits{}, func(p Part) bool {
			parts++
			if len(p.Text) > maxTextBytes {
				t.Fatalf("text part of %d bytes", len(p.Text))
			}
			return true
		})
		if err != nil {
			t.Fatalf("walk of a message in memory failed: %v", err)
		}
		st := walked.Stats
		if parts > lim.MaxParts+lim.MaxArchiveEntries || st.Parts > lim.MaxParts+1 || st.Entries > lim.MaxArchiveEntries+1 ||
			st.Depth > lim.MaxDepth || st.Decompressed > lim.MaxDecompressedBytes {
			t.Fatalf("%d parts, stats %+v", parts, st)
		}
		res := s.Check(bytes.NewReader(msg), int64(len(msg)), Limits{})
		for _, h := range res.Hits {
			if h.Reason == "" || h.Action == "" {
				t.Fatalf("hit without reason or action: %+v", h)
			}
		}
	})
}

// TestEncodedNames: file names hidden in encoded words (RFC 2047) or RFC 2231 parameters are decoded.
func TestEncodedNames(t *testing.T) {
	s, err := Compile(testRules[:1], "rules")
	if err != nil {
		t.Fatal(err)
	}
	for _, disp := range []string{`filename="=?utf-8?q?inv=2Eexe?="`, `filename*=utf-8''a%2Eexe`, `filename="b.EXE "`} {
		m := "From: a@b\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: application/octet-stream\r\n" +
			"Content-Disposition: attachment; " + disp + "\r\n\r\nx\r\n--q--\r\n"
		if hits := check(s, []byte(m)); len(hits) != 1 {
			t.Errorf("%s: hits %v", disp, hits)
		}
	}
}
