package resolver

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DefaultCacheSize is the number of answers the cache keeps (config dns.cache_size).
const DefaultCacheSize = 10000

// DefaultCacheMaxTTL bounds how long an answer is kept whatever its TTL (config dns.cache_max_ttl).
const DefaultCacheMaxTTL = time.Hour

// CacheOptions configures the answer cache of a DNS resolver.
type CacheOptions struct {
	// Size is the number of answers kept, the least recently used going first; 0 turns the cache off.
	Size int
	// MaxTTL bounds the time an answer is kept; 0 means DefaultCacheMaxTTL.
	MaxTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// CacheStats are the cache's counters since the resolver was made.
type CacheStats struct {
	// Hits are lookups answered from the cache, Misses those that asked a server (or joined a question
	// already asked by another lookup).
	Hits, Misses uint64
	// Entries is the number of answers held now.
	Entries int
}

// cacheKey is a question: the lower-case FQDN and the type.
type cacheKey struct {
	name  string
	qtype uint16
}

// cached is an answer as queryAD returns it: the records, whether they were validated (AD), or the
// not-found error of a negative answer.
type cached struct {
	key cacheKey
	rrs []dns.RR
	ad  bool
	err error
	// ttl is how long the answer may be kept (from the response), expires when it is no longer used.
	ttl     time.Duration
	expires time.Time
}

// cache keeps answers for their TTL, like the caching resolver an operator would otherwise run next to the
// relay: positive answers for the smallest TTL of their records, negative ones (NXDOMAIN, NODATA) for the
// SOA's negative TTL (RFC 2308 §5) and not at all without an SOA, failures never. Every answer is kept at
// most maxTTL, and at most size answers are kept (least recently used out first). It is safe for
// concurrent use.
type cache struct {
	size   int
	maxTTL time.Duration
	now    func() time.Time

	mu      sync.Mutex
	lru     *list.List // of *cached, most recent first
	entries map[cacheKey]*list.Element

	hits, misses atomic.Uint64
}

func newCache(o CacheOptions) *cache {
	if o.Size <= 0 {
		return nil
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = DefaultCacheMaxTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &cache{size: o.Size, maxTTL: o.MaxTTL, now: o.Now, lru: list.New(), entries: map[cacheKey]*list.Element{}}
}

// get returns the live answer to k.
func (c *cache) get(k cacheKey) (*cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	e := el.Value.(*cached)
	if !c.now().Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, k)
		c.misses.Add(1)
		return nil, false
	}
	c.lru.MoveToFront(el)
	c.hits.Add(1)
	return e, true
}

// put keeps e for ttl (bounded by maxTTL); a ttl of 0 keeps nothing.
func (c *cache) put(e *cached, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	e.expires = c.now().Add(min(ttl, c.maxTTL))
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[e.key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[e.key] = c.lru.PushFront(e)
	for c.lru.Len() > c.size {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.entries, last.Value.(*cached).key)
	}
}

func (c *cache) stats() CacheStats {
	c.mu.Lock()
	n := c.lru.Len()
	c.mu.Unlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Entries: n}
}

// positiveTTL is how long an answer may be kept: the smallest TTL of its answer records (the CNAMEs of the
// chain included).
func positiveTTL(resp *dns.Msg) time.Duration {
	if len(resp.Answer) == 0 {
		return 0
	}
	ttl := resp.Answer[0].Header().Ttl
	for _, rr := range resp.Answer[1:] {
		ttl = min(ttl, rr.Header().Ttl)
	}
	return time.Duration(ttl) * time.Second
}

// negativeTTL is how long a negative answer may be kept (RFC 2308 §5): the smaller of the SOA record's TTL
// and its MINIMUM field; 0 (not kept) when the authority section has no SOA.
func negativeTTL(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
		}
	}
	return 0
}
