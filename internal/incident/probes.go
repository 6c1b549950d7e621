package incident

import (
	"context"
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"easymail/internal/ippool"
	"easymail/internal/store"
)

// Cause kinds of the relay's own monitors.
const (
	KindIPListed         = "ip-listed"
	KindPoolUnusable     = "pool-unusable"
	KindScannerDown      = "scanner-down"
	KindQueueBacklog     = "queue-backlog"
	KindDeliveryFailures = "delivery-failures"
	KindCustomerHeld     = "customer-held"
	KindCertExpiry       = "cert-expiry"
)

// PoolViewer shows the outbound IP pools' state; *ippool.Pools implements it.
type PoolViewer interface {
	PoolViews() []ippool.Pool
	IPViews(pool string) ([]ippool.IP, error)
}

// PoolProbe raises an IP listed by a DNSBL (P3, P2 when every IP of its pool is listed) and a pool with no
// usable IP (P1, linked to the customers whose mail then waits: those of the pool without a usable
// fallback pool). Either may be off.
type PoolProbe struct {
	Pools        PoolViewer
	DB           *store.DB
	IPListed     bool
	PoolUnusable bool
}

// Kinds implements Probe.
func (p PoolProbe) Kinds() []string {
	var k []string
	if p.IPListed {
		k = append(k, KindIPListed)
	}
	if p.PoolUnusable {
		k = append(k, KindPoolUnusable)
	}
	return k
}

