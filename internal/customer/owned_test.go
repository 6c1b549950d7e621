package customer

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"
)

func TestHold(t *testing.T) {
	ctx := context.Background()
	s := newService(t, false)
	c := mustCreate(t, s, "acme")
	at := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	hold := func() bool {
		t.Helper()
		var held bool
		if err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			held, err = Hold(ctx, tx, c.ID, "volume spike", at)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return held
	}
	if !hold() {
		t.Fatal("Hold reported no change on a customer not held")
	}
	got, err := s.Get(ctx, c.ID)
	if err != nil || !got.Held || got.HeldReason != "volume spike" || got.HeldAt == nil || !got.HeldAt.Equal(at) {
		t.Fatalf("after Hold: %+v %v", got, err)
	}
	if hold() {
		t.Fatal("Hold reported a change on a customer already held")
	}
	if err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		held, err := Hold(ctx, tx, "nosuch", "x", at)
		if held {
			t.Error("Hold reported a change on a missing customer")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestBlankContact(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	s := newService(t, false)
	var ids []string
	for _, name := range []string{"beta", "alpha", "other"} {
		contact := "Boss@Example.org"
		if name == "other" {
			contact = "someone@example.org"
		}
		c, err := s.Create(ctx, Create{Name: name, ContactEmail: contact})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	var blanked []string
	if err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		blanked, err = BlankContact(ctx, tx, "boss@EXAMPLE.org", now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{ids[0], ids[1]}
	if want[0] > want[1] {
		want[0], want[1] = want[1], want[0]
	}
	if strings.Join(blanked, ",") != strings.Join(want, ",") {
		t.Fatalf("blanked %v, want %v", blanked, want)
	}
	for i, id := range ids {
		c, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if blank := c.ContactEmail == ""; blank != (i < 2) {
			t.Fatalf("customer %s: contact %q", id, c.ContactEmail)
		}
		if i < 2 && !c.UpdatedAt.Equal(now) {
			t.Fatalf("customer %s: updated at %v, want %v", id, c.UpdatedAt, now)
		}
	}
	if err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		blanked, err = BlankContact(ctx, tx, "nobody@example.org", now)
		return err
	}); err != nil || blanked == nil || len(blanked) != 0 {
		t.Fatalf("no match: %#v %v, want an empty list", blanked, err)
	}
}
