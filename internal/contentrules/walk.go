package contentrules

import (
	"archive/zip"
	"errors"
	"io"
	"math"
	"mime"
	"path"
	"strings"
	"time"

	"github.com/emersion/go-message"
)

// maxTextBytes is how much of each text part the body rules see.
const maxTextBytes = 1 << 20

// dirBytesPerEntry bounds the central directory bytes read per archive entry still in the budget, so that
// the directory of an archive with too many entries is not parsed into memory whole before it is counted.
const dirBytesPerEntry = 256

// errStopped is returned by the walk's readers once the walk is over budget: it unwinds the parsers.
var errStopped = errors.New("contentrules: walk stopped")

// Part is one leaf of a message as the rules see it.
type Part struct {
	// ContentType is the lower-cased media type ("text/plain"); "text/plain" when absent.
	ContentType string
	// Filename is the attachment's file name ("" for none). For a file inside an archive it is the name in
	// the archive, and Archive is the archive's own name (with the archives it is in, "a.zip/b.zip").
	Filename string
	Archive  string
	// Text is the start of a text part's decoded content (nil for other parts). It is valid only during
	// the call of the walk's function: copy it to keep it.
	Text []byte
}

// Walked is what a walk found besides the parts.
type Walked struct {
	// Fields are the decoded header fields of the top-level message as "Name: value" lines (nil when the
	// header cannot be read).
	Fields []string
	// Budget names the limit the message went over ("" for none); the walk stopped there.
	Budget string
	Stats  Stats
}

// Walk reads the message from r and calls fn for each leaf part, for each attached message's parts, and
// for each file in an attached zip archive (nested archives too), within lim; fn returns false to stop the
// walk. A part that cannot be parsed is reported with what is known of it; the walk goes on. The walk
// holds little in memory whatever the size of the message: the start of one text part, and archives up to
// 256 KiB (larger ones go to scratch files in lim.ScratchDir).
//
// The error is a local failure only: r or a scratch file could not be read or written, so the walk is
// incomplete. A malformed message is not an error.
func Walk(r io.Reader, lim Limits, fn func(Part) bool) (Walked, error) {
	lim = lim.withDefaults()
	w := &walker{lim: lim, fn: fn, deadline: lim.now().Add(lim.MaxTime)}
	src := &walkReader{w: w, r: r}
	e, err := message.ReadWithOptions(src, &message.ReadOptions{MaxHeaderBytes: 1 << 20})
	var out Walked
	// A header that cannot be read leaves nothing to walk; that is not a failure, unless reading failed.
	if e != nil && (err == nil || message.IsUnknownCharset(err) || message.IsUnknownEncoding(err)) {
		f := e.Header.Fields()
		for f.Next() {
			v, err := f.Text()
			if err != nil {
				v = f.Value()
			}
			out.Fields = append(out.Fields, f.Key()+": "+v)
		}
		w.entity(e, 0)
	}
	out.Budget, out.Stats = w.over, w.stats
	return out, w.err
}

type walker struct {
	lim      Limits
	fn       func(Part) bool
	deadline time.Time
	stats    Stats
	// over is the budget exceeded, err a local failure, stop set when fn asked to stop.
	over string
	err  error
	stop bool
	// text, copyBuf and attachBuf (an attached archive's spill memory) are reused for every part.
	text      []byte
	copyBuf   []byte
	attachBuf []byte
}

// halted tells whether the walk is over.
func (w *walker) halted() bool { return w.over != "" || w.err != nil || w.stop }

func (w *walker) exceed(budget string) {
	if w.over == "" {
		w.over = budget
	}
}

// inTime checks the time budget.
func (w *walker) inTime() bool {
	if w.over == "" && w.lim.now().After(w.deadline) {
		w.exceed(BudgetTime)
	}
	return w.over == ""
}

// fail records a local failure (the first one).
func (w *walker) fail(err error) {
	if w.err == nil && err != nil && !errors.Is(err, errStopped) {
		w.err = err
	}
}

