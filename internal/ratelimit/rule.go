package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rule is a token bucket: Limit events per Per on average, at most Burst at once. A zero Limit is unlimited.
type Rule struct {
	// Limit is the number of events allowed per Per; 0 means unlimited.
	Limit int
	// Per is the period of Limit, e.g. a minute.
	Per time.Duration
	// Burst is the bucket size, the most events allowed at once after a quiet time; 0 means Limit.
	Burst int
}

// Unlimited reports whether the rule allows everything.
func (r Rule) Unlimited() bool { return r.Limit <= 0 || r.Per <= 0 }

// Capacity returns the bucket size: Burst, or Limit when Burst is 0.
func (r Rule) Capacity() int {
	if r.Burst > 0 {
		return r.Burst
	}
	return r.Limit
}

// perNano is the refill rate in tokens per nanosecond.
func (r Rule) perNano() float64 { return float64(r.Limit) / float64(r.Per) }

// String returns the rule as ParseRule reads it: "100/1m0s", "100/1m0s burst 200", or "unlimited".
func (r Rule) String() string {
	if r.Unlimited() {
		return "unlimited"
	}
	s := strconv.Itoa(r.Limit) + "/" + r.Per.String()
	if r.Burst > 0 {
		s += " burst " + strconv.Itoa(r.Burst)
	}
	return s
}

// ParseRule reads a rule written "N/PERIOD" (e.g. "100/1m", "5/s", "3000/1h"), optionally followed by
// " burst B"; "0" and "unlimited" are the unlimited rule. PERIOD is a Go duration; a bare unit (s, m, h)
// means one of it.
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	if s == "0" || s == "unlimited" {
		return Rule{}, nil
	}
	main, burst, hasBurst := strings.Cut(s, " burst ")
	n, per, ok := strings.Cut(strings.TrimSpace(main), "/")
	if !ok {
		return Rule{}, fmt.Errorf("rate %q: want N/PERIOD, e.g. 100/1m", s)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || limit < 0 {
		return Rule{}, fmt.Errorf("rate %q: %q is not a count", s, n)
	}
	per = strings.TrimSpace(per)
	if per == "s" || per == "m" || per == "h" {
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil {
		return Rule{}, fmt.Errorf("rate %q: period: %v", s, err)
	}
	if d <= 0 {
		return Rule{}, fmt.Errorf("rate %q: the period must be positive", s)
	}
	r := Rule{Limit: limit, Per: d}
	if hasBurst {
		b, err := strconv.Atoi(strings.TrimSpace(burst))
		if err != nil || b < 0 {
			return Rule{}, fmt.Errorf("rate %q: burst %q is not a count", s, burst)
		}
		r.Burst = b
	}
	if limit == 0 {
		return Rule{}, nil
	}
	return r, nil
}

// ErrUnavailable wraps failures of a shared limiter's store. Callers treat them as temporary.
var ErrUnavailable = errors.New("ratelimit: limiter unavailable")
