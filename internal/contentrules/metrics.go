package contentrules

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the content rules meet. The scan engine owns one and counts each message over a budget.
type Metrics struct {
	exceeded *prometheus.CounterVec
}

// NewMetrics registers the content rules' metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		exceeded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_contentrules_budget_exceeded_total",
			Help: "Messages whose MIME walk went over a budget, by budget (depth, parts, archive_entries, decompressed_bytes, time).",
		}, []string{"budget"}),
	}
	for _, b := range Budgets {
		m.exceeded.WithLabelValues(b)
	}
	reg.MustRegister(m.exceeded)
	return m
}

// Exceeded counts a message over budget.
func (m *Metrics) Exceeded(budget string) {
	if m != nil && budget != "" {
		m.exceeded.WithLabelValues(budget).Inc()
	}
}
