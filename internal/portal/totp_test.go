package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"easymail/internal/portal/account"
	"easymail/internal/store"
)

var secretField = regexp.MustCompile(`name="secret" value="([A-Z2-7]+)"`)

// TestTOTPEnrolment: the account page shows the otpauth URI as an inline SVG QR code (no script, no style),
// the secret enabled through it is stored encrypted (the column does not hold it), and logging in needs
// the app's code.
func TestTOTPEnrolment(t *testing.T) {
	w := newWorld(t)
	op := w.browser(t)
	op.mustLogin("op@ops.test")
	p := op.get("/account")
	checkHTML(t, "/account", p)
	m := secretField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no secret on the account page:\n%s", p.body)
	}
	secret := m[1]
	if !strings.Contains(p.body, `<svg class="qr"`) || !strings.Contains(p.body, `<path d="M4 4h1v1h-1z`) ||
		!strings.Contains(p.body, "otpauth://totp/") {
		t.Fatalf("no QR code of the otpauth URI on the account page:\n%s", p.body)
	}
	code, _ := account.TOTPCode(secret, time.Now())
	if r := op.post("/account/totp", url.Values{"csrf": {op.csrf("/account")}, "secret": {secret}, "code": {code}}); r.status != http.StatusSeeOther {
		t.Fatalf("enable TOTP: %d\n%s", r.status, r.body)
	}
	db, err := store.Open(context.Background(), filepath.Join(w.n.Config.DataDir, "easymail.db"))
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	err = db.R.QueryRow(`SELECT totp_secret FROM portal_users WHERE email = 'op@ops.test'`).Scan(&stored)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if stored == "" || strings.Contains(stored, secret) || !strings.HasPrefix(stored, "enc1:") {
		t.Fatalf("the stored TOTP secret is %q (secret %s)", stored, secret)
	}
	// Logging in needs a code, and accepts the next one (the enrolment's is spent).
	b := w.browser(t)
	if r := b.login("op@ops.test", password); r.status == http.StatusSeeOther {
		t.Fatal("login without the code")
	}
	next, _ := account.TOTPCode(secret, time.Now().Add(30*time.Second))
	tok := b.csrf("/login")
	if r := b.post("/login", url.Values{"csrf": {tok}, "email": {"op@ops.test"}, "password": {password}, "code": {next}}); r.status != http.StatusSeeOther {
		t.Fatalf("login with the code: %d\n%s", r.status, r.body)
	}
}
