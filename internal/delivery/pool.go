package delivery

import (
	"net/netip"
	"sync"
	"time"
)

// poolKey identifies connections that are interchangeable: same remote address, same source address, same
// HELO name, same TLS requirement.
type poolKey struct {
	remote netip.Addr
	local  netip.Addr
	helo   string
	tls    string
}

// pool keeps connections idle after a transaction for the next message to the same host, each for at most
// idle; then it says QUIT and closes them.
type pool struct {
	idle        time.Duration
	quitTimeout time.Duration

	mu     sync.Mutex
	conns  map[poolKey][]*pooled
	closed bool
}

type pooled struct {
	c     *client
	timer *time.Timer
}

func newPool(idle, quitTimeout time.Duration) *pool {
	return &pool{idle: idle, quitTimeout: quitTimeout, conns: make(map[poolKey][]*pooled)}
}

// get takes the most recently used idle connection for key, or returns nil.
func (p *pool) get(key poolKey) *client {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.conns[key]
	if len(list) == 0 {
		return nil
	}
	e := list[len(list)-1]
	list[len(list)-1] = nil
	if len(list) == 1 {
		delete(p.conns, key)
	} else {
		p.conns[key] = list[:len(list)-1]
	}
	// If the timer has fired already, its function waits for the lock and will not find e any more.
	e.timer.Stop()
	return e.c
}

// put keeps c idle for key; with no idle time, or once the pool is closed, c is closed at once.
func (p *pool) put(key poolKey, c *client) {
	p.mu.Lock()
	if p.closed || p.idle <= 0 {
		p.mu.Unlock()
		c.quit(p.quitTimeout)
		return
	}
	e := &pooled{c: c}
	e.timer = time.AfterFunc(p.idle, func() { p.expire(key, e) })
	p.conns[key] = append(p.conns[key], e)
	p.mu.Unlock()
}

// expire closes e if it is still idle.
func (p *pool) expire(key poolKey, e *pooled) {
	p.mu.Lock()
	list := p.conns[key]
	found := false
	for i, x := range list {
		if x == e {
			list = append(list[:i], list[i+1:]...)
			found = true
			break
		}
	}
	if found {
		if len(list) == 0 {
			delete(p.conns, key)
		} else {
			p.conns[key] = list
		}
	}
	p.mu.Unlock()
	if found {
		e.c.quit(p.quitTimeout)
	}
}

// close says QUIT to and closes every idle connection, and makes put close connections from now on.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	var all []*pooled
	for _, list := range p.conns {
		all = append(all, list...)
	}
	p.conns = make(map[poolKey][]*pooled)
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, e := range all {
		e.timer.Stop()
		wg.Go(func() { e.c.quit(p.quitTimeout) })
	}
	wg.Wait()
}

// size returns the number of idle connections.
func (p *pool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, list := range p.conns {
		n += len(list)
	}
	return n
}
