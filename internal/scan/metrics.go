package scan

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	duration *prometheus.HistogramVec
	failures *prometheus.CounterVec
	up       *prometheus.GaugeVec
	outcomes *prometheus.CounterVec
	ruleHits *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "easymail_scan_duration_seconds",
			Help:    "Time one scanner took on one message, by scanner (clamd, rspamd).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"scanner"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_scan_failures_total",
			Help: "Scans that failed (scanner down, slow or erroring), by scanner.",
		}, []string{"scanner"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "easymail_scan_scanner_up",
			Help: "1 while the scanner's last scan succeeded, 0 while it fails.",
		}, []string{"scanner"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_scan_outcomes_total",
			Help: "Scanned messages by decision (accept, tag, quarantine, reject, tempfail) and verdict.",
		}, []string{"action", "verdict"}),
		ruleHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_scan_rule_hits_total",
			Help: "Content rule matches, by rule type and action.",
		}, []string{"type", "action"}),
	}
	reg.MustRegister(m.duration, m.failures, m.up, m.outcomes, m.ruleHits)
	return m
}
