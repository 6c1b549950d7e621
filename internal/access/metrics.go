package access

import "github.com/prometheus/client_golang/prometheus"

// metrics are the access table's Prometheus series.
type metrics struct {
	ignored *prometheus.GaugeVec
	notices prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		ignored: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "easymail_access_relay_addresses_ignored",
			Help: "Addresses of relay host names ignored at the last reload, by reason (range, source_ip, relay_host).",
		}, []string{"reason"}),
		notices: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "easymail_access_notices_total",
			Help: "Operator notices raised about relay host addresses newly ignored (mailed to operator_email when set).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.ignored, m.notices)
	}
	return m
}
