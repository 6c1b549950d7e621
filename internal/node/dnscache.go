package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/resolver"
)

// registerDNSCache exports the resolver cache's counters: easymail_dns_cache_hits_total,
// easymail_dns_cache_misses_total and easymail_dns_cache_entries.
func registerDNSCache(reg prometheus.Registerer, res *resolver.DNS) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "easymail_dns_cache_hits_total",
			Help: "DNS lookups answered from the resolver's cache."},
			func() float64 { return float64(res.CacheStats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "easymail_dns_cache_misses_total",
			Help: "DNS lookups that asked a server (or joined the same question asked at the same time)."},
			func() float64 { return float64(res.CacheStats().Misses) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "easymail_dns_cache_entries",
			Help: "Answers held in the resolver's cache."},
			func() float64 { return float64(res.CacheStats().Entries) }),
	)
}
