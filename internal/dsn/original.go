package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
)

// returned is the part of the original message a report carries.
type returned struct {
	// data is the content with CRLF line endings; nil when nothing is attached.
	data []byte
	// headersOnly is set when data is the header section only.
	headersOnly bool
	// truncated is set when data was cut to the size limit.
	truncated bool
	// fullDowngraded is set when the whole message was asked for but only its header section is attached,
	// because the header alone reached the size limit or the body could not be carried in MIME.
	fullDowngraded bool
	// omitted explains why nothing is attached ("" when something is).
	omitted string
	// eightBit is set when data has octets above 127; utf8Header when its header section does.
	eightBit   bool
	utf8Header bool
}

// readOriginal reads what a report returns of the original message: the whole message when full, otherwise
// its header section, in either case at most max bytes (after line endings are normalised to CRLF). A body
// is cut after its last complete line, a header section after its last complete field. When the original
// cannot travel in a message/rfc822 part (a NUL octet, or a line longer than 998 octets, RFC 5322 §2.1.1 and
// RFC 2046 §5.2.1), the header section is attached instead, or nothing when that too is unfit.
func readOriginal(r io.Reader, max int64, full bool) (returned, error) {
	if r == nil || max <= 0 {
		return returned{omitted: "no original content was supplied"}, nil
	}
	limit := max + 1
	if max >= math.MaxInt64-1 {
		limit = math.MaxInt64
	}
	br := bufio.NewReader(io.LimitReader(r, limit))
	var raw []byte
	for {
		line, err := br.ReadSlice('\n')
		raw = append(raw, line...)
		if !full && (bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n"))) {
			break // end of the header section
		}
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return returned{}, fmt.Errorf("dsn: reading the original message: %w", err)
		}
	}
	more := int64(len(raw)) > max
	data := normalizeCRLF(raw)
	if int64(len(data)) > max {
		more = true
	}

	var out returned
	hdrEnd := headerEnd(data) // -1 when no blank line was seen
	if full && !more {
		out.data = data
	} else if full && hdrEnd >= 0 && int64(hdrEnd) <= max {
		// Cut the body after its last complete line within the limit.
		out.data = data[:bytes.LastIndex(data[:max], []byte("\r\n"))+2]
		out.truncated = true
	} else {
		hdr := data
		if hdrEnd >= 0 {
			hdr = data[:hdrEnd-2] // the fields, without the blank line
		}
		out.headersOnly = true
		out.fullDowngraded = full
		out.data, out.truncated = cutHeader(hdr, max, more && hdrEnd < 0)
	}

	if !fitForMIME(out.data) {
		if !out.headersOnly {
			hdr := out.data
			if hdrEnd >= 0 {
				hdr = data[:hdrEnd-2]
			}
			out.data, out.truncated = cutHeader(hdr, max, more && hdrEnd < 0)
			out.headersOnly, out.fullDowngraded = true, true
		}
		if !fitForMIME(out.data) {
			return returned{omitted: "its header section has a NUL octet or a line longer than 998 octets"}, nil
		}
	}
	if len(out.data) == 0 {
		return returned{omitted: "it was empty or its first header field alone exceeded the size limit"}, nil
	}
	out.eightBit = hasHighBit(out.data)
	if h := headerEnd(out.data); h >= 0 {
		out.utf8Header = hasHighBit(out.data[:h])
	} else {
		out.utf8Header = hasHighBit(out.data)
	}
	return out, nil
}

// normalizeCRLF returns b with every bare LF and bare CR turned into CRLF.
func normalizeCRLF(b []byte) []byte {
	if bytes.Count(b, []byte("\n")) == bytes.Count(b, []byte("\r\n")) && bytes.Count(b, []byte("\r")) == bytes.Count(b, []byte("\r\n")) {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/32)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '\r':
			out = append(out, '\r', '\n')
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// headerEnd returns the length of the header section of a CRLF message including the blank line that ends it,
// or -1 when there is no blank line.
func headerEnd(data []byte) int {
	if bytes.HasPrefix(data, []byte("\r\n")) {
		return 2
	}
	if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return -1
}

// cutHeader returns the header fields hdr cut to at most max bytes after the last complete field (a line end
// not followed by a continuation line). incomplete tells that hdr itself stops inside the header section, so
// that its last field may be partial.
func cutHeader(hdr []byte, max int64, incomplete bool) ([]byte, bool) {
	if !incomplete && int64(len(hdr)) <= max {
		if len(hdr) > 0 && !bytes.HasSuffix(hdr, []byte("\r\n")) {
			hdr = append(hdr[:len(hdr):len(hdr)], '\r', '\n')
		}
		return hdr, false
	}
	end := len(hdr)
	if int64(end) > max {
		end = int(max)
	}
	for p := end; p >= 2; p-- {
		if hdr[p-2] == '\r' && hdr[p-1] == '\n' && p < len(hdr) && !isWSP(hdr[p]) {
			return hdr[:p], true
		}
	}
	return nil, true
}

// fitForMIME reports whether data can be carried in a 7bit or 8bit MIME part: no NUL and no line over 998
// octets (RFC 2045 §2.7 and §2.8).
func fitForMIME(data []byte) bool {
	if bytes.IndexByte(data, 0) >= 0 {
		return false
	}
	for len(data) > 0 {
		i := bytes.Index(data, []byte("\r\n"))
		if i < 0 {
			return len(data) <= hardLineLen
		}
		if i > hardLineLen {
			return false
		}
		data = data[i+2:]
	}
	return true
}

// hasHighBit reports whether b has an octet above 127.
func hasHighBit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}
