package smtpin

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"easymail/internal/queue"
)

// sessionSeeds are client byte streams (sent after the greeting) that reach every state of a session.
var sessionSeeds = []string{
	"EHLO a.test\r\nMAIL FROM:<alice@acme.test>\r\nRCPT TO:<bob@dest.test>\r\nDATA\r\nFrom: alice@acme.test\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n",
	"EHLO a.test\r\nMAIL FROM:<alice@acme.test> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<bob@dest.test> NOTIFY=FAILURE ORCPT=rfc822;bob@dest.test\r\nBDAT 44 LAST\r\nFrom: alice@acme.test\r\nSubject: x\r\n\r\nbody\r\nQUIT\r\n",
	"EHLO a.test\r\nMAIL FROM:<alice@acme.test>\r\nRCPT TO:<bob@dest.test>\r\nDATA\r\nFrom: alice@acme.test\r\n\r\nline\n.\nMAIL FROM:<x@evil.test>\r\n.\r\n",
	"EHLO a.test\r\nMAIL FROM:<alice@acme.test>\r\nRCPT TO:<bob@dest.test>\r\nDATA\r\nFrom: alice@acme.test\r\n\r\nline\r.\r\nRCPT TO:<x@evil.test>\r\n.\r\n",
	"EHLO a.test\r\nMAIL FROM:<alice@acme.test>\r\nRCPT TO:<\"john doe\"@dest.test>\r\nRCPT TO:<user%other.test@dest.test>\r\nRCPT TO:<a!b@dest.test>\r\nRCPT TO:<@relay.test:c@dest.test>\r\nRSET\r\nNOOP\r\nQUIT\r\n",
	"HELO a.test\r\nMAIL FROM:<>\r\nRCPT TO:<bob@dest.test>\r\nDATA\r\nFrom: MAILER-DAEMON@acme.test\r\n\r\n..dot\r\n.\r\n",
	"EHLO a.test\r\nMAIL FROM:<mallory@evil.test>\r\nVRFY root\r\nEXPN list\r\nHELP\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nSTARTTLS\r\nFOO\r\n\r\nQUIT\r\n",
	"EHLO a.test\r\nMAIL FROM:<alice@acme.test> SMTPUTF8\r\nRCPT TO:<j\u00f6rg@d\u00e9st.test>\r\nDATA\r\nFrom: alice@acme.test\r\n\r\n\x00\r\n.\r\n",
}

// queuedRe finds the queue ids of accepted messages in the server's replies.
var queuedRe = regexp.MustCompile(`250 2\.0\.0 Ok: queued as ([A-Za-z0-9]+)`)

// FuzzSession drives whole SMTP sessions of a registered client over loopback TCP with arbitrary client
// input. The server must never panic (go-smtp would answer "421 4.0.0 Internal server error"), every
// message that reaches the queue must have been answered "250 ... queued as ID", and what is queued must
// respect the relay's rules: the customer's sender domain, no routed recipient local part, and content
// without a bare CR, a bare LF or a NUL.
func FuzzSession(f *testing.F) {
	for _, s := range sessionSeeds {
		f.Add([]byte(s))
	}
	ts := startServer(f, func(o *Options) {
		o.ReadTimeout, o.WriteTimeout = time.Second, time.Second
		o.Protection = Protection{SessionTimeout: 5 * time.Second, DataTimeout: 2 * time.Second, MaxErrors: 20}
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		before := len(ts.q.all())
		out := runSession(t, ts.addr, in)
		if strings.Contains(out, "Internal server error") {
			t.Fatalf("the server panicked on %q:\n%s", in, out)
		}
		after := ts.q.all()[before:]
		ids := queuedRe.FindAllStringSubmatch(out, -1)
		if len(ids) != len(after) {
			t.Fatalf("%d messages queued, %d answered 250 queued, for %q:\n%s", len(after), len(ids), in, out)
		}
		for i, env := range after {
			if env.ID != ids[i][1] {
				t.Fatalf("queued %s, answered %s", env.ID, ids[i][1])
			}
			checkQueued(t, ts, env)
			ts.spool.Remove(env.ID)
		}
	})
}

// runSession sends in after the greeting, closes its side, and returns every reply until the server closes.
func runSession(t *testing.T, addr string, in []byte) string {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	greeting, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "220 ") {
		t.Fatalf("greeting %q: %v", greeting, err)
	}
	go func() {
		conn.Write(in)
		conn.(*net.TCPConn).CloseWrite()
	}()
	out, _ := io.ReadAll(br)
	return string(out)
}

// checkQueued checks one queued message against the relay's rules.
func checkQueued(t *testing.T, ts *testServer, env queue.Envelope) {
	if env.Sender != "" {
		_, _, domain, err := canonicalAddress(env.Sender, true)
		if err != nil || !(domain == "acme.test" || strings.HasSuffix(strings.ToLower(domain), ".acme.test") ||
			strings.EqualFold(domain, "acme.test")) {
			t.Fatalf("queued with sender %q (%v)", env.Sender, err)
		}
	}
	if len(env.Recipients) == 0 {
		t.Fatalf("queued %s without recipients", env.ID)
	}
	for _, r := range env.Recipients {
		i := strings.LastIndexByte(r.Address, '@')
		if i <= 0 || strings.ContainsAny(r.Address[:i], "%!\r\n\x00") {
			t.Fatalf("queued recipient %q", r.Address)
		}
	}
	f, err := ts.spool.Open(env.ID)
	if err != nil {
		t.Fatalf("queued %s without content: %v", env.ID, err)
	}
	defer f.Close()
	content, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if bad := bareLineEnding(append([]byte(env.Prefix), content...)); bad >= 0 {
		t.Fatalf("queued content has a bare CR, bare LF or NUL at %d: %q", bad, content)
	}
}

