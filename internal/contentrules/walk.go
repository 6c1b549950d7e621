package contentrules

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"mime"
	"path"
	"strings"

	"github.com/emersion/go-message"
)

// Limits of the MIME walk: what a hostile message can make it do.
const (
	// maxDepth bounds the nesting of multiparts, attached messages and archives.
	maxDepth = 8
	// maxParts bounds the parts visited in one message.
	maxParts = 1000
	// maxTextBytes is how much of each text part the body rules see.
	maxTextBytes = 1 << 20
	// maxArchiveBytes is the largest attached archive that is opened to list its files.
	maxArchiveBytes = 32 << 20
	// maxArchiveEntries bounds the files listed in one archive.
	maxArchiveEntries = 10000
)

// Part is one leaf of a message as the rules see it.
type Part struct {
	// ContentType is the lower-cased media type ("text/plain"); "text/plain" when absent.
	ContentType string
	// Filename is the attachment's file name ("" for none). For a file inside an archive it is the name in
	// the archive, and Archive is the archive's own name (with the archives it is in, "a.zip/b.zip").
	Filename string
	Archive  string
	// Text is the start of a text part's decoded content (nil for other parts).
	Text []byte
}

// Walk reads the message in msg and calls fn for each leaf part, for each attached message's parts, and for
// each file in an attached zip archive (nested archives too), within the limits above. A part that cannot
// be parsed is reported with what is known of it; the walk goes on. It returns the decoded header fields of
// the top-level message as "Name: value" lines, and an error only for a message whose header cannot be read.
func Walk(msg []byte, fn func(Part)) ([]string, error) {
	e, err := message.ReadWithOptions(bytes.NewReader(msg), &message.ReadOptions{MaxHeaderBytes: 1 << 20})
	if e == nil {
		return nil, err
	}
	var fields []string
	f := e.Header.Fields()
	for f.Next() {
		v, err := f.Text()
		if err != nil {
			v = f.Value()
		}
		fields = append(fields, f.Key()+": "+v)
	}
	w := walker{fn: fn}
	w.entity(e, 0)
	return fields, nil
}

type walker struct {
	fn    func(Part)
	parts int
}

func (w *walker) entity(e *message.Entity, depth int) {
	w.parts++
	if w.parts > maxParts || depth > maxDepth {
		return
	}
	ct, params, err := e.Header.ContentType()
	if err != nil || ct == "" {
		ct = "text/plain"
	}
	ct = strings.ToLower(ct)
	name := filename(e.Header, params)
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if p == nil || errors.Is(err, io.EOF) {
				// The end, or a part that cannot be parsed: the rest of this multipart is unreadable.
				return
			}
			w.entity(p, depth+1)
		}
	}
	switch {
	case ct == "message/rfc822" || ct == "message/global":
		w.fn(Part{ContentType: ct, Filename: name})
		inner, err := message.Read(io.LimitReader(e.Body, maxArchiveBytes))
		if inner != nil && (err == nil || message.IsUnknownCharset(err) || message.IsUnknownEncoding(err)) {
			w.entity(inner, depth+1)
		}
	case strings.HasPrefix(ct, "text/") && name == "":
		b, _ := io.ReadAll(io.LimitReader(e.Body, maxTextBytes))
		w.fn(Part{ContentType: ct, Text: b})
	default:
		p := Part{ContentType: ct, Filename: name}
		if strings.HasPrefix(ct, "text/") {
			p.Text, _ = io.ReadAll(io.LimitReader(e.Body, maxTextBytes))
		}
		w.fn(p)
		if isZip(ct, name) {
			b, err := io.ReadAll(io.LimitReader(e.Body, maxArchiveBytes+1))
			if err == nil && len(b) <= maxArchiveBytes {
				w.zip(b, displayName(name, "archive.zip"), depth+1)
			}
		}
	}
}

// zip reports the files of the zip archive b, named name, and descends into the zip archives in it.
func (w *walker) zip(b []byte, name string, depth int) {
	if depth > maxDepth {
		return
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return
	}
	for i, f := range zr.File {
		if i >= maxArchiveEntries {
			return
		}
		w.parts++
		if w.parts > maxParts*10 {
			return
		}
		base := f.Name
		if f.FileInfo().IsDir() {
			continue
		}
		ct := mime.TypeByExtension(path.Ext(strings.ToLower(base)))
		if i := strings.IndexByte(ct, ';'); i >= 0 {
			ct = ct[:i]
		}
		w.fn(Part{ContentType: ct, Filename: base, Archive: name})
		if isZip("", base) && f.UncompressedSize64 <= maxArchiveBytes {
			rc, err := f.Open()
			if err != nil {
				continue
			}
			inner, err := io.ReadAll(io.LimitReader(rc, maxArchiveBytes+1))
			rc.Close()
			if err == nil && len(inner) <= maxArchiveBytes {
				w.zip(inner, name+"/"+base, depth+1)
			}
		}
	}
}

// filename returns a part's file name: Content-Disposition filename, else Content-Type name.
func filename(h message.Header, ctParams map[string]string) string {
	if _, p, err := h.ContentDisposition(); err == nil && p["filename"] != "" {
		return p["filename"]
	} else if p != nil && p["filename"] != "" {
		return p["filename"]
	}
	return ctParams["name"]
}

func displayName(name, def string) string {
	if name == "" {
		return def
	}
	return name
}

// isZip tells whether a part is a zip archive, by its type or its name.
func isZip(ct, name string) bool {
	switch ct {
	case "application/zip", "application/x-zip-compressed", "application/x-zip":
		return true
	}
	return strings.HasSuffix(strings.ToLower(name), ".zip")
}
