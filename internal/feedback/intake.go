package feedback

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/abuse"
	"easymail/internal/bounce"
	"easymail/internal/events"
	"easymail/internal/store"
)

// Complaint kinds (the complaints table's kind).
const KindComplaint = "complaint"

// Intake matches reports to relayed messages and records them. It is safe for concurrent use.
type Intake struct {
	db       *store.DB
	bus      *events.Bus
	hostname string
	now      func() time.Time
	log      *slog.Logger

	reports *prometheus.CounterVec
	byCust  *prometheus.CounterVec
	byIP    *prometheus.CounterVec
}

// IntakeOptions configure an Intake.
type IntakeOptions struct {
	DB *store.DB
	// Bus receives the complained and suppressed events; nil emits none.
	Bus *events.Bus
	// Hostname is the relay's host name, as in its Received fields.
	Hostname   string
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// NewIntake returns an intake.
func NewIntake(o IntakeOptions) *Intake {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	in := &Intake{db: o.DB, bus: o.Bus, hostname: strings.ToLower(o.Hostname), now: o.Now, log: o.Logger,
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_feedback_reports_total",
			Help: "Feedback reports received, by result: matched, unmatched (no relayed message found), invalid (not a report)."},
			[]string{"result"}),
		byCust: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_complaints_total",
			Help: "Complaints matched to a customer's relayed message, by customer."}, []string{"customer"}),
		byIP: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_complaints_by_ip_total",
			Help: "Complaints matched to a relayed message, by the outbound IP it left from."}, []string{"ip"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(in.reports, in.byCust, in.byIP)
	}
	return in
}

// Outcome is what became of a report.
type Outcome struct {
	Matched    bool
	CustomerID string
	QueueID    string
	Recipient  string
	OutboundIP string
}

// errNoMatch is the reason a report matched no relayed message.
var errNoMatch = errors.New("no relayed message matches the report")

// Invalid counts a message that was not a feedback report.
func (in *Intake) Invalid() { in.reports.WithLabelValues("invalid").Inc() }

