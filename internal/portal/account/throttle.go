package account

import (
	"sync"
	"time"
)

// Throttle limits failed attempts per key (an account, a client address): after Max failures within Window,
// the key is refused until the oldest of them is Window old. It is in memory: a restart forgets it.
type Throttle struct {
	// Max is the failures allowed in Window; Window their span.
	Max    int
	Window time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	fails map[string][]time.Time
}

func (t *Throttle) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// recent returns key's failures still inside the window; t.mu is held.
func (t *Throttle) recent(key string, now time.Time) []time.Time {
	list := t.fails[key]
	i := 0
	for i < len(list) && now.Sub(list[i]) >= t.Window {
		i++
	}
	list = list[i:]
	if len(list) == 0 {
		delete(t.fails, key)
		return nil
	}
	t.fails[key] = list
	return list
}

// Allowed reports whether key may try again now and, when not, how long it must wait.
func (t *Throttle) Allowed(key string) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fails == nil {
		return true, 0
	}
	now := t.now()
	list := t.recent(key, now)
	if len(list) < t.Max {
		return true, 0
	}
	return false, t.Window - now.Sub(list[len(list)-t.Max])
}

// Fail records a failure of key.
func (t *Throttle) Fail(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fails == nil {
		t.fails = map[string][]time.Time{}
	}
	now := t.now()
	list := append(t.recent(key, now), now)
	if len(list) > t.Max {
		list = list[len(list)-t.Max:]
	}
	t.fails[key] = list
	// Bound the memory an attacker can take with many keys: forget the keys whose failures are all old.
	if len(t.fails) > 100000 {
		for k := range t.fails {
			t.recent(k, now)
		}
	}
}

// Reset forgets key's failures (after a success).
func (t *Throttle) Reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fails, key)
}