// deeper checks the depth budget for depth.
func (w *walker) deeper(depth int) bool {
	if depth > w.lim.MaxDepth {
		w.exceed(BudgetDepth)
		return false
	}
	w.stats.Depth = max(w.stats.Depth, depth)
	return true
}

func (w *walker) visit(p Part) {
	if !w.fn(p) {
		w.stop = true
	}
}

func (w *walker) entity(e *message.Entity, depth int) {
	if w.halted() || !w.deeper(depth) || !w.inTime() {
		return
	}
	w.stats.Parts++
	if w.stats.Parts > w.lim.MaxParts {
		w.exceed(BudgetParts)
		return
	}
	ct, params, err := e.Header.ContentType()
	if err != nil || ct == "" {
		ct = "text/plain"
	}
	ct = strings.ToLower(ct)
	name := filename(e.Header, params)
	if mr := e.MultipartReader(); mr != nil {
		for !w.halted() {
			p, err := mr.NextPart()
			if p == nil || err != nil {
				// The end, or a part that cannot be parsed: the rest of this multipart is unreadable.
				return
			}
			w.entity(p, depth+1)
		}
		return
	}
	switch {
	case ct == "message/rfc822" || ct == "message/global":
		w.visit(Part{ContentType: ct, Filename: name})
		if w.halted() {
			return
		}
		inner, err := message.Read(e.Body)
		if inner != nil && (err == nil || message.IsUnknownCharset(err) || message.IsUnknownEncoding(err)) {
			w.entity(inner, depth+1)
		}
	case strings.HasPrefix(ct, "text/") && name == "":
		w.visit(Part{ContentType: ct, Text: w.readText(e.Body)})
	default:
		p := Part{ContentType: ct, Filename: name}
		if strings.HasPrefix(ct, "text/") {
			p.Text = w.readText(e.Body)
		}
		w.visit(p)
		if isZip(ct, name) && !w.halted() && !w.lim.NoArchives {
			w.attachedZip(e.Body, displayName(name, "archive.zip"), depth+1)
		}
	}
}

// readText returns the start of a text part, in the walker's reused buffer.
func (w *walker) readText(r io.Reader) []byte {
	if w.text == nil {
		w.text = make([]byte, 0, 32<<10)
	}
	b := w.text[:0]
	lr := io.LimitReader(r, maxTextBytes)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			break
		}
	}
	w.text = b
	return b
}

// attachedZip decodes an attached archive (base64, usually) and lists its files.
func (w *walker) attachedZip(body io.Reader, name string, depth int) {
	if !w.deeper(depth) {
		return
	}
	if w.attachBuf == nil {
		w.attachBuf = make([]byte, 0, spillMem)
	}
	// Attached archives are never opened while another one is: one memory buffer serves them all.
	sp := &spill{dir: w.lim.ScratchDir, mem: w.attachBuf[:0]}
	defer sp.Close()
	if w.copyBuf == nil {
		w.copyBuf = make([]byte, 32<<10)
	}
	_, err := io.CopyBuffer(sp, body, w.copyBuf)
	var se *scratchError
	if errors.As(err, &se) {
		w.fail(err)
	}
	if w.halted() {
		return
	}
	// A decoding error leaves what could be decoded, which is opened like the rest (and usually fails).
	w.zip(sp.readerAt(), sp.n, name, depth)
}

