package smtpin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"easymail/internal/msgid"
	"easymail/internal/queue"
	"easymail/internal/scan"
	"easymail/internal/smtperr"
)

// Default bounds of the header section, which is held in memory and parsed (Options.MaxHeaderSize and
// MaxHeaderFields; docs/protection.md says why these values).
const (
	defaultMaxHeaderSize   = 102400
	defaultMaxHeaderFields = 1000
)

var (
	errHeaderTooLarge = smtperr.New(552, smtperr.PermTooBig, "Header section too large")
	errHeaderFields   = smtperr.New(552, smtperr.PermTooBig, "Too many header fields")
	errBadHeader      = smtperr.New(554, smtperr.PermMedia, "Malformed header section")
	errNoFrom         = smtperr.New(550, smtperr.PermPolicy, "Message has no header From")
	errBadFrom        = smtperr.New(550, smtperr.PermPolicy, "Header From cannot be parsed")
	errNoRecipients   = smtperr.New(503, smtperr.PermBadCommand, "Need RCPT before DATA")
	errClientGone     = smtperr.New(451, smtperr.TempBadConnection, "Connection lost during DATA")
	errLineTooLong    = smtperr.New(554, smtperr.PermMedia, "Message has a line over 2000 bytes; RFC 5322 allows 998")
)

func newQueueID() string { return msgid.New() }

// receive reads a message from r, checks it, writes it to the spool with our Received header, commits it
// durably and queues it. It returns the queue id.
//
// Every permanent refusal is logged once, here, as a message rejected at the data stage, with what was
// learnt of the message before it (its size is what was read of it).
func (s *session) receive(r io.Reader) (_ string, err error) {
	if !s.fromSet || len(s.rcpts) == 0 {
		return "", errNoRecipients
	}
	started := time.Now()
	lc := &lineChecker{r: r}
	c := s.current()
	env := queue.Envelope{
		ID:         newQueueID(),
		CustomerID: c.ID,
		Sender:     s.from,
		Recipients: s.rcpts,
		ClientIP:   s.ip.String(),
		HELO:       s.conn.Hostname(),
		SMTPUTF8:   s.mailOpts.UTF8,
		EightBit:   s.mailOpts.Body == smtp.Body8BitMIME || s.mailOpts.Body == smtp.BodyBinaryMIME,
		DSNRet:     string(s.mailOpts.Return),
		EnvID:      s.mailOpts.EnvelopeID,
		Received:   started,
	}
	if s.tls {
		env.TLS = tlsDescription(s.conn)
	}
	defer func() {
		if e := smtperr.From(err); e != nil && !e.Temporary() {
			if env.Size == 0 {
				env.Size = lc.n
			}
			env.Stage = queue.StageData
			s.logRefusal(env, e)
		}
	}()
	br := bufio.NewReaderSize(lc, 64<<10)
	rawHeader, err := readHeaderSection(br, s.s.o.MaxHeaderSize, s.s.o.MaxHeaderFields)
	if err != nil {
		return "", s.dataError(lc, err)
	}
	hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(rawHeader)))
	if err != nil {
		return "", errBadHeader.Wrap(err)
	}
	env.MessageID = strings.Trim(strings.TrimSpace(hdr.Get("Message-Id")), "<>")
	env.Subject = decodeHeader(hdr.Get("Subject"))
	env.HeaderFrom = decodeHeader(hdr.Get("From"))

	if n := len(hdr.Values("Received")); n >= s.s.o.MaxReceived {
		return "", smtperr.MailLoop
	}
	if !c.MaySend() {
		return "", smtperr.CustomerDeactivated
	}
	if err := checkOriginators(hdr, c.AntiSpoofing, c.DomainAllowed); err != nil {
		return "", err
	}
	if c.TopologyHiding {
		hdr.Del("Received")
		hdr.Del("X-Originating-Ip")
	}
	if env.MessageID == "" {
		// A message without Message-ID could not be traced by the customer or the receiver (RFC 5322 §3.6.4
		// says it SHOULD have one); the relay adds it as a submission server would.
		env.MessageID = env.ID + "@" + s.s.o.Hostname
		hdr.Set("Message-Id", "<"+env.MessageID+">")
	}

	s.addUnsubscribe(c, env, &hdr) // before signing: the fields are signed

	sc := s.beginScan(c.ID, &hdr)
	defer sc.close()
	sig := s.beginSigning(c.ID, hdr)
	w, err := s.s.o.Spool.Create(env.ID)
	if err != nil {
		sig.abort()
		return "", smtperr.LocalError.Wrap(err)
	}
	committed := false
	defer func() {
		if !committed {
			sig.abort()
			w.Abort()
		}
	}()
	out := sig.writer(w)
	if err := textproto.WriteHeader(out, hdr); err != nil {
		return "", smtperr.LocalError.Wrap(err)
	}
	if _, err := io.Copy(out, br); err != nil {
		return "", s.dataError(lc, err)
	}
	if lc.err != nil {
		return "", lc.err
	}
	outcome, err := s.finishScan(sc, w, &env)
	if err != nil {
		return "", err
	}
	if e := scanRefusal(outcome); e != nil {
		env.Size = w.Size()
		return "", e
	}
	// DKIM-Signature fields follow our Received field (and the scan's fields) and precede the content they sign.
	env.Prefix = s.receivedHeader(env, c.TopologyHiding)
	if outcome != nil {
		env.Prefix += outcome.Headers
	}
	env.Prefix += s.finishSigning(sig)
	env.Auth = sig.auth()
	env.Size = w.Size() + int64(len(env.Prefix))
	commitStart := time.Now()
	if err := w.Commit(); err != nil {
		return "", smtperr.LocalError.Wrap(err)
	}
	committed = true
	if outcome != nil && outcome.Action == scan.Quarantine {
		return s.quarantine(env, outcome, sc)
	}
	if err := s.s.o.Queue.Enqueue(context.Background(), env); err != nil {
		s.s.o.Spool.Remove(env.ID)
		return "", smtperr.LocalError.Wrap(err)
	}
	s.s.m.commitTime.Observe(time.Since(commitStart).Seconds())
	s.s.m.bytes.Add(float64(env.Size))
	s.log.Info("smtp: accepted", "queue_id", env.ID, "from", env.Sender, "rcpts", len(env.Recipients),
		"size", env.Size, "message_id", env.MessageID)
	return env.ID, nil
}

