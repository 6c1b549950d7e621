package portal_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"easymail/internal/api"
	"easymail/internal/config"
	"easymail/internal/testkit"
	"easymail/internal/testkit/testnode"
)

const password = "correct horse battery staple"

// world is a node with two customers (A: acme.test from 127.0.0.1, B: beta.test from 127.0.0.3), a fake MX
// for dest.test, one delivered message of each, and a portal user per role.
type world struct {
	n          *testnode.Node
	a, b       string
	msgA, msgB string
	users      map[string]api.PortalUser
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dns := testkit.NewDNS(t)
	mxp := testkit.ReserveMXPort(t)
	n := testnode.Start(t, testnode.Options{DNS: dns, DeliveryPort: mxp.Port(), Configure: func(c *config.Config) {
		c.Portal.SecureCookies = false // plain HTTP on loopback
	}})
	w := &world{n: n, users: map[string]api.PortalUser{}}
	w.a = n.AddCustomer(t, "Acme", "acme.test", "127.0.0.1")
	w.b = n.AddCustomer(t, "Beta", "beta.test", "127.0.0.3")
	mxp.NewMX(t, "127.0.0.11")
	dns.AddMX("dest.test", "mx.dest.test", 10)
	dns.AddA("mx.dest.test", "127.0.0.11")
	for _, u := range []api.PortalUserRequest{
		{Email: "op@ops.test", Role: "operator"}, {Email: "ex@ops.test", Role: "expert"},
		{Email: "ua@acme.test", Role: "customer", CustomerID: w.a}, {Email: "ub@beta.test", Role: "customer", CustomerID: w.b},
	} {
		u.Password = password
		var out api.PortalUser
		n.API(t, "POST", "/users", u, 201, &out)
		if out.Password != "" {
			t.Fatalf("a given password is echoed: %+v", out)
		}
		w.users[u.Email] = out
	}
	w.msgA = sendMail(t, n.SMTPAddr, "127.0.0.1", "alice@acme.test", "bob@dest.test", "Hello from Acme")
	w.msgB = sendMail(t, n.SMTPAddr, "127.0.0.3", "bea@beta.test", "carol@dest.test", "Hello from Beta")
	for _, id := range []string{w.msgA, w.msgB} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var tr api.Trace
			n.API(t, "GET", "/messages/"+id, nil, 200, &tr)
			if tr.Status == "delivered" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %s is %s", id, tr.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return w
}

// enablePortal opens the portal to a customer's users.
func (w *world) enablePortal(t *testing.T, id string) {
	t.Helper()
	w.n.API(t, "PATCH", "/customers/"+id, map[string]bool{"portal_enabled": true}, 200, nil)
}

func sendMail(t *testing.T, addr, localIP, from, to, subject string) string {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("mail.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		t.Fatal(err)
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(wc, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\nHello.\r\n", from, to, subject, strings.ReplaceAll(subject, " ", "."))
	resp, err := wc.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(resp.StatusText, "queued as ")
	if i < 0 {
		t.Fatalf("no queue id in %q", resp.StatusText)
	}
	return strings.TrimSpace(resp.StatusText[i+len("queued as "):])
}

// browser is an HTTP client with its own cookies that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	lang string
}

func (w *world) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: w.n.APIURL, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is a response read whole.
type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

func (b *browser) get(path string) page { b.t.Helper(); return b.do("GET", path, nil, nil) }

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the forms of a page.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	p := b.get(path)
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("GET %s: %d, no CSRF field in:\n%s", path, p.status, p.body)
	}
	return m[1]
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	return b.do("POST", path, form, nil)
}

// login logs in and returns the answer to POST /login.
func (b *browser) login(email, pw string) page {
	b.t.Helper()
	tok := b.csrf("/login")
	return b.post("/login", url.Values{"csrf": {tok}, "email": {email}, "password": {pw}})
}

func (b *browser) mustLogin(email string) {
	b.t.Helper()
	if p := b.login(email, password); p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		b.t.Fatalf("login %s: %d %s\n%s", email, p.status, p.header.Get("Location"), p.body)
	}
}