// Record matches rep to a relayed message and, when it matches, records the complaint, suppresses the
// complainant for the message's customer and emits the events, in one transaction. A report that matches
// nothing is counted and logged, and is no error.
func (in *Intake) Record(ctx context.Context, rep *Report) (Outcome, error) {
	out, err := in.match(ctx, rep)
	if errors.Is(err, errNoMatch) {
		in.reports.WithLabelValues("unmatched").Inc()
		in.log.Info("feedback: report matches no relayed message", "feedback_type", rep.FeedbackType, "reporter", rep.Reporter,
			"message_id", rep.MessageID, "received_ids", len(rep.Received))
		return out, nil
	}
	if err != nil {
		return out, err
	}
	now := in.now()
	var evs []events.Event
	err = in.db.Tx(ctx, func(tx *sql.Tx) error {
		evs = evs[:0]
		if _, err := tx.Exec(`INSERT INTO complaints (customer_id, queue_id, recipient, outbound_ip, kind, feedback_type, reporter,
			received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, out.CustomerID, out.QueueID, out.Recipient, out.OutboundIP, KindComplaint,
			rep.FeedbackType, rep.Reporter, store.Millis(now)); err != nil {
			return err
		}
		var msgID string
		tx.QueryRow(`SELECT message_id FROM messages WHERE id = ?`, out.QueueID).Scan(&msgID)
		e := events.Event{Event: events.Complained, CustomerID: out.CustomerID, QueueID: out.QueueID, MessageID: msgID,
			Recipient: out.Recipient, Timestamp: now, Source: KindComplaint, FeedbackType: rep.FeedbackType, OutboundIP: out.OutboundIP}
		if err := in.bus.Emit(tx, &e); err != nil {
			return err
		}
		evs = append(evs, e)
		if out.Recipient == "" {
			return nil
		}
		reason := fmt.Sprintf("%s report from %s", rep.FeedbackType, or(rep.Reporter, "a receiver"))
		if err := bounce.SuppressAs(tx, bounce.SourceComplaint, out.CustomerID, out.Recipient, out.QueueID, reason, now); err != nil {
			return err
		}
		s := events.Event{Event: events.Suppressed, CustomerID: out.CustomerID, QueueID: out.QueueID, MessageID: msgID,
			Recipient: out.Recipient, Timestamp: now, Source: bounce.SourceComplaint}
		if err := in.bus.Emit(tx, &s); err != nil {
			return err
		}
		evs = append(evs, s)
		return nil
	})
	if err != nil {
		return out, err
	}
	in.bus.Published(evs...)
	in.reports.WithLabelValues("matched").Inc()
	in.byCust.WithLabelValues(out.CustomerID).Inc()
	if out.OutboundIP != "" {
		in.byIP.WithLabelValues(out.OutboundIP).Inc()
	}
	in.log.Info("feedback: complaint recorded; recipient suppressed", "customer", out.CustomerID, "queue_id", out.QueueID,
		"feedback_type", rep.FeedbackType, "reporter", rep.Reporter, "ip", out.OutboundIP, "suppressed", out.Recipient != "")
	return out, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// match finds the relayed message of rep: by the queue id of the relay's own Received field (only those
// naming this relay's host name), else by Message-ID (the latest message with it). The complainant must be
// one of the message's recipients; when the report does not name one and the message has a single
// recipient, that is the complainant.
func (in *Intake) match(ctx context.Context, rep *Report) (Outcome, error) {
	var out Outcome
	var candidates []string
	for _, r := range rep.Received {
		if r.Host == in.hostname {
			candidates = append(candidates, r.QueueID)
		}
	}
	if len(candidates) == 0 && rep.MessageID != "" {
		var id string
		err := in.db.R.QueryRowContext(ctx, `SELECT id FROM messages WHERE message_id = ? AND is_dsn = 0 AND customer_id != ''
			ORDER BY received_at DESC LIMIT 1`, rep.MessageID).Scan(&id)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return out, err
		}
		if id != "" {
			candidates = append(candidates, id)
		}
	}
	for _, id := range candidates {
		err := in.db.R.QueryRowContext(ctx, `SELECT customer_id FROM messages WHERE id = ? AND is_dsn = 0`, id).Scan(&out.CustomerID)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && out.CustomerID == "") {
			continue
		}
		if err != nil {
			return out, err
		}
		out.QueueID, out.Matched = id, true
		break
	}
	if !out.Matched {
		return out, errNoMatch
	}
	rows, err := in.db.R.QueryContext(ctx, `SELECT address, outbound_ip FROM recipients WHERE message_id = ? ORDER BY idx`, out.QueueID)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	type rcpt struct{ addr, ip string }
	var rcpts []rcpt
	for rows.Next() {
		var r rcpt
		if err := rows.Scan(&r.addr, &r.ip); err != nil {
			return out, err
		}
		rcpts = append(rcpts, r)
	}
	if err := rows.Err(); err != nil {
		return out, err
	}
	for _, r := range rcpts {
		if rep.OriginalRcpt != "" && strings.EqualFold(r.addr, rep.OriginalRcpt) {
			out.Recipient, out.OutboundIP = strings.ToLower(r.addr), r.ip
		}
	}
	if out.Recipient == "" && rep.OriginalRcpt == "" && len(rcpts) == 1 {
		out.Recipient, out.OutboundIP = strings.ToLower(rcpts[0].addr), rcpts[0].ip
	}
	if out.OutboundIP == "" {
		// The complainant is unknown (redacted) or not a recipient: the message's outbound IP, or the report's.
		for _, r := range rcpts {
			if r.ip != "" {
				out.OutboundIP = r.ip
				break
			}
		}
		if out.OutboundIP == "" {
			out.OutboundIP = rep.SourceIP
		}
	}
	return out, nil
}

// Rates returns the complaint rates since from, per customer and per outbound IP, highest first. Delivered
// counts the recipients delivered since from (of messages that are not DSNs).
func (in *Intake) Rates(ctx context.Context, from time.Time) (customers, ips []Rate, err error) {
	since := store.Millis(from)
	customers, err = in.rates(ctx, `SELECT c.customer_id, c.n, COALESCE(d.n, 0) FROM
		(SELECT customer_id, COUNT(*) AS n FROM complaints WHERE received_at >= ? GROUP BY customer_id) c
		LEFT JOIN (SELECT m.customer_id, COUNT(*) AS n FROM recipients r JOIN messages m ON m.id = r.message_id
			WHERE r.status = 'delivered' AND r.updated_at >= ? AND m.is_dsn = 0 GROUP BY m.customer_id) d
		ON d.customer_id = c.customer_id`, since)
	if err != nil {
		return nil, nil, err
	}
	ips, err = in.rates(ctx, `SELECT c.outbound_ip, c.n, COALESCE(d.n, 0) FROM
		(SELECT outbound_ip, COUNT(*) AS n FROM complaints WHERE received_at >= ? AND outbound_ip != '' GROUP BY outbound_ip) c
		LEFT JOIN (SELECT r.outbound_ip, COUNT(*) AS n FROM recipients r JOIN messages m ON m.id = r.message_id
			WHERE r.status = 'delivered' AND r.updated_at >= ? AND m.is_dsn = 0 GROUP BY r.outbound_ip) d
		ON d.outbound_ip = c.outbound_ip`, since)
	return customers, ips, err
}

func (in *Intake) rates(ctx context.Context, q string, since int64) ([]Rate, error) {
	rows, err := in.db.R.QueryContext(ctx, q, since, since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Rate{}
	for rows.Next() {
		var r Rate
		if err := rows.Scan(&r.Key, &r.Complaints, &r.Delivered); err != nil {
			return nil, err
		}
		r.Rate = float64(r.Complaints) / float64(max(r.Delivered, r.Complaints, 1))
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Rate) int { return cmp.Compare(b.Rate, a.Rate) })
	return out, rows.Err()
}

// CustomerComplaints returns the complaints and deliveries of every customer with complaints since from,
// for compromise detection (abuse.ComplaintRates).
func (in *Intake) CustomerComplaints(ctx context.Context, from time.Time) ([]abuse.ComplaintCount, error) {
	rates, _, err := in.Rates(ctx, from)
	if err != nil {
		return nil, err
	}
	out := make([]abuse.ComplaintCount, len(rates))
	for i, r := range rates {
		out[i] = abuse.ComplaintCount{CustomerID: r.Key, Complaints: r.Complaints, Delivered: r.Delivered}
	}
	return out, nil
}