// bareLineEnding returns the offset of the first bare CR, bare LF or NUL in b, or -1.
func bareLineEnding(b []byte) int {
	for i, c := range b {
		switch {
		case c == 0:
			return i
		case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			return i
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			return i
		}
	}
	return -1
}

// FuzzMessage feeds arbitrary message content (as DATA delivers it, after the end marker and dot-stuffing
// are removed) through the line checker, the header section reader and the header From check. Nothing may
// panic, and content the line checker lets through entirely has no bare CR, bare LF or NUL.
func FuzzMessage(f *testing.F) {
	for _, s := range []string{
		"From: alice@acme.test\r\nSubject: x\r\n\r\nbody\r\n",
		"From: \"Alice\" <alice@acme.test>, bob@other.test\r\n\r\n",
		"From: =?utf-8?q?Al=C3=AFce?= <alice@acme.test>\r\nTo: undisclosed-recipients:;\r\n\r\n",
		"Subject: no from\r\n\r\n",
		"From: alice@acme.test\r\n continued\r\n\tmore\r\n\r\nline\n.\nMAIL FROM:<x@evil.test>\r\n",
		"From: a@acme.test\r\n\r\na\rb\r\n",
		"From:\r\n\r\n",
		"no header at all",
		"From: (comment) <@route.test:alice@acme.test>\r\n\r\n\x00",
		"From: alice@acme.test\r\nFrom: ceo@other.test\r\n\r\n",
		"From\t: alice@acme.test\r\nFROM: ceo@other.test\r\n\r\n",
		"From: alice@acme.test\r\nSender: ceo@other.test\r\nResent-From: a@acme.test\r\nResent-Sender: x@other.test\r\n\r\n",
		"From: alice@acme.test\r\nReply-To: anyone@other.test\r\nResent-From: a@acme.test\r\nResent-From: b@acme.test\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		lc := &lineChecker{r: bytes.NewReader(in)}
		passed, err := io.ReadAll(lc)
		if err == nil && lc.err == nil {
			if bad := bareLineEnding(passed); bad >= 0 {
				t.Fatalf("line checker let through a bare line ending at %d of %q", bad, in)
			}
		} else if lc.err == nil {
			t.Fatalf("read error without a refusal: %v", err)
		}
		raw, err := readHeaderSection(bufio.NewReaderSize(bytes.NewReader(in), 64<<10), defaultMaxHeaderSize, defaultMaxHeaderFields)
		if err != nil {
			return
		}
		hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		_ = decodeHeader(hdr.Get("Subject"))
		err = checkOriginators(hdr, true, func(d string) bool { return strings.EqualFold(d, "acme.test") })
		if err != nil {
			return
		}
		if len(hdr.Values("From")) != 1 || len(hdr.Values("Sender")) > 1 {
			t.Fatalf("accepted with %d From and %d Sender fields", len(hdr.Values("From")), len(hdr.Values("Sender")))
		}
		for _, f := range originatorFields {
			for _, v := range hdr.Values(f) {
				addrs, aerr := mail.ParseAddressList(v)
				if aerr != nil || len(addrs) == 0 {
					t.Fatalf("%s accepted but does not parse: %v", f, aerr)
				}
				for _, a := range addrs {
					if !strings.HasSuffix(strings.ToLower(a.Address), "@acme.test") {
						t.Fatalf("%s %q accepted for acme.test", f, a.Address)
					}
				}
			}
		}
	})
}

// FuzzAddress checks address canonicalisation on arbitrary addresses (as go-smtp hands them over, a quoted
// local part unquoted): no panic; an accepted address keeps its domain, has no control character, and its
// local part is either unchanged (a dot-string) or quoted so that unquoting gives it back.
func FuzzAddress(f *testing.F) {
	for _, s := range []string{"bob@dest.test", "john doe@dest.test", "a\"b@dest.test", "a\\b@dest.test",
		"user%other.test@dest.test", "a!b@dest.test", "user@other.test@dest.test", ".a..b.@dest.test", "j\u00f6rg@d\u00e9st.test",
		"x@[127.0.0.1]", "x@localhost", "@dest.test", "x@", "x@dest.test.", "x@-bad-.test", "x@xn--dst-bma.test"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, addr string, utf8 bool) {
		canon, local, domain, err := canonicalAddress(addr, utf8)
		if err != nil {
			return
		}
		_ = checkRecipientLocal(local)
		i := strings.LastIndexByte(addr, '@')
		if i < 0 || addr[i+1:] != domain || canon != local+"@"+domain {
			t.Fatalf("%q: canonical %q, local %q, domain %q", addr, canon, local, domain)
		}
		if strings.ContainsAny(canon, "\r\n\x00") {
			t.Fatalf("%q: canonical form %q has a control character", addr, canon)
		}
		orig := addr[:i]
		if local == orig {
			if !isDotString(local) {
				t.Fatalf("%q: local part %q left unquoted", addr, local)
			}
			return
		}
		if len(local) < 2 || local[0] != '"' || local[len(local)-1] != '"' {
			t.Fatalf("%q: local part %q neither kept nor quoted", addr, local)
		}
		var b strings.Builder
		q := local[1 : len(local)-1]
		for j := 0; j < len(q); j++ {
			if q[j] == '\\' {
				j++
				if j == len(q) {
					t.Fatalf("%q: quoted form %q ends in a backslash", addr, local)
				}
			} else if q[j] == '"' {
				t.Fatalf("%q: quoted form %q has an unescaped quote", addr, local)
			}
			b.WriteByte(q[j])
		}
		if b.String() != orig {
			t.Fatalf("%q: quoted form %q unquotes to %q", addr, local, b.String())
		}
	})
}
