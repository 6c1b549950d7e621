package msglog

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"easymail/internal/bounce"
	"easymail/internal/fielderr"
	"easymail/internal/queue"
	"easymail/internal/store"
)

// Filter selects messages. Empty fields do not filter; the recipient fields (Recipient, Domain, OutboundIP,
// RemoteMX, BounceClass) must all hold for one same recipient of the message.
type Filter struct {
	// Customer is a customer id.
	Customer string
	// Sender is an envelope sender address, or a domain (no "@"): every sender at that domain. Addresses
	// match without regard to the case of ASCII letters.
	Sender string
	// Recipient is a recipient address, or a domain (no "@"): any recipient at that domain.
	Recipient string
	// Domain is a recipient domain.
	Domain string
	// MessageID is the Message-ID header, with or without its angle brackets.
	MessageID string
	// QueueID is a queue id (the message's id).
	QueueID string
	// Status is one of Statuses().
	Status string
	// OutboundIP and RemoteMX are the outbound IP and remote MX host of a recipient's last attempt.
	OutboundIP string
	RemoteMX   string
	// Verdict is the scan verdict.
	Verdict string
	// BounceClass is the bounce class of a recipient's last failure (package bounce).
	BounceClass string
	// Since and Until bound the reception time: Since <= received < Until.
	Since, Until time.Time
	// Limit is the most messages returned: DefaultLimit when 0, at most MaxLimit.
	Limit int
	// Before is a paging cursor: only messages listed after the message with this id are returned.
	Before string
}

// probeLimit decides how a search with recipient conditions runs. When fewer recipients than this match,
// they are looked up by index and their messages sorted (an address, a rare domain or MX); when more do, the
// messages are scanned newest first and each is checked, which finds a page of a common domain quickly.
const probeLimit = 2000

// plan is a search's SQL conditions on messages m, and on recipients r when rcond is not empty. rscan holds
// the recipient conditions in a form no index serves (text columns as "(col || ”)"): within the check of
// each message scanned, the lookup must go by the recipients' primary key, not by an index on the condition.
type plan struct {
	where []string
	args  []any
	rcond []string
	rscan []string
	rargs []any
}

func (p *plan) add(cond string, a ...any) {
	p.where = append(p.where, cond)
	p.args = append(p.args, a...)
}

// addR adds a condition on the recipient column expression col ("r.domain", "lower(r.address)"); op is the
// rest of the condition ("= ?").
func (p *plan) addR(col, op string, a ...any) {
	p.rcond = append(p.rcond, col+" "+op)
	p.rscan = append(p.rscan, unindexed(col)+" "+op)
	p.rargs = append(p.rargs, a...)
}

// unindexed turns a column expression on r into one no index matches: r.x becomes (r.x || ”).
func unindexed(col string) string {
	i := strings.Index(col, "r.")
	j := i + 2
	for j < len(col) && (col[j] == '_' || col[j] >= 'a' && col[j] <= 'z') {
		j++
	}
	return col[:i] + "(" + col[i:j] + " || '')" + col[j:]
}

