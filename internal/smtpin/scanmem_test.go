package smtpin

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"easymail/internal/api"
	"easymail/internal/contentrules"
	"easymail/internal/scan"
	"easymail/internal/testkit/scanners"
)

// fixedPolicy is one scanning policy for every customer.
type fixedPolicy struct{ p *scan.ResolvedPolicy }

func (f fixedPolicy) For(string) *scan.ResolvedPolicy { return f.p }

// defaultScanPolicy is the configured default: executables refused, also in archives.
func defaultScanPolicy(tb testing.TB) fixedPolicy {
	tb.Helper()
	rules, err := contentrules.Compile([]api.ContentRule{{Name: "executable", Type: api.RuleExtension,
		Values: []string{"exe", "scr", "js"}, Action: api.ActionReject, Reason: "Executable attachments are not accepted"}}, "rules")
	if err != nil {
		tb.Fatal(err)
	}
	return fixedPolicy{&scan.ResolvedPolicy{SpamReject: 15, SpamTag: 6, VirusAction: api.ActionReject, OnFailure: api.FailTempfail, Rules: rules}}
}

// bigMessage streams a message of about size bytes: a text part and two base64 attachments, a PDF-like
// binary and a zip archive of about 2 MiB (so that the content rules open an archive). The content is
// pseudo-random from a fixed seed: the same every run.
type bigMessage struct {
	r io.Reader
}

// lcg is a deterministic byte stream (a linear congruential generator).
type lcg struct{ x uint32 }

func (g *lcg) Read(p []byte) (int, error) {
	for i := range p {
		g.x = g.x*1664525 + 1013904223
		p[i] = byte(g.x >> 24)
	}
	return len(p), nil
}

// base64Lines encodes r as base64 in lines of 76 characters (RFC 2045 §6.8).
type base64Lines struct {
	src  io.Reader
	left int64 // source bytes still to encode
	buf  []byte
	out  []byte
	in   [57 * 64]byte
}

func (b *base64Lines) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.left <= 0 {
			return 0, io.EOF
		}
		n := int(min(int64(len(b.in)), b.left))
		if _, err := io.ReadFull(b.src, b.in[:n]); err != nil {
			return 0, err
		}
		b.left -= int64(n)
		b.buf = b.buf[:0]
		for line := b.in[:n]; len(line) > 0; {
			k := min(len(line), 57)
			b.buf = base64.StdEncoding.AppendEncode(b.buf, line[:k])
			b.buf = append(b.buf, '\r', '\n')
			line = line[k:]
		}
		b.out = b.buf
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

func newBigMessage(tb testing.TB, size int64) *bigMessage {
	tb.Helper()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for i := range 4 {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("data/part%d.bin", i), Method: zip.Store})
		if err != nil {
			tb.Fatal(err)
		}
		io.CopyN(w, &lcg{uint32(i)}, 512<<10)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	head := "From: <alice@acme.test>\r\nTo: <bob@dest.test>\r\nSubject: Quarterly report\r\nDate: " +
		time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC).Format(time.RFC1123Z) + "\r\nMessage-ID: <big@acme.test>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=bnd\r\n\r\n" +
		"--bnd\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
		strings.Repeat("Please find the quarterly report and its data attached.\r\n", 100) +
		"--bnd\r\nContent-Type: application/zip; name=\"data.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	zip64 := (int64(zb.Len()) + 56) / 57 * 78
	mid := "--bnd\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	tail := "--bnd--\r\n"
	binLen := (size - int64(len(head)+len(mid)+len(tail)) - zip64) / 78 * 57
	return &bigMessage{r: io.MultiReader(strings.NewReader(head),
		&base64Lines{src: bytes.NewReader(zb.Bytes()), left: int64(zb.Len())},
		strings.NewReader(mid), &base64Lines{src: &lcg{7}, left: binLen}, strings.NewReader(tail))}
}

// sendStream sends the message read from msg (from alice@acme.test to bob@dest.test), and returns the
// error of the reply to the end of data.
func sendStream(tb testing.TB, addr string, msg io.Reader) error {
	tb.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("mta.acme.test"); err != nil {
		tb.Fatal(err)
	}
	if err := c.Mail("alice@acme.test", nil); err != nil {
		tb.Fatal(err)
	}
	if err := c.Rcpt("bob@dest.test", nil); err != nil {
		tb.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(w, msg); err != nil {
		tb.Fatal(err)
	}
	err = w.Close()
	c.Quit()
	return err
}

// scanServer starts a test server that scans with a real clamd and rspamd and the default content rules.
func scanServer(tb testing.TB, maxSize int64) *testServer {
	tb.Helper()
	sc := scanners.Start(tb)
	clamd, err := scan.NewClamd(sc.Clamd, 4, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	rspamd, err := scan.NewRspamd(sc.Rspamd, 4, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	eng := scan.New(scan.Options{Scanners: []scan.Scanner{clamd, rspamd}, Policies: defaultScanPolicy(tb), Timeout: 60 * time.Second})
	return startServer(tb, func(o *Options) {
		o.Scan = eng
		o.MaxMessageSize = maxSize
		o.ReadTimeout, o.WriteTimeout = 60*time.Second, 60*time.Second
	})
}

// allocatedBy returns the heap bytes allocated while fn runs (by the whole process: the SMTP client and the
// server's session alike).
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

const bigSize = 20 << 20

// TestScanMemoryPerMessage: a 20 MB message scanned by clamd, rspamd and the content rules (which open its
// zip attachment) is accepted, and the heap allocated for it, client and server together, is far below its
// size: the scanners and the rules read it back from the spool file instead of a copy in memory.
func TestScanMemoryPerMessage(t *testing.T) {
	ts := scanServer(t, 32<<20)
	// A first message warms the scanners' connection pools.
	if err := sendStream(t, ts.addr, newBigMessage(t, 3<<20).r); err != nil {
		t.Fatal(err)
	}
	var err error
	msg := newBigMessage(t, bigSize)
	alloc := allocatedBy(func() { err = sendStream(t, ts.addr, msg.r) })
	if err != nil {
		t.Fatal(err)
	}
	envs := ts.q.all()
	if len(envs) != 2 || envs[1].Verdict != "clean" || envs[1].Size < bigSize {
		t.Fatalf("enqueued %+v", envs)
	}
	t.Logf("heap allocated for one %d-byte message with scanning: %d bytes (%.1f%% of its size)", envs[1].Size, alloc,
		100*float64(alloc)/float64(envs[1].Size))
	if alloc > bigSize/8 {
		t.Fatalf("%d bytes allocated for a %d-byte message: the message is copied in memory", alloc, bigSize)
	}
}

// BenchmarkScanLargeMessage reports the heap allocated per 20 MB message with scanning on (B/op), client and
// server together.
func BenchmarkScanLargeMessage(b *testing.B) {
	ts := scanServer(b, 32<<20)
	if err := sendStream(b, ts.addr, newBigMessage(b, 3<<20).r); err != nil {
		b.Fatal(err)
	}
	msgs := make([]*bigMessage, b.N)
	for i := range msgs {
		msgs[i] = newBigMessage(b, bigSize)
	}
	b.ReportAllocs()
	b.SetBytes(bigSize)
	b.ResetTimer()
	for i := range b.N {
		if err := sendStream(b, ts.addr, msgs[i].r); err != nil {
			b.Fatal(err)
		}
	}
}
