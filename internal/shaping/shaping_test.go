package shaping

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"easymail/internal/config"
)

func TestClassifyThrottlingReplies(t *testing.T) {
	for _, c := range []struct {
		code      int
		enh, text string
		want      string
	}{
		{421, "4.7.0", "421-4.7.0 Try again later, closing connection. (EHLO) https://support.google.com/a/answer/3221692", Throttle},
		{451, "4.7.28", "451 4.7.28 [10.1.2.3] Our system has detected an unusual rate of unsolicited mail originating from your IP address.", Listed},
		{451, "4.7.650", "451 4.7.650 The mail server [192.0.2.7] has been temporarily rate limited due to IP reputation.", Throttle},
		{421, "4.7.0", "421 4.7.0 [TSS04] Messages from 192.0.2.7 temporarily deferred due to unexpected volume or user complaints", Listed},
		{450, "4.7.1", "450 4.7.1 Client host rejected: blocked using zen.spamhaus.org", Listed},
		{452, "4.2.2", "452 4.2.2 The email account that you tried to reach is over quota", "other"},
		{450, "4.1.1", "450 4.1.1 <x@y>: Recipient address rejected: unverified address", "other"},
	} {
		if got := Classify(c.code, c.enh, c.text); got != c.want {
			t.Errorf("%q: %s, want %s", c.text, got, c.want)
		}
	}
}

// TestPauseAndGradualResume: a throttling reply pauses the IP for the provider only; the pause doubles on a
// repeat; after it the rate starts at half the limit and doubles back each minute without trouble.
func TestPauseAndGradualResume(t *testing.T) {
	now := time.Date(2030, 3, 1, 10, 0, 0, 0, time.UTC)
	s, err := New(Options{Providers: []config.Provider{{Name: "p", MX: []string{"*.p.test"}, PerMinute: 8}},
		PauseBase: time.Minute, PauseMax: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ip, ip2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	hosts := []string{"mx1.p.test"}
	if a, d := s.Admit(ctx, ip, []string{"mx.other.test"}); a != nil || d != nil {
		t.Fatal("a destination of no provider is shaped")
	}
	a, d := s.Admit(ctx, ip, hosts)
	if d != nil {
		t.Fatal(d)
	}
	a.Done(false, []Reply{{Code: 421, Enhanced: "4.7.0", Text: "421 4.7.0 Try again later"}})
	if _, d := s.Admit(ctx, ip, hosts); d == nil || d.Reason != "paused" || !d.Until.Equal(now.Add(time.Minute)) {
		t.Fatalf("after a throttle: %+v", d)
	}
	if a, d := s.Admit(ctx, ip2, hosts); d != nil {
		t.Fatalf("another IP paused: %v", d)
	} else {
		a.Done(true, nil)
	}
	now = now.Add(time.Minute)
	admitted := 0
	for {
		a, d := s.Admit(ctx, ip, hosts)
		if d != nil {
			if d.Reason != "rate" {
				t.Fatal(d)
			}
			break
		}
		a.Done(true, nil)
		admitted++
	}
	if admitted != 4 {
		t.Fatalf("first minute after the pause: %d admitted, want 4 (half of 8)", admitted)
	}
	now = now.Add(time.Minute)
	admitted = 0
	for {
		a, d := s.Admit(ctx, ip, hosts)
		if d != nil {
			break
		}
		a.Done(true, nil)
		admitted++
	}
	if admitted != 8 {
		t.Fatalf("second minute: %d admitted, want 8", admitted)
	}
	// A second throttle after deliveries went through starts again at the base pause; two in a row double it.
	a, _ = s.Admit(ctx, ip2, hosts)
	a.Done(false, []Reply{{Code: 421, Text: "421 Too many connections"}})
	now = now.Add(time.Minute)
	a, _ = s.Admit(ctx, ip2, hosts)
	a.Done(false, []Reply{{Code: 421, Text: "421 Too many connections"}})
	if _, d := s.Admit(ctx, ip2, hosts); d == nil || !d.Until.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("second strike: %+v", d)
	}
}
