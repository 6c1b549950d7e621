package account

import (
	"context"
	"database/sql"
	"encoding/base32"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"easymail/internal/fielderr"
	"easymail/internal/store"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)} }
func openStore(t *testing.T) (*Store, *clock) {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := newClock()
	return &Store{DB: db, Cost: bcrypt.MinCost, Now: c.now, Secrets: masterKey(t)}, c
}

func addCustomer(t *testing.T, db *store.DB, id string, enabled bool) {
	t.Helper()
	err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO customers (id, name, contact_email, pool, status, created_at, updated_at, portal_enabled)
			VALUES (?, 'x', 'x@x.example', 'default', 'active', 0, 0, ?)`, id, enabled)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// RFC 6238 Appendix B, SHA-1 (the last six digits of its eight-digit values).
func TestTOTPVectors(t *testing.T) {
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))
	for _, v := range []struct {
		unix int64
		code string
	}{{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"}, {1234567890, "005924"}, {2000000000, "279037"}} {
		got, err := TOTPCode(secret, time.Unix(v.unix, 0))
		if err != nil || got != v.code {
			t.Errorf("T=%d: %q %v, want %q", v.unix, got, err, v.code)
		}
	}
}

func TestUsersAndLogin(t *testing.T) {
	ctx := context.Background()
	s, clk := openStore(t)
	addCustomer(t, s.DB, "C1", false)
	const pw = "correct horse battery"
	for _, bad := range []struct {
		in    NewUser
		field string
	}{
		{NewUser{Email: "nope", Role: "operator", Password: pw}, "email"},
		{NewUser{Email: "a@x.example", Role: "admin", Password: pw}, "role"},
		{NewUser{Email: "a@x.example", Role: "customer", Password: pw}, "customer_id"},
		{NewUser{Email: "a@x.example", Role: "customer", CustomerID: "C9", Password: pw}, "customer_id"},
		{NewUser{Email: "a@x.example", Role: "expert", CustomerID: "C1", Password: pw}, "customer_id"},
		{NewUser{Email: "a@x.example", Role: "operator", Password: "short"}, "password"},
	} {
		var fe *fielderr.Error
		if _, err := s.Create(ctx, bad.in); !errors.As(err, &fe) || fe.Field != bad.field {
			t.Errorf("Create(%+v) = %v, want a field error on %s", bad.in, err, bad.field)
		}
	}
	op, err := s.Create(ctx, NewUser{Email: "Ops@X.example", Role: "operator", Password: pw})
	if err != nil || op.Email != "ops@x.example" {
		t.Fatalf("create operator: %+v %v", op, err)
	}
	var ce *fielderr.Error
	if _, err := s.Create(ctx, NewUser{Email: "ops@x.example", Role: "expert", Password: pw}); !errors.As(err, &ce) || !ce.Conflict {
		t.Fatalf("duplicate e-mail: %v", err)
	}
	cu, err := s.Create(ctx, NewUser{Email: "u@c1.example", Role: "customer-user", CustomerID: "C1", Password: pw})
	if err != nil || cu.Role != RoleCustomer {
		t.Fatalf("create customer user: %+v %v", cu, err)
	}

	if _, err := s.Login(ctx, "ops@x.example", "wrong password!", ""); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := s.Login(ctx, "nobody@x.example", pw, ""); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	if u, err := s.Login(ctx, "OPS@x.example", pw, ""); err != nil || u.ID != op.ID {
		t.Fatalf("login: %+v %v", u, err)
	}
	// The customer's portal is off: its user cannot log in until it is enabled.
	if _, err := s.Login(ctx, "u@c1.example", pw, ""); !errors.Is(err, ErrPortalDisabled) {
		t.Fatalf("portal disabled: %v", err)
	}
	s.DB.Tx(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(`UPDATE customers SET portal_enabled = 1`); return err })
	if _, err := s.Login(ctx, "u@c1.example", pw, ""); err != nil {
		t.Fatalf("portal enabled: %v", err)
	}
	if list, _ := s.List(ctx, "C1"); len(list) != 1 || list[0].ID != cu.ID {
		t.Fatalf("customer's users: %+v", list)
	}

	// TOTP: enrolment needs the current code; then login needs one, and never the same one twice.
	secret, _ := NewTOTPSecret()
	if err := s.EnableTOTP(ctx, op.ID, secret, "000000"); err == nil {
		t.Fatal("TOTP enabled with a wrong code")
	}
	code, _ := TOTPCode(secret, clk.now())
	if err := s.EnableTOTP(ctx, op.ID, secret, code); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, "ops@x.example", pw, ""); !errors.Is(err, ErrCodeRequired) {
		t.Fatalf("no code: %v", err)
	}
	if _, err := s.Login(ctx, "ops@x.example", pw, code); !errors.Is(err, ErrCodeRequired) {
		t.Fatalf("code of the enrolment replayed: %v", err)
	}
	clk.add(30 * time.Second)
	code, _ = TOTPCode(secret, clk.now())
	if _, err := s.Login(ctx, "ops@x.example", pw, code); err != nil {
		t.Fatalf("login with code: %v", err)
	}
	if _, err := s.Login(ctx, "ops@x.example", pw, code); !errors.Is(err, ErrCodeRequired) {
		t.Fatalf("code replayed: %v", err)
	}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	s, clk := openStore(t)
	addCustomer(t, s.DB, "C1", true)
	const pw = "correct horse battery"
	u, _ := s.Create(ctx, NewUser{Email: "u@c1.example", Role: "customer", CustomerID: "C1", Password: pw})
	a, _, err := s.NewSession(ctx, u, 8*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := s.NewSession(ctx, u, 8*time.Hour)
	if sess, err := s.Session(ctx, a, time.Hour); err != nil || sess.User.ID != u.ID || sess.CSRF == "" {
		t.Fatalf("session: %+v %v", sess, err)
	}
	// Idle for the whole idle timeout: ended.
	clk.add(time.Hour)
	if _, err := s.Session(ctx, a, time.Hour); !errors.Is(err, ErrNoSession) {
		t.Fatalf("idle session: %v", err)
	}
	if _, err := s.Session(ctx, a, 2*time.Hour); err != nil {
		t.Fatalf("session within a longer idle timeout: %v", err)
	}
	// Past its lifetime: ended, however active.
	for range 7 {
		clk.add(59 * time.Minute)
		s.Session(ctx, b, time.Hour)
	}
	clk.add(time.Hour)
	if _, err := s.Session(ctx, b, 2*time.Hour); !errors.Is(err, ErrNoSession) {
		t.Fatalf("expired session: %v", err)
	}
	c, _, _ := s.NewSession(ctx, u, 8*time.Hour)
	d, _, _ := s.NewSession(ctx, u, 8*time.Hour)
	if err := s.EndSession(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, c, time.Hour); !errors.Is(err, ErrNoSession) {
		t.Fatalf("logged-out session: %v", err)
	}
	if _, err := s.Session(ctx, d, time.Hour); err != nil {
		t.Fatalf("other session after logout: %v", err)
	}
	// The operator turns the customer's portal off: its sessions end.
	s.DB.Tx(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(`UPDATE customers SET portal_enabled = 0`); return err })
	if _, err := s.Session(ctx, d, time.Hour); !errors.Is(err, ErrNoSession) {
		t.Fatalf("session with the portal disabled: %v", err)
	}
	s.DB.Tx(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(`UPDATE customers SET portal_enabled = 1`); return err })
	if n, err := s.EndAll(ctx, u.ID); err != nil || n < 1 {
		t.Fatalf("EndAll: %d %v", n, err)
	}
	if _, err := s.Session(ctx, d, time.Hour); !errors.Is(err, ErrNoSession) {
		t.Fatalf("session after logout everywhere: %v", err)
	}
	// A password change ends the other sessions.
	e, sessE, _ := s.NewSession(ctx, u, 8*time.Hour)
	f, _, _ := s.NewSession(ctx, u, 8*time.Hour)
	if err := s.SetPassword(ctx, u.ID, "another long password", sessE.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, e, time.Hour); err != nil {
		t.Fatalf("session changing the password: %v", err)
	}
	if _, err := s.Session(ctx, f, time.Hour); !errors.Is(err, ErrNoSession) {
		t.Fatalf("other session after a password change: %v", err)
	}
}

func TestThrottle(t *testing.T) {
	clk := newClock()
	th := &Throttle{Max: 3, Window: 10 * time.Minute, Now: clk.now}
	for i := range 3 {
		if ok, _ := th.Allowed("k"); !ok {
			t.Fatalf("refused after %d failures", i)
		}
		th.Fail("k")
		clk.add(time.Minute)
	}
	ok, wait := th.Allowed("k")
	if ok || wait != 7*time.Minute {
		t.Fatalf("after 3 failures: %v %v", ok, wait)
	}
	if ok, _ := th.Allowed("other"); !ok {
		t.Fatal("another key refused")
	}
	clk.add(7 * time.Minute)
	if ok, _ := th.Allowed("k"); !ok {
		t.Fatal("still refused once the first failure left the window")
	}
	th.Fail("k")
	th.Reset("k")
	if ok, _ := th.Allowed("k"); !ok {
		t.Fatal("refused after a reset")
	}
}
