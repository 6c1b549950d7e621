package queue

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	enqueued  prometheus.Counter
	attempts  *prometheus.CounterVec // outcome: delivered, deferred, bounced
	latency   prometheus.Histogram
	dsns      *prometheus.CounterVec // kind: failure, delay
	inflight  prometheus.Gauge
	recovered prometheus.Counter
	tls       *prometheus.CounterVec // result, policy
	lost      prometheus.Counter
	released  prometheus.Counter
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "easymail_queue_enqueued_total", Help: "Messages accepted into the queue."}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_delivery_recipients_total",
			Help: "Recipient delivery outcomes, by outcome (delivered, deferred, bounced)."}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "easymail_delivery_attempt_duration_seconds", Help: "Duration of delivery attempts.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		dsns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_dsn_generated_total", Help: "Delivery status notifications generated, by kind (failure, delay)."},
			[]string{"kind"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "easymail_delivery_inflight", Help: "Deliveries in progress."}),
		recovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "easymail_queue_orphans_removed_total", Help: "Spool files without a queue row removed at start."}),
		tls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_delivery_tls_total",
			Help: "Delivery attempts that reached a host, by TLS result (none, unverified, verified, dane, or the TLS-RPT " +
				"result type of a failure) and policy source (none, customer, destination, mta-sts, dane)."},
			[]string{"result", "policy"}),
	}
	m.lost = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "easymail_queue_lost_total",
		Help: "Accepted messages closed because their content was missing from the spool (status lost; their senders get a DSN)."})
	m.released = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "easymail_queue_claims_released_total",
		Help: "Recipients whose delivery a previous process had claimed when it died, made due at once at start."})
	r.MustRegister(m.enqueued, m.attempts, m.latency, m.dsns, m.inflight, m.recovered, m.lost, m.released, m.tls)
	return m
}
