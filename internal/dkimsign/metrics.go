package dkimsign

import "github.com/prometheus/client_golang/prometheus"

// metrics are the manager's Prometheus metrics.
type metrics struct {
	messages *prometheus.CounterVec // result: signed, unsigned (no key), failed
	aligned  *prometheus.CounterVec // dmarc: aligned, unaligned
	keys     *prometheus.GaugeVec   // state: active, pending, retiring
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_dkim_messages_total",
			Help: "Accepted messages by DKIM signing result: signed, unsigned (no key of the customer for the From or sender domain), failed."},
			[]string{"result"}),
		aligned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_dmarc_alignment_total",
			Help: "Accepted messages by DMARC identifier alignment of the DKIM or the envelope sender domain with the header From."},
			[]string{"dmarc"}),
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "easymail_dkim_keys",
			Help: "DKIM keys by state, as of the last round of the rotation loop; pending keys wait for their DNS record."},
			[]string{"state"}),
	}
	r.MustRegister(m.messages, m.aligned, m.keys)
	return m
}
