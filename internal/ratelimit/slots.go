package ratelimit

import (
	"errors"
	"sync"
)

// Errors of Slots.Acquire.
var (
	// ErrTotalCap: every slot is taken.
	ErrTotalCap = errors.New("too many connections")
	// ErrKeyCap: every slot of this key is taken.
	ErrKeyCap = errors.New("too many connections from this address")
)

// Slots counts things in progress (SMTP sessions), in all and per key (client IP), under caps. It is safe
// for concurrent use.
type Slots struct {
	mu    sync.Mutex
	total int
	byKey map[string]int
}

// NewSlots returns empty slots.
func NewSlots() *Slots { return &Slots{byKey: map[string]int{}} }

// Acquire takes a slot for key unless maxTotal slots are taken in all (ErrTotalCap) or maxPerKey for key
// (ErrKeyCap). A cap of 0 is no cap. Each successful Acquire needs one Release.
func (s *Slots) Acquire(key string, maxTotal, maxPerKey int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if maxTotal > 0 && s.total >= maxTotal {
		return ErrTotalCap
	}
	if maxPerKey > 0 && s.byKey[key] >= maxPerKey {
		return ErrKeyCap
	}
	s.total++
	s.byKey[key]++
	return nil
}

// Release gives back a slot of key.
func (s *Slots) Release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey[key] <= 1 {
		delete(s.byKey, key)
	} else {
		s.byKey[key]--
	}
	if s.total > 0 {
		s.total--
	}
}

// Total returns the number of slots taken.
func (s *Slots) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Count returns the number of slots taken by key.
func (s *Slots) Count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byKey[key]
}
