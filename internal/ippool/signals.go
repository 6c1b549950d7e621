package ippool

import (
	"context"
	"fmt"
	"strings"
	"time"

	"easymail/internal/delivery"
	"easymail/internal/queue"
	"easymail/internal/smtperr"
)

// maxSignalText bounds the reply quoted in a pause's reason.
const maxSignalText = 200

// Observe records the outcome of one delivery attempt from src to domain: the IP's counters, and whether the
// receiver said the IP is blocked. Past ippool.block_threshold such replies from domain within
// ippool.block_window, the IP is paused for domain (only) for ippool.pause_for.
func (p *Pools) Observe(src delivery.Source, domain string, res delivery.Result) {
	now := p.clock.Now()
	signal := p.blockReply(res)
	p.mu.Lock()
	ip := p.ips[src.IP.Unmap()]
	if ip == nil {
		p.mu.Unlock()
		return
	}
	b := ip.bucket(now)
	for _, r := range res.Rcpts {
		switch {
		case r.Err == nil:
			b.sent++
		case r.Err.Temporary():
			b.deferred++
		default:
			b.bounced++
		}
	}
	b.dirty = true
	var e *Event
	if signal != "" {
		b.blocked++
		p.m.blocked.WithLabelValues(ip.addr.String()).Inc()
		ds := ip.dest[domain]
		if ds == nil {
			ds = &destState{}
			ip.dest[domain] = ds
		}
		ds.signals = append(pruneBefore(ds.signals, now.Add(-p.o.IPPool.BlockWindow)), now)
		if len(ds.signals) >= p.o.IPPool.BlockThreshold && !now.Before(ds.pausedUntil) {
			ds.pausedUntil = now.Add(p.o.IPPool.PauseFor)
			ds.reason = fmt.Sprintf("%d block replies within %v, the last: %s", len(ds.signals), p.o.IPPool.BlockWindow, signal)
			ds.signals = nil
			ip.dirty = true
			p.m.destPauses.WithLabelValues(ip.addr.String()).Set(float64(ip.pausedDestinations(now)))
			e = &Event{Time: now, IP: ip.addr, Pool: ip.pool, Kind: EventDestPaused, Domain: domain,
				Reason: "until " + ds.pausedUntil.UTC().Format(time.RFC3339) + ": " + ds.reason}
		}
	}
	p.mu.Unlock()
	// The pause is written by the next Tick: Observe runs on the delivery path and does no I/O.
	p.publish([]*Event{e})
}

// blockReply returns the receiver's reply of res that says the sending IP is blocked, or "".
func (p *Pools) blockReply(res delivery.Result) string {
	for _, r := range res.Rcpts {
		if text := remoteReply(r.Err); text != "" {
			for _, re := range p.patterns {
				if re.MatchString(text) {
					if len(text) > maxSignalText {
						text = text[:maxSignalText] + "..."
					}
					return text
				}
			}
		}
	}
	return ""
}

// remoteReply returns the remote host's own reply carried by e ("remote host H said: 554 5.7.1 ..."), or ""
// for a local error (connection failure, DNS, our own refusal), which says nothing of the IP's reputation.
func remoteReply(e *smtperr.Error) string {
	if e == nil {
		return ""
	}
	_, text, ok := strings.Cut(e.Message, " said: ")
	if !ok {
		return ""
	}
	return text
}

// bucket returns the counters of now's hour, recycling the slot of an hour 24 hours older.
func (ip *ipState) bucket(now time.Time) *bucket {
	h := hourOf(now)
	b := &ip.counters[h%24]
	if b.hour != h {
		*b = bucket{hour: h}
	}
	return b
}

func (ip *ipState) loadCounter(c Counter) {
	b := &ip.counters[c.Hour%24]
	if c.Hour < b.hour {
		return
	}
	*b = bucket{hour: c.Hour, sent: c.Sent, deferred: c.Deferred, bounced: c.Bounced, blocked: c.Blocked}
}

// flushCounters writes the hourly counters that changed, and forgets those older than counterKeep hours.
func (p *Pools) flushCounters(ctx context.Context) {
	if p.o.Store == nil {
		return
	}
	now := p.clock.Now()
	var rows []Counter
	p.mu.Lock()
	for _, ip := range p.ips {
		for i := range ip.counters {
			b := &ip.counters[i]
			if b.dirty {
				b.dirty = false
				rows = append(rows, Counter{Address: ip.addr.String(), Hour: b.hour, Sent: b.sent, Deferred: b.deferred,
					Bounced: b.bounced, Blocked: b.blocked})
			}
		}
	}
	p.mu.Unlock()
	if err := p.o.Store.SaveCounters(ctx, rows, hourOf(now)-counterKeep); err != nil && ctx.Err() == nil {
		p.log.Warn("ippool: writing the IP counters failed", "err", err)
	}
}

var _ queue.OutcomeObserver = (*Pools)(nil)
