package msglog

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"easymail/internal/queue"
	"easymail/internal/store"
)

// dsnLinks fills t.DSNFor (read with the message) and t.DSNs: the DSNs sent about the message, oldest first.
// The redundant condition that dsn_for is not empty lets SQLite use the partial index messages_dsn_for (1.1 s → 40 µs on the 5 M
// message log).
func dsnLinks(ctx context.Context, db *store.DB, t *MessageTrace) ([]dsnSent, error) {
	rows, err := db.R.QueryContext(ctx, `SELECT id, subject, received_at FROM messages WHERE dsn_for = ? AND dsn_for != '' ORDER BY received_at, id`, t.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []dsnSent
	for rows.Next() {
		var d dsnSent
		var at int64
		if err := rows.Scan(&d.id, &d.subject, &at); err != nil {
			return nil, err
		}
		d.at = store.Time(at)
		t.DSNs = append(t.DSNs, d.id)
		out = append(out, d)
	}
	return out, rows.Err()
}

// dsnSent is a DSN about the traced message.
type dsnSent struct {
	id, subject string
	at          time.Time
}

// timeline builds the human history of a traced message from what the trace holds: received (or refused,
// or quarantined), scanned, signed, every attempt, every DSN sent about it, and the outcome.
func timeline(t *MessageTrace, dsns []dsnSent) []TimelineEvent {
	m := t.Message
	var ev []TimelineEvent
	add := func(at time.Time, event, format string, args ...any) {
		ev = append(ev, TimelineEvent{At: at, Event: event, Detail: fmt.Sprintf(format, args...)})
	}
	client := strings.TrimSpace(m.ClientIP + " " + m.HELO)
	switch m.Status {
	case queue.StatusRejected:
		add(m.ReceivedAt, "rejected", "from %s at %s: %s", client, m.Stage, m.Reason)
		return ev
	default:
		tls := m.TLS
		if tls == "" {
			tls = "no TLS"
		}
		what := "received"
		if m.IsDSN {
			what = "generated"
		}
		from := "<" + m.Sender + ">"
		if m.IsDSN {
			from = "Easymail, as a DSN"
			if t.DSNFor != "" {
				from += " about " + t.DSNFor
			}
		}
		add(m.ReceivedAt, "received", "%s from %s (%s; %s), %d bytes, %d recipients", what, from, client, tls, m.Size,
			len(t.Recipients))
	}
	if s := m.Scan; s != nil && s.Verdict != "" {
		var parts []string
		for _, v := range s.Verdicts {
			r := v.Scanner + ": " + v.Result
			if v.Name != "" {
				r += " " + v.Name
			}
			if v.Scanner == "rspamd" && v.Error == "" {
				r += fmt.Sprintf(" (score %.1f)", v.Score)
			}
			parts = append(parts, r)
		}
		for _, r := range s.Rules {
			parts = append(parts, "rule "+r.Rule)
		}
		detail := s.Verdict + ", " + s.Action
		if len(parts) > 0 {
			detail += " (" + strings.Join(parts, ", ") + ")"
		}
		add(m.ReceivedAt, "scanned", "%s", detail)
	}
	if m.DKIMDomain != "" {
		add(m.ReceivedAt, "signed", "DKIM d=%s s=%s%s", m.DKIMDomain, m.DKIMSelectors, alignment(m))
	}
	if m.Status == queue.StatusQuarantined {
		add(m.ReceivedAt, "quarantined", "%s", m.Reason)
	}
	for _, a := range t.Attempts {
		where := strings.TrimSpace(a.RemoteMX + " " + bracket(a.RemoteIP))
		if where == "" {
			where = "no host reached"
		}
		reply := a.RemoteReply
		if reply == "" {
			reply = strings.TrimSpace(fmt.Sprintf("%d %s %s", a.Code, a.Enhanced, a.Reply))
		}
		add(a.StartedAt, "attempt", "#%d to %s via %s from %s: %s: %s", a.Attempt, a.Recipient, where, a.OutboundIP,
			a.Outcome, reply)
	}
	for _, d := range dsns {
		add(d.at, "dsn", "%s: %s", d.id, d.subject)
	}
	if m.DoneAt != nil && m.Status != queue.StatusQuarantined {
		detail := m.Status
		if m.Reason != "" {
			detail += ": " + m.Reason
		}
		add(*m.DoneAt, m.Status, "%s", detail)
	}
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].At.Before(ev[j].At) })
	return ev
}

func bracket(ip string) string {
	if ip == "" {
		return ""
	}
	return "[" + ip + "]"
}

// alignment is the DMARC alignment of a signed message, for the timeline: " (DKIM aligned, DMARC pass)".
func alignment(m Message) string {
	var parts []string
	if m.DKIMAligned != nil {
		parts = append(parts, "DKIM "+yesNo(*m.DKIMAligned, "aligned", "not aligned"))
	}
	if m.DMARCAligned != nil {
		parts = append(parts, "DMARC "+yesNo(*m.DMARCAligned, "aligned", "not aligned"))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}
