package delivery

import (
	"context"
	"sync"
)

// limiter allows at most max concurrent holders per key (destination domain). A key's semaphore exists while
// someone holds or waits for it.
type limiter struct {
	max int

	mu    sync.Mutex
	slots map[string]*slot
}

type slot struct {
	sem   chan struct{}
	users int // holders and waiters
}

func newLimiter(max int) *limiter {
	return &limiter{max: max, slots: make(map[string]*slot)}
}

// acquire waits for a place for key, or for ctx to be done. On success the returned function gives the place
// back; it must be called exactly once.
func (l *limiter) acquire(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	s := l.slots[key]
	if s == nil {
		s = &slot{sem: make(chan struct{}, l.max)}
		l.slots[key] = s
	}
	s.users++
	l.mu.Unlock()

	select {
	case s.sem <- struct{}{}:
		return func() {
			<-s.sem
			l.leave(key, s)
		}, nil
	case <-ctx.Done():
		l.leave(key, s)
		return nil, ctx.Err()
	}
}

func (l *limiter) leave(key string, s *slot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s.users--
	if s.users == 0 {
		delete(l.slots, key)
	}
}

// size returns the number of keys with a semaphore.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.slots)
}
