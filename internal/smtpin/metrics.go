package smtpin

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	connections *prometheus.CounterVec // result: accepted, unregistered
	sessions    prometheus.Counter
	messages    *prometheus.CounterVec // result: accepted, rejected, failed
	bytes       prometheus.Counter
	commitTime  prometheus.Histogram
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_smtp_connections_total",
			Help: "SMTP connections, by result (accepted, unregistered)."}, []string{"result"}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "easymail_smtp_sessions_total", Help: "SMTP sessions started by registered clients."}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "easymail_smtp_messages_total",
			Help: "Messages at end of DATA, by result (accepted, rejected, failed)."}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "easymail_smtp_received_bytes_total", Help: "Bytes of accepted messages."}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "easymail_smtp_commit_duration_seconds",
			Help:    "Time from end of DATA to the durable commit (spool fsync and queue transaction).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	r.MustRegister(m.connections, m.sessions, m.messages, m.bytes, m.commitTime)
	return m
}

func sprintf(format string, v ...any) string { return fmt.Sprintf(format, v...) }
func sprint(v ...any) string                 { return fmt.Sprint(v...) }