// Check implements Probe.
func (p PoolProbe) Check(ctx context.Context) ([]Condition, error) {
	var out []Condition
	pools := p.Pools.PoolViews()
	usable := map[string]bool{}
	for _, pool := range pools {
		usable[pool.Name] = pool.Usable > 0
	}
	for _, pool := range pools {
		ips, err := p.Pools.IPViews(pool.Name)
		if err != nil {
			return nil, err
		}
		listed := 0
		for _, ip := range ips {
			if len(ip.Listings) > 0 {
				listed++
			}
		}
		if p.IPListed {
			for _, ip := range ips {
				if len(ip.Listings) == 0 {
					continue
				}
				prio, what := P3, "out of rotation"
				if listed == len(ips) {
					prio, what = P2, "every IP of pool "+pool.Name+" is listed"
				}
				var zones []string
				for _, l := range ip.Listings {
					zones = append(zones, fmt.Sprintf("%s (%s) %s", l.Zone, l.Code, l.Reason))
				}
				out = append(out, Condition{Cause: KindIPListed + ":" + ip.Address, Priority: prio,
					Title:       fmt.Sprintf("Outbound IP %s of pool %s listed by a DNSBL (%s)", ip.Address, pool.Name, what),
					Description: "Listed by: " + strings.Join(zones, "; "),
					Links:       []Link{{Kind: "ip", Value: ip.Address}, {Kind: "pool", Value: pool.Name}}})
			}
		}
		if p.PoolUnusable && pool.IPs > 0 && pool.Usable == 0 {
			links := []Link{{Kind: "pool", Value: pool.Name}}
			rows, err := p.DB.R.QueryContext(ctx, `SELECT id, fallback_pool FROM customers WHERE pool = ? AND status <> 'removed' ORDER BY id`, pool.Name)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var id, fb string
				if err := rows.Scan(&id, &fb); err != nil {
					rows.Close()
					return nil, err
				}
				if fb == "" || !usable[fb] {
					links = append(links, Link{Kind: "customer", Value: id})
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
			states := []string{}
			for _, st := range slices.Sorted(maps.Keys(pool.States)) {
				states = append(states, fmt.Sprintf("%d %s", pool.States[st], st))
			}
			out = append(out, Condition{Cause: KindPoolUnusable + ":" + pool.Name, Priority: P1,
				Title:       fmt.Sprintf("No usable outbound IP in pool %s: its customers' mail waits", pool.Name),
				Description: "IPs of the pool: " + strings.Join(states, ", ") + ".", Links: links})
		}
	}
	return out, nil
}

// ScannerProbe raises a content scanner that is down: P2 while mail is answered 451 4.7.1 (fail-closed,
// the default failure mode), P3 while it is bypassed.
type ScannerProbe struct {
	// Status returns the scanners' state, name → "" when up or the last error (scan.Engine.Status).
	Status func() map[string]string
	// FailClosed is whether the default failure mode is tempfail.
	FailClosed bool
}

// Kinds implements Probe.
func (ScannerProbe) Kinds() []string { return []string{KindScannerDown} }

// Check implements Probe.
func (p ScannerProbe) Check(context.Context) ([]Condition, error) {
	var out []Condition
	st := p.Status()
	for _, name := range slices.Sorted(mapKeys(st)) {
		if st[name] == "" {
			continue
		}
		prio, mode := P3, "messages are accepted unscanned and tagged (bypass)"
		if p.FailClosed {
			prio, mode = P2, "messages are answered 451 4.7.1 and retried by the customers' servers (fail-closed)"
		}
		out = append(out, Condition{Cause: KindScannerDown + ":" + name, Priority: prio,
			Title:       fmt.Sprintf("Content scanner %s down: %s", name, mode),
			Description: "Last error: " + st[name], Links: []Link{{Kind: "scanner", Value: name}}})
	}
	return out, nil
}

// QueueProbe raises a queue backlog (P2): more than MaxMessages messages waiting for delivery, or the
// oldest waiting longer than MaxOldest (held messages not counted). 0 turns either off.
type QueueProbe struct {
	DB *store.DB
	// NodeID is the node whose queue is watched (config node_id); Name names it in the cause.
	NodeID, Name string
	MaxMessages  int
	MaxOldest    time.Duration
	Now          func() time.Time
}

// Kinds implements Probe.
func (QueueProbe) Kinds() []string { return []string{KindQueueBacklog} }

// Check implements Probe.
func (p QueueProbe) Check(ctx context.Context) ([]Condition, error) {
	var n int
	var oldest *int64
	err := p.DB.R.QueryRowContext(ctx, `SELECT COUNT(*), MIN(received_at) FROM messages
		WHERE status IN ('queued', 'deferred') AND held = 0 AND node_id = ?`, p.NodeID).Scan(&n, &oldest)
	if err != nil {
		return nil, err
	}
	var age time.Duration
	if oldest != nil {
		age = max(0, p.Now().Sub(store.Time(*oldest)))
	}
	var why []string
	if p.MaxMessages > 0 && n > p.MaxMessages {
		why = append(why, fmt.Sprintf("%d messages waiting (threshold %d)", n, p.MaxMessages))
	}
	if p.MaxOldest > 0 && age > p.MaxOldest {
		why = append(why, fmt.Sprintf("the oldest waiting for %s (threshold %s)", age.Round(time.Second), p.MaxOldest))
	}
	if len(why) == 0 {
		return nil, nil
	}
	return []Condition{{Cause: KindQueueBacklog + ":" + p.Name, Priority: P2,
		Title:       "Delivery queue backlog on " + p.Name,
		Description: strings.Join(why, "; ") + ". `easymail queue list` shows them."}}, nil
}

// FailureProbe raises a destination domain whose delivery attempts over Window failed (deferred or
// bounced) at Rate or more, once it had MinAttempts of them (P3).
type FailureProbe struct {
	DB          *store.DB
	Window      time.Duration
	MinAttempts int
	Rate        float64
	Now         func() time.Time
}

// Kinds implements Probe.
func (FailureProbe) Kinds() []string { return []string{KindDeliveryFailures} }

// Check implements Probe.
func (p FailureProbe) Check(ctx context.Context) ([]Condition, error) {
	since := store.Millis(p.Now().Add(-p.Window))
	rows, err := p.DB.R.QueryContext(ctx, `SELECT r.domain, COUNT(*), SUM(CASE WHEN a.outcome = 'delivered' THEN 0 ELSE 1 END)
		FROM attempts a JOIN recipients r ON r.message_id = a.message_id AND r.idx = a.rcpt_idx
		WHERE a.started_at >= ? GROUP BY r.domain ORDER BY r.domain`, since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Condition
	for rows.Next() {
		var domain string
		var total, failed int
		if err := rows.Scan(&domain, &total, &failed); err != nil {
			return nil, err
		}
		if total < max(1, p.MinAttempts) || float64(failed) < p.Rate*float64(total) {
			continue
		}
		out = append(out, Condition{Cause: KindDeliveryFailures + ":" + domain, Priority: P3,
			Title: fmt.Sprintf("Deliveries to %s failing: %d of %d attempts in %s", domain, failed, total, p.Window),
			Description: fmt.Sprintf("At least %.0f%% of the delivery attempts to %s over the last %s failed (deferred or bounced). "+
				"`easymail messages search --recipient-domain %s` shows them.", p.Rate*100, domain, p.Window, domain),
			Links: []Link{{Kind: "destination", Value: domain}}})
	}
	return out, rows.Err()
}

// HeldProbe raises a customer whose mail is held for suspected compromise (P2, for that customer). A hold
// set by an operator is not an incident.
type HeldProbe struct {
	DB *store.DB
	// OperatorReason is the reason recorded for an operator's hold.
	OperatorReason string
}

// Kinds implements Probe.
func (HeldProbe) Kinds() []string { return []string{KindCustomerHeld} }

// Check implements Probe.
func (p HeldProbe) Check(ctx context.Context) ([]Condition, error) {
	rows, err := p.DB.R.QueryContext(ctx, `SELECT id, name, held_reason FROM customers WHERE held = 1 AND held_reason <> ? ORDER BY id`, p.OperatorReason)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Condition
	for rows.Next() {
		var id, name, reason string
		if err := rows.Scan(&id, &name, &reason); err != nil {
			return nil, err
		}
		out = append(out, Condition{Cause: KindCustomerHeld + ":" + id, Priority: P2, CustomerID: id,
			Title: fmt.Sprintf("Outbound mail of %s held: suspected compromise", name),
			Description: "Detected: " + reason + "\nThe customer's messages are accepted and kept, not delivered, until an " +
				"operator releases them (`easymail customer release-held " + id + "`) or purges them.",
			Links: []Link{{Kind: "customer", Value: id}}})
	}
	return out, rows.Err()
}

// CertProbe raises a certificate in use that expires within Within (P4).
type CertProbe struct {
	// Certs returns the certificates in use, by name ("smtp").
	Certs  func() map[string]*x509.Certificate
	Within time.Duration
	Now    func() time.Time
}

// Kinds implements Probe.
func (CertProbe) Kinds() []string { return []string{KindCertExpiry} }

// Check implements Probe.
func (p CertProbe) Check(context.Context) ([]Condition, error) {
	var out []Condition
	certs := p.Certs()
	now := p.Now()
	for _, name := range slices.Sorted(mapKeys(certs)) {
		c := certs[name]
		if c == nil || c.NotAfter.Sub(now) >= p.Within {
			continue
		}
		left := c.NotAfter.Sub(now).Round(time.Hour)
		what := fmt.Sprintf("expires in %s", left)
		if left <= 0 {
			what = "has expired"
		}
		out = append(out, Condition{Cause: KindCertExpiry + ":" + name, Priority: P4,
			Title: fmt.Sprintf("The %s TLS certificate (%s) %s", name, c.Subject.CommonName, what),
			Description: fmt.Sprintf("Not after %s. Renew it (smtp.tls_cert, smtp.tls_key) and restart the node.",
				c.NotAfter.UTC().Format(time.RFC3339))})
	}
	return out, nil
}