// zip reports the files of the zip archive in ra, named name, and descends into the zip archives in it.
func (w *walker) zip(ra io.ReaderAt, size int64, name string, depth int) {
	if w.halted() || !w.deeper(depth) || !w.inTime() {
		return
	}
	left := w.lim.MaxArchiveEntries - w.stats.Entries
	dr := &dirReaderAt{w: w, ra: ra, left: 128<<10 + int64(max(left, 0))*dirBytesPerEntry}
	zr, err := zip.NewReader(dr, size)
	if dr.capped {
		w.exceed(BudgetEntries)
		return
	}
	if w.halted() || err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return
	}
	dr.left = math.MaxInt64
	w.stats.Archives++
	for _, f := range zr.File {
		if w.halted() || !w.inTime() {
			return
		}
		w.stats.Entries++
		if w.stats.Entries > w.lim.MaxArchiveEntries {
			w.exceed(BudgetEntries)
			return
		}
		if f.FileInfo().IsDir() {
			continue
		}
		base := f.Name
		ct := mime.TypeByExtension(path.Ext(strings.ToLower(base)))
		if i := strings.IndexByte(ct, ';'); i >= 0 {
			ct = ct[:i]
		}
		w.visit(Part{ContentType: ct, Filename: base, Archive: name})
		if isZip("", base) && !w.halted() {
			w.innerZip(f, ra, name+"/"+base, depth+1)
		}
	}
}

// innerZip opens the archive f found in an archive (whose content is outer), within the budgets: a stored
// entry is read in place, a compressed one is inflated to a spill after its declared size is checked
// against the decompressed budget (archive/zip never returns more than the declared size).
func (w *walker) innerZip(f *zip.File, outer io.ReaderAt, name string, depth int) {
	if !w.deeper(depth) {
		return
	}
	if f.Method == zip.Store && f.CompressedSize64 == f.UncompressedSize64 && f.Flags&0x1 == 0 {
		if off, err := f.DataOffset(); err == nil && f.UncompressedSize64 <= math.MaxInt64 {
			w.zip(io.NewSectionReader(outer, off, int64(f.UncompressedSize64)), int64(f.UncompressedSize64), name, depth)
			return
		}
	}
	if f.UncompressedSize64 > uint64(w.lim.MaxDecompressedBytes-w.stats.Decompressed) {
		w.exceed(BudgetDecompressed)
		return
	}
	rc, err := f.Open()
	if err != nil {
		return
	}
	sp := &spill{dir: w.lim.ScratchDir, size: int64(f.UncompressedSize64)}
	defer sp.Close()
	if w.copyBuf == nil {
		w.copyBuf = make([]byte, 32<<10)
	}
	_, err = io.CopyBuffer(sp, &inflateReader{w: w, r: rc}, w.copyBuf)
	rc.Close()
	var se *scratchError
	if errors.As(err, &se) {
		w.fail(err)
	}
	if w.halted() || err != nil {
		// A corrupt entry (bad data, wrong checksum) is not opened.
		return
	}
	w.zip(sp.readerAt(), sp.n, name, depth)
}

// walkReader is the message being walked: it checks the time budget and records read failures.
type walkReader struct {
	w *walker
	r io.Reader
}

func (r *walkReader) Read(p []byte) (int, error) {
	if r.w.halted() || !r.w.inTime() {
		return 0, errStopped
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.w.fail(err)
	}
	return n, err
}

// inflateReader counts the bytes inflated from an archive entry, and checks the time budget.
type inflateReader struct {
	w *walker
	r io.Reader
}

func (r *inflateReader) Read(p []byte) (int, error) {
	if r.w.halted() || !r.w.inTime() {
		return 0, errStopped
	}
	n, err := r.r.Read(p)
	r.w.stats.Decompressed += int64(n)
	if r.w.stats.Decompressed > r.w.lim.MaxDecompressedBytes {
		// Not reached: the entry's declared size was within the budget, and archive/zip returns no more.
		r.w.exceed(BudgetDecompressed)
		return n, errStopped
	}
	return n, err
}

// dirReaderAt is an archive as zip.NewReader reads it: the bytes it may read are capped (its central
// directory is parsed whole into memory), and read failures are local failures.
type dirReaderAt struct {
	w      *walker
	ra     io.ReaderAt
	left   int64
	capped bool
}

func (d *dirReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if d.w.halted() {
		return 0, errStopped
	}
	if int64(len(p)) > d.left {
		d.capped = true
		return 0, errStopped
	}
	d.left -= int64(len(p))
	n, err := d.ra.ReadAt(p, off)
	if err != nil && err != io.EOF {
		d.w.fail(err)
	}
	return n, err
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