// plan checks f and turns it into SQL conditions.
func (f Filter) plan() (*plan, error) {
	p := &plan{}
	if f.Customer != "" {
		p.add("m.customer_id = ?", f.Customer)
	}
	if s := strings.TrimSpace(f.Sender); s != "" {
		if strings.Contains(s, "@") {
			p.add("lower(m.sender) = lower(?)", strings.Trim(s, "<>"))
		} else {
			p.add(`lower(m.sender) LIKE ? ESCAPE '\'`, "%@"+likeEscape(strings.ToLower(s)))
		}
	}
	if r := strings.Trim(strings.TrimSpace(f.Recipient), "<>"); r != "" {
		if strings.Contains(r, "@") {
			p.addR("lower(r.address)", "= lower(?)", r)
		} else {
			p.addR("r.domain", "= ?", strings.ToLower(r))
		}
	}
	if d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(f.Domain), ".")); d != "" {
		p.addR("r.domain", "= ?", d)
	}
	if ip := strings.TrimSpace(f.OutboundIP); ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, &fielderr.Error{Field: "outbound_ip", Msg: fmt.Sprintf("%q is not an IP address", ip)}
		}
		p.addR("r.outbound_ip", "= ?", a.Unmap().String())
	}
	if mx := strings.TrimSuffix(strings.TrimSpace(f.RemoteMX), "."); mx != "" {
		p.addR("r.remote_mx", "IN (?, ?)", mx, strings.ToLower(mx))
	}
	if c := strings.TrimSpace(f.BounceClass); c != "" {
		if !bounce.IsClass(c) {
			return nil, &fielderr.Error{Field: "bounce_class", Msg: fmt.Sprintf("%q is not a bounce class (one of %s)",
				c, strings.Join(bounce.Classes(), ", "))}
		}
		// The second term lets the partial index of failures serve the first.
		p.addR("r.bounce_class", "= ?", c)
		p.addR("r.bounce_class", "<> ''")
	}
	if id := strings.Trim(strings.TrimSpace(f.MessageID), "<>"); id != "" {
		p.add("m.message_id IN (?, ?)", id, "<"+id+">")
	}
	if id := strings.TrimSpace(f.QueueID); id != "" {
		p.add("m.id = ?", id)
	}
	if v := strings.TrimSpace(f.Verdict); v != "" {
		p.add("m.verdict = ?", v)
	}
	switch f.Status {
	case "":
	case queue.StatusHeld:
		p.add("(m.held = 1 OR m.status = ?)", queue.StatusHeld)
	case queue.StatusQueued, queue.StatusDeferred, queue.StatusDelivered, queue.StatusBounced, queue.StatusRejected, queue.StatusQuarantined, queue.StatusDeleted, queue.StatusLost:
		p.add("m.status = ? AND m.held = 0", f.Status)
	default:
		return nil, &fielderr.Error{Field: "status", Msg: fmt.Sprintf("%q is not a status (one of %s)", f.Status, strings.Join(Statuses(), ", "))}
	}
	if !f.Since.IsZero() {
		p.add("m.received_at >= ?", store.Millis(f.Since))
	}
	if !f.Until.IsZero() {
		p.add("m.received_at < ?", store.Millis(f.Until))
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return nil, &fielderr.Error{Field: "until", Msg: "must be after since"}
	}
	if f.Before != "" {
		// The first term bounds the index range; the second breaks ties by id.
		p.add(`m.received_at <= (SELECT c.received_at FROM messages c WHERE c.id = ?)
			AND (m.received_at < (SELECT c.received_at FROM messages c WHERE c.id = ?) OR m.id < ?)`,
			f.Before, f.Before, f.Before)
	}
	return p, nil
}

// query returns the SQL selecting cols from the messages m matching p, newest first, at most limit. The
// recipient conditions become an index lookup of the matching messages when few recipients match, and a
// check of each message scanned otherwise (see probeLimit).
func (p *plan) query(ctx context.Context, db *store.DB, cols string, limit int) (string, []any, error) {
	where, args := p.where, p.args
	order := " ORDER BY m.received_at DESC, m.id DESC"
	if len(p.rcond) > 0 {
		rc := strings.Join(p.rcond, " AND ")
		var n int
		err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM recipients r WHERE `+rc+` LIMIT ?) p`,
			append(append([]any{}, p.rargs...), probeLimit)...).Scan(&n)
		if err != nil {
			return "", nil, err
		}
		if n < probeLimit {
			where = append([]string{"m.id IN (SELECT r.message_id FROM recipients r WHERE " + rc + ")"}, where...)
			args = append(append([]any{}, p.rargs...), args...)
			// The unary + keeps the planner from walking the reception index instead of the few matches.
			order = " ORDER BY +m.received_at DESC, m.id DESC"
		} else {
			where = append(append([]string{}, where...), "EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND "+
				strings.Join(p.rscan, " AND ")+")")
			args = append(append([]any{}, args...), p.rargs...)
		}
	}
	// The page's ids first, then their columns: the columns (some are subqueries) are computed for the page
	// only, not for every match sorted.
	ids := "SELECT m.id FROM messages m"
	if len(where) > 0 {
		ids += " WHERE " + strings.Join(where, " AND ")
	}
	ids += order + " LIMIT ?"
	q := "SELECT " + cols + " FROM messages m WHERE m.id IN (" + ids + ") ORDER BY m.received_at DESC, m.id DESC"
	return q, append(args, limit), nil
}

// Search returns the messages matching f, newest first.
func Search(ctx context.Context, db *store.DB, f Filter) ([]MessageSummary, error) {
	p, err := f.plan()
	if err != nil {
		return nil, err
	}
	q, args, err := p.query(ctx, db, summaryColumns, limit(f.Limit))
	if err != nil {
		return nil, err
	}
	return summaries(ctx, db, q, args)
}
