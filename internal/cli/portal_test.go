package cli

import (
	"context"
	"strings"
	"testing"

	"easymail/internal/portal/account"
)

// TestUserCommands creates portal users with a generated and with a given password (from standard input),
// lists and deletes them, under both `user` and `portal user`; the passwords log in.
func TestUserCommands(t *testing.T) {
	e := newCLIEnv(t)
	cust := field(t, e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example"), "id")
	out := e.ok(t, "portal", "user", "add", "op@ops.example", "--role", "operator")
	pw := field(t, out, "password")
	if len(pw) != 20 || !strings.Contains(out, "not shown again") {
		t.Fatalf("generated password:\n%s", out)
	}
	accts := &account.Store{DB: e.db}
	if _, err := accts.Login(context.Background(), "op@ops.example", pw, ""); err != nil {
		t.Fatalf("the printed password does not log in: %v", err)
	}

	old := stdin
	stdin = strings.NewReader("a password of my own\n")
	t.Cleanup(func() { stdin = old })
	out = e.ok(t, "user", "add", "u@acme.example", "--role", "customer-user", "--customer", cust, "--password-stdin")
	if strings.Contains(out, "password") {
		t.Fatalf("a given password is printed:\n%s", out)
	}
	id := field(t, out, "id")
	if u, err := accts.Get(context.Background(), id); err != nil || u.Role != "customer" || u.CustomerID != cust {
		t.Fatalf("user %+v %v", u, err)
	}
	e.ok(t, "customer", "update", cust, "--portal=true")
	if _, err := accts.Login(context.Background(), "u@acme.example", "a password of my own", ""); err != nil {
		t.Fatalf("the given password does not log in: %v", err)
	}
	if code, _, errs := e.run(t, "user", "add", "x@acme.example", "--role", "customer"); code != 1 || !strings.Contains(errs, "customer_id") {
		t.Fatalf("customer user without --customer: %d %s", code, errs)
	}
	if code, _, errs := e.run(t, "user", "add", "op@ops.example", "--role", "expert"); code != 1 || !strings.Contains(errs, "409") {
		t.Fatalf("duplicate user: %d %s", code, errs)
	}
	list := e.ok(t, "user", "list", "--customer", cust)
	if !strings.Contains(list, "u@acme.example") || strings.Contains(list, "op@ops.example") {
		t.Fatalf("list:\n%s", list)
	}
	e.ok(t, "portal", "user", "delete", id)
	if list := e.ok(t, "user", "list"); strings.Contains(list, "u@acme.example") {
		t.Fatalf("deleted user listed:\n%s", list)
	}
}
