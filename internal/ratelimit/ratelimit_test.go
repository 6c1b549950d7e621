package ratelimit

import (
	"context"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestTokenBucketBurstAndRefill(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := NewLocal(c.now)
	r := Rule{Limit: 60, Per: time.Minute, Burst: 3}
	ctx := context.Background()
	for i := range 3 {
		if d, _ := l.Allow(ctx, "k", 1, r); !d.Allowed {
			t.Fatalf("burst request %d refused", i)
		}
	}
	d, _ := l.Allow(ctx, "k", 1, r)
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Second || d.Rule != r {
		t.Fatalf("over the burst: %+v", d)
	}
	// Another key has its own bucket.
	if d, _ := l.Allow(ctx, "other", 1, r); !d.Allowed {
		t.Fatal("another key refused")
	}
	c.t = c.t.Add(time.Second)
	if d, _ := l.Allow(ctx, "k", 1, r); !d.Allowed {
		t.Fatal("a token did not come back after a second at 60/min")
	}
	if d, _ := l.Allow(ctx, "k", 1, r); d.Allowed {
		t.Fatal("two tokens came back after a second")
	}
	c.t = c.t.Add(time.Hour)
	for range 3 {
		l.Allow(ctx, "k", 1, r)
	}
	if d, _ := l.Allow(ctx, "k", 1, r); d.Allowed {
		t.Fatal("the bucket refilled beyond its burst")
	}
}

func TestAllOrNothing(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := NewLocal(c.now)
	minute := Rule{Limit: 10, Per: time.Minute}
	hour := Rule{Limit: 2, Per: time.Hour}
	ctx := context.Background()
	for range 2 {
		if d, _ := l.Allow(ctx, "k", 1, minute, hour); !d.Allowed {
			t.Fatal("refused under both limits")
		}
	}
	for range 5 {
		d, _ := l.Allow(ctx, "k", 1, minute, hour)
		if d.Allowed || d.Rule != hour {
			t.Fatalf("over the hourly limit: %+v", d)
		}
	}
	// The refusals took no minute token: 8 remain.
	for i := range 8 {
		if d, _ := l.Allow(ctx, "k", 1, minute); !d.Allowed {
			t.Fatalf("minute token %d missing: refusals consumed tokens", i)
		}
	}
	if d, _ := l.Allow(ctx, "k", 1, minute); d.Allowed {
		t.Fatal("more minute tokens than the limit")
	}
	if d, _ := l.Allow(ctx, "k", 5, Rule{}); !d.Allowed {
		t.Fatal("the unlimited rule refused")
	}
}

func TestIdleBucketsAreSwept(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := NewLocal(c.now)
	r := Rule{Limit: 1, Per: time.Second}
	for _, k := range []string{"a", "b", "c"} {
		l.Allow(context.Background(), k, 1, r)
	}
	c.t = c.t.Add(2 * time.Minute)
	l.Allow(context.Background(), "d", 1, r)
	if n := l.Len(); n != 1 {
		t.Fatalf("%d buckets kept, want 1", n)
	}
}

func TestParseRule(t *testing.T) {
	for in, want := range map[string]Rule{
		"100/1m":           {Limit: 100, Per: time.Minute},
		"5/s":              {Limit: 5, Per: time.Second},
		"3000/1h burst 50": {Limit: 3000, Per: time.Hour, Burst: 50},
		"0":                {},
		"unlimited":        {},
		"0/1m":             {},
	} {
		got, err := ParseRule(in)
		if err != nil || got != want {
			t.Errorf("ParseRule(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "100", "x/1m", "-1/1m", "10/0s", "10/-1m", "10/1m burst x", "10/fortnight"} {
		if _, err := ParseRule(in); err == nil {
			t.Errorf("ParseRule(%q) accepted", in)
		}
	}
}

func TestSlots(t *testing.T) {
	s := NewSlots()
	for range 2 {
		if err := s.Acquire("a", 3, 2); err != nil {
			t.Fatalf("refused under the caps: %v", err)
		}
	}
	if err := s.Acquire("a", 3, 2); err != ErrKeyCap {
		t.Fatalf("per-key cap: %v", err)
	}
	if s.Acquire("b", 3, 2) != nil {
		t.Fatal("another key refused")
	}
	if err := s.Acquire("c", 3, 2); err != ErrTotalCap {
		t.Fatalf("total cap: %v", err)
	}
	s.Release("a")
	if s.Total() != 2 || s.Count("a") != 1 || s.Acquire("c", 3, 2) != nil {
		t.Fatalf("after release: total %d, a %d", s.Total(), s.Count("a"))
	}
}
