package incident

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Notice kinds: an incident opened, its priority changed, it was resolved.
const (
	noticeOpened   = "opened"
	noticePriority = "priority"
	noticeResolved = "resolved"
)

// recipient is an address a notice goes to, and whether it is the operator's (who sees everything).
type recipient struct {
	addr     string
	operator bool
}

// recipients returns the notice's addresses: the technical contact of the incident's customer and of the
// customers linked to it (technical_email, else contact_email), and the operator, each once.
func (s *Service) recipients(ctx context.Context, inc *Incident) ([]recipient, error) {
	ids := []string{}
	if inc.CustomerID != "" {
		ids = append(ids, inc.CustomerID)
	}
	for _, l := range inc.Links {
		if l.Kind == "customer" && !slices.Contains(ids, l.Value) {
			ids = append(ids, l.Value)
		}
	}
	var out []recipient
	seen := map[string]bool{}
	for _, id := range ids {
		var tech, contact string
		err := s.o.DB.R.QueryRowContext(ctx, `SELECT technical_email, contact_email FROM customers WHERE id = ?`, id).Scan(&tech, &contact)
		if err == sql.ErrNoRows {
			continue
		} else if err != nil {
			return nil, err
		}
		a := tech
		if a == "" {
			a = contact
		}
		if a != "" && !seen[strings.ToLower(a)] {
			seen[strings.ToLower(a)] = true
			out = append(out, recipient{addr: a})
		}
	}
	if op := s.o.Operator; op != "" && !seen[strings.ToLower(op)] {
		out = append(out, recipient{addr: op, operator: true})
	}
	return out, nil
}

// location is the time zone of the incident's SLA type, for the times written in notices.
func (s *Service) location(inc *Incident) *time.Location {
	_, t := s.slaType(inc.SLAType)
	if t.Window.Location != nil {
		return t.Window.Location
	}
	return time.UTC
}

// notify mails the notice of kind about inc to its recipients, recording each one queued in the timeline
// (an internal "notice" event, in the same transaction). A notice that cannot be queued is logged: the
// incident stands without it.
func (s *Service) notify(ctx context.Context, inc *Incident, kind, detail string) {
	if s.o.Mailer == nil {
		return
	}
	rcpts, err := s.recipients(ctx, inc)
	if err != nil {
		s.log.Error("incident: notice recipients not found", "incident", inc.ID, "err", err)
		return
	}
	for _, r := range rcpts {
		subject, body := s.compose(inc, kind, detail, r.operator)
		_, err := s.o.Mailer.SubmitWith(context.WithoutCancel(ctx), s.o.From, r.addr, subject, body, func(tx *sql.Tx, qid string) error {
			return addEvent(ctx, tx, inc.ID, s.o.Now(), "notice", VisibilityInternal, ActorSystem, kind, r.addr, "queued as "+qid)
		})
		if err != nil {
			s.log.Error("incident: notice not queued", "incident", inc.ID, "to", r.addr, "kind", kind, "err", err)
		}
	}
}

// compose writes a notice. The customer's copy says nothing of the cause key or of other customers.
func (s *Service) compose(inc *Incident, kind, detail string, operator bool) (subject, body string) {
	loc := s.location(inc)
	at := func(t time.Time) string { return t.In(loc).Format("Mon 2 Jan 2006 15:04 MST") }
	var b strings.Builder
	switch kind {
	case noticeOpened:
		subject = fmt.Sprintf("[%s] %s opened: %s", inc.Priority, inc.ID, inc.Title)
		fmt.Fprintf(&b, "Incident %s was opened on %s (%s, channel %s).\n\n", inc.ID, at(inc.OpenedAt), inc.Priority, inc.Channel)
		fmt.Fprintf(&b, "Response due by %s (SLA %s, counted in the service window).\n", at(inc.SLA.ResponseDueAt), inc.SLAType)
	case noticePriority:
		subject = fmt.Sprintf("[%s] %s priority changed from %s to %s: %s", inc.Priority, inc.ID, detail, inc.Priority, inc.Title)
		fmt.Fprintf(&b, "The priority of incident %s changed from %s to %s.\n", inc.ID, detail, inc.Priority)
	case noticeResolved:
		subject = fmt.Sprintf("[%s] %s resolved: %s", inc.Priority, inc.ID, inc.Title)
		fmt.Fprintf(&b, "Incident %s was resolved", inc.ID)
		if inc.ResolvedAt != nil {
			fmt.Fprintf(&b, " on %s", at(*inc.ResolvedAt))
		}
		b.WriteString(".\n")
		if detail != "" {
			fmt.Fprintf(&b, "\n%s\n", detail)
		}
		if !operator && inc.CustomerID != "" {
			b.WriteString("\nPlease confirm the resolution (`easymail incident confirm " + inc.ID + "`, or POST /api/v1/incidents/" +
				inc.ID + "/confirm), or tell us it persists by replying with " + inc.ID + " in the subject.\n")
		}
	}
	fmt.Fprintf(&b, "\nTitle: %s\n", inc.Title)
	if inc.Description != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(inc.Description))
	}
	if operator {
		if inc.Cause != "" {
			fmt.Fprintf(&b, "\nCause: %s\n", inc.Cause)
		}
		if inc.CustomerID != "" {
			fmt.Fprintf(&b, "Customer: %s\n", inc.CustomerID)
		}
		for _, l := range inc.Links {
			fmt.Fprintf(&b, "Concerns %s %s\n", l.Kind, l.Value)
		}
		fmt.Fprintf(&b, "\n`easymail incident show %s`\n", inc.ID)
	}
	if s.o.Address != "" {
		fmt.Fprintf(&b, "\nWrite to %s with %s in the subject to add to this incident.\n", s.o.Address, inc.ID)
	}
	if s.o.Service != "" {
		fmt.Fprintf(&b, "\n-- \n%s incident desk\n", s.o.Service)
	}
	return "[easymail] " + subject, b.String()
}

// collector exports the open incidents and the response breaches among them by priority.
type collector struct {
	s              *Service
	open, breached *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.open; ch <- c.breached }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := c.s.now()
	var open, breached [5]int
	rows, err := c.s.o.DB.R.QueryContext(ctx, `SELECT priority, response_due_at, responded_at FROM incidents WHERE status IN `+openSQL)
	if err == nil {
		for rows.Next() {
			var p int
			var due int64
			var resp sql.NullInt64
			if rows.Scan(&p, &due, &resp) == nil && p >= 1 && p <= 4 {
				open[p]++
				if (resp.Valid && resp.Int64 > due) || (!resp.Valid && now > due) {
					breached[p]++
				}
			}
		}
		rows.Close()
	}
	for p := 1; p <= 4; p++ {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(open[p]), priorityName(p))
		ch <- prometheus.MustNewConstMetric(c.breached, prometheus.GaugeValue, float64(breached[p]), priorityName(p))
	}
}
