package ippool

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Event kinds.
const (
	// EventState: the IP's state changed (From → To).
	EventState = "state"
	// EventListing: the zones listing the IP changed while its state did not.
	EventListing = "listing"
	// EventDestPaused: the IP was paused for Domain after block replies.
	EventDestPaused = "destination_paused"
	// EventDestResumed: the pause for Domain ended.
	EventDestResumed = "destination_resumed"
)

// Event is a change of an outbound IP worth telling operators.
type Event struct {
	Time   time.Time
	IP     netip.Addr
	Pool   string
	Kind   string
	From   State
	To     State
	Domain string
	Reason string
	// ByOperator is set for changes an operator made (pause, drain, resume): they are logged and counted,
	// not mailed.
	ByOperator bool
}

// Subject is a one-line title of the event.
func (e Event) Subject() string {
	switch e.Kind {
	case EventDestPaused:
		return fmt.Sprintf("%s paused for %s", e.IP, e.Domain)
	case EventDestResumed:
		return fmt.Sprintf("%s resumed for %s", e.IP, e.Domain)
	case EventListing:
		return fmt.Sprintf("%s listings changed", e.IP)
	}
	if e.From == StateListed && (e.To == StateActive || e.To == StateWarming) {
		return fmt.Sprintf("%s back in rotation (%s)", e.IP, e.To)
	}
	return fmt.Sprintf("%s %s", e.IP, e.To)
}

