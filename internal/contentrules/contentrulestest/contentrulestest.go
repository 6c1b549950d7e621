// Package contentrulestest builds hostile messages for the tests of the content rules' budgets, at run
// time (nothing hostile is stored in the repository): zip bombs nested a few levels, archives with very many
// entries, archives nested deeply. Used only from tests.
package contentrulestest

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// zipOf returns a zip archive holding the given entries (name → content) in order, deflated unless store.
func zipOf(names []string, content func(i int) []byte, store bool) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i, n := range names {
		m := zip.Deflate
		if store {
			m = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: m})
		if err != nil {
			panic(err)
		}
		w.Write(content(i))
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// ZipBomb returns a zip archive nested levels deep: the innermost archive holds one stored file of leaf
// zero bytes, and each archive above holds fanout deflated copies of the one below. Opening every archive
// inflates about fanout^(levels-1) × leaf bytes, from an archive of a few kilobytes.
func ZipBomb(levels, fanout int, leaf int64) []byte {
	cur := zipOf([]string{"pad.bin"}, func(int) []byte { return make([]byte, leaf) }, true)
	for l := 2; l <= levels; l++ {
		names := make([]string, fanout)
		for i := range names {
			names[i] = fmt.Sprintf("level%d-%02d.zip", l-1, i)
		}
		inner := cur
		cur = zipOf(names, func(int) []byte { return inner }, false)
	}
	return cur
}

// ManyEntries returns a zip archive with n empty files.
func ManyEntries(n int) []byte {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("f%06d.txt", i)
	}
	return zipOf(names, func(int) []byte { return nil }, true)
}

// Nested returns a zip archive nested depth deep (depth archives, one inside the other, stored or deflated),
// whose innermost holds a file named last.
func Nested(depth int, last string, store bool) []byte {
	cur := zipOf([]string{last}, func(int) []byte { return []byte("MZ") }, store)
	for l := depth - 1; l >= 1; l-- {
		inner := cur
		cur = zipOf([]string{fmt.Sprintf("level%02d.zip", l+1)}, func(int) []byte { return inner }, store)
	}
	return cur
}

// Message returns a message from from with the archive attached, base64-encoded, as name.
func Message(from, name string, archive []byte) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <bob@dest.test>\r\nSubject: The files\r\nMessage-ID: <files@acme.test>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"+
		"--zz\r\nContent-Type: text/plain\r\n\r\nThe files are attached.\r\n--zz\r\n"+
		"Content-Type: application/zip; name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", from, name)
	enc := base64.StdEncoding.EncodeToString(archive)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--zz--\r\n")
	return []byte(b.String())
}

// NestedMultipart returns a message whose multiparts are nested depth deep, with an attachment named last
// in the innermost.
func NestedMultipart(from string, depth int, last string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: <%s>\r\nSubject: Deep\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n", from)
	for i := 1; i < depth; i++ {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i-1, i)
	}
	fmt.Fprintf(&b, "--b%d\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=%q\r\n\r\nMZ\r\n", depth-1, last)
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return []byte(b.String())
}

// ManyParts returns a message with n small text parts.
func ManyParts(from string, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: <%s>\r\nSubject: Parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n", from)
	for i := range n {
		fmt.Fprintf(&b, "--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n", i)
	}
	b.WriteString("--p--\r\n")
	return []byte(b.String())
}

// CountingReader counts the bytes read through it.
type CountingReader struct {
	R io.Reader
	N int64
}

func (c *CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}
