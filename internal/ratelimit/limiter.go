package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"
)

// Decision is a Limiter's answer.
type Decision struct {
	// Allowed is true when the tokens were taken.
	Allowed bool
	// RetryAfter is, when refused, how long until the request could be allowed.
	RetryAfter time.Duration
	// Rule is the rule that refused; zero when allowed.
	Rule Rule
}

// Limiter takes tokens from named token buckets.
type Limiter interface {
	// Allow takes n tokens from the bucket of key under each rule (one bucket per key and rule period),
	// all or none: it refuses, taking nothing, when any bucket lacks them. Unlimited rules are skipped. A
	// request larger than a bucket's capacity is allowed only when that bucket is full. An error means the
	// limiter could not decide (a shared store is down); the caller answers with a temporary failure.
	Allow(ctx context.Context, key string, n int, rules ...Rule) (Decision, error)
}

// sweepEvery is how often idle buckets are dropped.
const sweepEvery = time.Minute

// Local is a Limiter in process memory, for one node. It is safe for concurrent use.
type Local struct {
	now func() time.Time

	mu        sync.Mutex
	buckets   map[bucketKey]*bucket
	lastSweep time.Time
}

type bucketKey struct {
	key string
	per time.Duration
}

type bucket struct {
	tokens   float64
	last     time.Time
	capacity float64
	perNano  float64
}

// NewLocal returns an empty local limiter reading time from now (nil means time.Now).
func NewLocal(now func() time.Time) *Local {
	if now == nil {
		now = time.Now
	}
	return &Local{now: now, buckets: map[bucketKey]*bucket{}}
}

// Allow implements Limiter. It never returns an error.
func (l *Local) Allow(_ context.Context, key string, n int, rules ...Rule) (Decision, error) {
	if n < 1 {
		n = 1
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= sweepEvery {
		l.sweep(now)
	}
	var bs [4]*bucket
	used := bs[:0]
	for _, r := range rules {
		if r.Unlimited() {
			continue
		}
		k := bucketKey{key, r.Per}
		b := l.buckets[k]
		capacity := float64(r.Capacity())
		if b == nil {
			b = &bucket{tokens: capacity, last: now}
			l.buckets[k] = b
		}
		b.capacity, b.perNano = capacity, r.perNano()
		b.refill(now)
		need := math.Min(float64(n), capacity)
		if b.tokens < need {
			wait := time.Duration(math.Ceil((need - b.tokens) / b.perNano))
			return Decision{RetryAfter: wait, Rule: r}, nil
		}
		used = append(used, b)
	}
	for _, b := range used {
		b.tokens = math.Max(0, b.tokens-float64(n))
	}
	return Decision{Allowed: true}, nil
}

func (b *bucket) refill(now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = math.Min(b.capacity, b.tokens+float64(el)*b.perNano)
		b.last = now
	}
	if b.tokens > b.capacity {
		b.tokens = b.capacity
	}
}

// sweep drops the buckets that have refilled completely: a new bucket would be the same.
func (l *Local) sweep(now time.Time) {
	for k, b := range l.buckets {
		b.refill(now)
		if b.tokens >= b.capacity {
			delete(l.buckets, k)
		}
	}
	l.lastSweep = now
}

// Len returns the number of buckets kept, for tests and metrics.
func (l *Local) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Interface check.
var _ Limiter = (*Local)(nil)