// Text describes the event in one line.
func (e Event) Text() string {
	head := fmt.Sprintf("%s (pool %s)", e.IP, e.Pool)
	var s string
	switch e.Kind {
	case EventState:
		s = fmt.Sprintf("%s: %s -> %s", head, e.From, e.To)
	case EventListing:
		s = head + ": listings changed"
	case EventDestPaused:
		s = fmt.Sprintf("%s: paused for destination %s", head, e.Domain)
	case EventDestResumed:
		s = fmt.Sprintf("%s: resumed for destination %s", head, e.Domain)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// publish logs events and queues the ones to mail. It must be called without p.mu held.
func (p *Pools) publish(events []*Event) {
	for _, e := range events {
		if e == nil {
			continue
		}
		level := slog.LevelWarn
		if e.ByOperator || e.Kind == EventDestResumed || (e.From == StateWarming && e.To == StateActive) {
			level = slog.LevelInfo
		}
		p.log.Log(context.Background(), level, "outbound IP: "+e.Text(), "ip", e.IP, "pool", e.Pool, "event", e.Kind,
			"from", e.From, "to", e.To, "domain", e.Domain)
		p.m.events.WithLabelValues(e.Kind).Inc()
		if e.ByOperator || (e.From == StateWarming && e.To == StateActive) {
			continue
		}
		select {
		case p.events <- *e:
		default:
			p.log.Error("outbound IP: notice queue full; notice dropped", "ip", e.IP, "event", e.Kind)
		}
	}
}

// Intervals of Run.
const (
	counterFlush = 10 * time.Second
	// counterKeep is how long hourly counters stay in the store.
	counterKeep = 48
)

// Run drives the time-based transitions every tick (the end of a hold, of a destination pause, of a warm-up
// day), writes the hourly counters every few seconds, and mails the operator notices, until ctx ends; then it
// writes the counters one last time and returns.
func (p *Pools) Run(ctx context.Context, tick time.Duration) {
	if tick <= 0 {
		tick = time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	flush := time.NewTicker(counterFlush)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			p.flushCounters(context.WithoutCancel(ctx))
			return
		case <-t.C:
			p.Tick(ctx)
		case <-flush.C:
			p.flushCounters(ctx)
		case e := <-p.events:
			batch := []Event{e}
		drain:
			for len(batch) < 100 {
				select {
				case e := <-p.events:
					batch = append(batch, e)
				default:
					break drain
				}
			}
			p.notify(ctx, batch)
		}
	}
}

// Tick applies the transitions due at the clock's time: holds and warm-up days that ended, destination pauses
// that expired, block replies that left the window. It persists what changed.
func (p *Pools) Tick(ctx context.Context) {
	now := p.clock.Now()
	var events []*Event
	p.mu.Lock()
	for _, ip := range p.ips {
		for domain, ds := range ip.dest {
			ds.signals = pruneBefore(ds.signals, now.Add(-p.o.IPPool.BlockWindow))
			if !ds.pausedUntil.IsZero() && !now.Before(ds.pausedUntil) {
				ds.pausedUntil, ds.reason = time.Time{}, ""
				ip.dirty = true
				p.m.destPauses.WithLabelValues(ip.addr.String()).Set(float64(ip.pausedDestinations(now)))
				events = append(events, &Event{Time: now, IP: ip.addr, Pool: ip.pool, Kind: EventDestResumed, Domain: domain,
					Reason: "the pause ended (ippool.pause_for)"})
			}
			if ds.pausedUntil.IsZero() && len(ds.signals) == 0 {
				delete(ip.dest, domain)
			}
		}
		events = append(events, p.refreshLocked(ip, now, true))
	}
	p.mu.Unlock()
	p.publish(events)
	p.saveDirty(ctx)
}

// pausedDestinations counts the destinations ip is paused for at now.
func (ip *ipState) pausedDestinations(now time.Time) int {
	n := 0
	for _, ds := range ip.dest {
		if now.Before(ds.pausedUntil) {
			n++
		}
	}
	return n
}

func pruneBefore(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	return ts[i:]
}

// notify mails one notice for a batch of events to the operator.
func (p *Pools) notify(ctx context.Context, batch []Event) {
	if p.o.Send == nil || p.o.OperatorEmail == "" {
		return
	}
	subject := "[easymail] " + batch[0].Subject()
	if len(batch) > 1 {
		subject = fmt.Sprintf("[easymail] %d outbound IP events, first: %s", len(batch), batch[0].Subject())
	}
	var b strings.Builder
	b.WriteString("Easymail's supervision of the outbound IPs reports:\n\n")
	for _, e := range batch {
		fmt.Fprintf(&b, "- %s  %s\n", e.Time.UTC().Format(time.RFC3339), e.Text())
	}
	b.WriteString("\nA listed or paused IP carries no mail (or none to that destination) until it returns; the\n" +
		"customers' mail leaves from the other IPs of their pools, or from their fallback pools.\n" +
		"Details: `easymail ip list`, or GET /api/v1/ips.\n")
	if err := p.o.Send(ctx, p.o.OperatorEmail, subject, b.String()); err != nil && ctx.Err() == nil {
		p.log.Error("outbound IP: mailing the operator notice failed", "to", p.o.OperatorEmail, "subject", subject, "err", err)
		p.m.noticeFailures.Inc()
	}
}

// metrics are the pools' Prometheus metrics.
type metrics struct {
	state          *prometheus.GaugeVec
	listed         *prometheus.GaugeVec
	destPauses     *prometheus.GaugeVec
	blocked        *prometheus.CounterVec
	events         *prometheus.CounterVec
	noticeFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "easymail_ip_state",
			Help: "1 for the current state of each outbound IP (active, warming, paused, listed, draining), 0 for the others."},
			[]string{"ip", "state"}),
		listed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "easymail_ip_listed",
			Help: "1 while a DNSBL zone lists the outbound IP, 0 after it delisted it."}, []string{"ip", "zone"}),
		destPauses: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "easymail_ip_paused_destinations",
			Help: "Destination domains the outbound IP is paused for after block replies."}, []string{"ip"}),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_ip_block_replies_total",
			Help: "Receiver replies that said the outbound IP is blocked."}, []string{"ip"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_ip_events_total",
			Help: "Outbound IP events (state, listing, destination_paused, destination_resumed)."}, []string{"kind"}),
		noticeFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "easymail_ip_notice_failures_total",
			Help: "Operator notices about outbound IPs that could not be queued."}),
	}
	reg.MustRegister(m.state, m.listed, m.destPauses, m.blocked, m.events, m.noticeFailures)
	return m
}

// setState sets the state gauges of ip.
func (m *metrics) setState(ip *ipState) {
	for _, s := range stateNames {
		v := 0.0
		if s == ip.state {
			v = 1
		}
		m.state.WithLabelValues(ip.addr.String(), string(s)).Set(v)
	}
	for z := range ip.listings {
		m.listed.WithLabelValues(ip.addr.String(), z).Set(1)
	}
}

// forget removes the gauges of a removed IP.
func (m *metrics) forget(ip *ipState) {
	for _, s := range stateNames {
		m.state.DeleteLabelValues(ip.addr.String(), string(s))
	}
	m.listed.DeletePartialMatch(prometheus.Labels{"ip": ip.addr.String()})
	m.destPauses.DeleteLabelValues(ip.addr.String())
}