// dataError maps an error met while reading DATA to its reply.
func (s *session) dataError(lc *lineChecker, err error) error {
	var se *smtp.SMTPError
	switch {
	case lc.err != nil:
		return lc.err
	case errors.As(err, &se) && se.Code == smtp.ErrDataTooLarge.Code:
		return smtperr.TooLarge
	case errors.Is(err, smtp.ErrTooLongLine):
		return errLineTooLong
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errClientGone.Wrap(err)
	}
	var e *smtperr.Error
	if errors.As(err, &e) {
		return e
	}
	return errClientGone.Wrap(err)
}

// readHeaderSection reads up to and including the blank line that ends the header section (or to the end
// of a message that has no body). A header section over maxBytes, or with more than maxFields fields, is
// refused as soon as the limit is passed, before it is parsed: parsing and signing cost grows with the
// number of fields.
func readHeaderSection(br *bufio.Reader, maxBytes, maxFields int) ([]byte, error) {
	var buf bytes.Buffer
	fields := 0
	lineStart := true
	for {
		line, err := br.ReadSlice('\n')
		// A field starts on a line that does not start with white space (RFC 5322 §2.2.3: folding).
		if lineStart && len(line) > 0 && line[0] != ' ' && line[0] != '\t' && line[0] != '\r' {
			if fields++; fields > maxFields {
				return nil, errHeaderFields.Wrap(fmt.Errorf("more than %d fields", maxFields))
			}
		}
		lineStart = !errors.Is(err, bufio.ErrBufferFull)
		buf.Write(line)
		if buf.Len() > maxBytes {
			return nil, errHeaderTooLarge.Wrap(fmt.Errorf("more than %d bytes", maxBytes))
		}
		if !lineStart {
			continue
		}
		if err == io.EOF {
			if buf.Len() > 0 && !bytes.HasSuffix(buf.Bytes(), []byte("\r\n")) {
				buf.WriteString("\r\n")
			}
			buf.WriteString("\r\n")
			return buf.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		if string(line) == "\r\n" {
			return buf.Bytes(), nil
		}
	}
}

// receivedHeader is our trace field (RFC 5321 §4.4). With topology hiding the client's name and address are
// left out, so nothing of the customer's network leaks to the receiver.
func (s *session) receivedHeader(env queue.Envelope, hide bool) string {
	proto := "ESMTP"
	if s.tls {
		proto = "ESMTPS"
	}
	if env.SMTPUTF8 {
		proto = "UTF8" + proto
	}
	var b strings.Builder
	b.WriteString("Received: ")
	if !hide {
		fmt.Fprintf(&b, "from %s ([%s])\r\n\t", sanitize(s.conn.Hostname()), s.ip)
	}
	fmt.Fprintf(&b, "by %s (Easymail) with %s id %s", s.s.o.Hostname, proto, env.ID)
	if len(env.Recipients) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", sanitize(env.Recipients[0].Address))
	}
	fmt.Fprintf(&b, "; %s\r\n", env.Received.Format(time.RFC1123Z))
	return b.String()
}

// sanitize keeps client-supplied text from breaking our header.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '(' || r == ')' {
			return '_'
		}
		return r
	}, s)
}

var wordDecoder = mime.WordDecoder{}

func decodeHeader(v string) string {
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}

func tlsDescription(c *smtp.Conn) string {
	st, ok := c.TLSConnectionState()
	if !ok {
		return ""
	}
	return tlsVersionName(st.Version) + " " + cipherName(st.CipherSuite)
}

// lineChecker passes message bytes through and stops at the first byte sequence that a next hop could read
// as a different line structure: a bare CR, a bare LF, or a NUL (RFC 5321 §2.3.8; SMTP smuggling,
// CVE-2023-51764). The end of data (<CR><LF>.<CR><LF>) has already been consumed by go-smtp, which
// recognises no other end marker.
type lineChecker struct {
	r      io.Reader
	prevCR bool
	err    *smtperr.Error
	// n counts the bytes read.
	n int64
}

func (l *lineChecker) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	for i := 0; i < n; {
		if l.prevCR {
			if p[i] != '\n' {
				l.err = smtperr.BareLineEnding
				return i, l.err
			}
			l.prevCR = false
			i++
			continue
		}
		j := bytes.IndexAny(p[i:n], "\r\n\x00")
		if j < 0 {
			break
		}
		i += j
		switch p[i] {
		case '\r':
			l.prevCR = true
			i++
		case '\n':
			l.err = smtperr.BareLineEnding
			return i, l.err
		default:
			l.err = smtperr.NULByte
			return i, l.err
		}
	}
	if err == io.EOF && l.prevCR {
		l.err = smtperr.BareLineEnding
		return n, l.err
	}
	return n, err
}
