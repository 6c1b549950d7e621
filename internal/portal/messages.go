package portal

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"easymail/internal/api"
	"easymail/internal/msglog"
)

// searchFields are the message search's fields: the API's (GET /api/v1/messages).
var searchFields = []string{"sender", "recipient", "domain", "message_id", "queue_id", "status", "customer", "outbound_ip",
	"remote_mx", "verdict", "bounce_class", "since", "until"}

type messagesView struct {
	Q        map[string]string
	Statuses []string
	Results  []api.MessageSummary
	// Next is the query of the next page, "" at the end.
	Next   string
	Search bool
}

// pageSize is the messages listed per page.
const pageSize = 50

func parseDate(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &msglog.FilterError{Field: field, Msg: fmt.Sprintf("%q is not a date (2006-01-02 or 2006-01-02T15:04)", v)}
}

func (s *server) messages(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	q := r.URL.Query()
	d := messagesView{Q: map[string]string{}, Statuses: msglog.Statuses()}
	for _, f := range searchFields {
		d.Q[f] = strings.TrimSpace(q.Get(f))
		if d.Q[f] != "" {
			d.Search = true
		}
	}
	cust, ok := rc.scope(d.Q["customer"])
	if !ok {
		return errNotFound
	}
	if !rc.staff() {
		d.Q["customer"] = ""
	}
	f := msglog.Filter{Customer: cust, Sender: d.Q["sender"], Recipient: d.Q["recipient"], Domain: d.Q["domain"],
		MessageID: d.Q["message_id"], QueueID: d.Q["queue_id"], Status: d.Q["status"], OutboundIP: d.Q["outbound_ip"],
		RemoteMX: d.Q["remote_mx"], Verdict: d.Q["verdict"], BounceClass: d.Q["bounce_class"], Limit: pageSize + 1,
		Before: q.Get("before")}
	var err error
	if f.Since, err = parseDate("since", d.Q["since"]); err != nil {
		return err
	}
	if f.Until, err = parseDate("until", d.Q["until"]); err != nil {
		return err
	}
	if d.Results, err = msglog.Search(r.Context(), s.o.DB, f); err != nil {
		return err
	}
	if len(d.Results) > pageSize {
		d.Results = d.Results[:pageSize]
		next := r.URL.Query()
		next.Set("before", d.Results[pageSize-1].ID)
		d.Next = next.Encode()
	}
	return s.render(w, r, rc, http.StatusOK, "messages", "messages", "Messages", d)
}

// event is one step of a message's timeline.
type event struct {
	At     time.Time
	Kind   string
	Title  string
	Detail []string
	// Class is ok, warn or fail, for the colour.
	Class string
}

type messageView struct {
	T        *api.Trace
	Timeline []event
	Queued   bool
}

func (s *server) message(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	t, err := msglog.Trace(r.Context(), s.o.DB, r.PathValue("id"))
	if err != nil {
		return err
	}
	if !rc.principal().CanRead(t.CustomerID) {
		return errNotFound
	}
	d := messageView{T: t, Timeline: timeline(rc, t)}
	for _, rcpt := range t.Recipients {
		if rcpt.Status == "queued" || rcpt.Status == "deferred" {
			d.Queued = true
		}
	}
	return s.render(w, r, rc, http.StatusOK, "message", "messages", "Message", d)
}

// timeline orders what the log knows of a message: reception, scan, signature, each attempt, the outcome.
func timeline(rc *reqCtx, t *api.Trace) []event {
	p := rc.p
	var out []event
	recv := event{At: t.ReceivedAt, Kind: "received", Title: p.Sprintf("Received"), Class: "ok",
		Detail: []string{p.Sprintf("from %s (HELO %s)", t.ClientIP, t.HELO), p.Sprintf("sender <%s>, %d bytes", t.Sender, t.Size)}}
	if t.TLS != "" {
		recv.Detail = append(recv.Detail, "TLS: "+t.TLS)
	}
	if t.Status == "rejected" {
		recv.Title, recv.Class = p.Sprintf("Refused"), "fail"
		recv.Detail = append(recv.Detail, p.Sprintf("at %s: %s", t.Stage, t.Reason))
	}
	out = append(out, recv)
	if t.Verdict != "" {
		e := event{At: t.ReceivedAt, Kind: "scanned", Title: p.Sprintf("Scanned: %s", t.Verdict), Class: "ok"}
		if t.Verdict != "clean" {
			e.Class = "warn"
		}
		if t.Scan != nil {
			for _, v := range t.Scan.Verdicts {
				line := v.Scanner + ": " + v.Result
				if v.Name != "" {
					line += " (" + v.Name + ")"
				}
				if v.Score != 0 {
					line += fmt.Sprintf(" score %.1f", v.Score)
				}
				e.Detail = append(e.Detail, line)
			}
			for _, h := range t.Scan.Rules {
				e.Detail = append(e.Detail, p.Sprintf("rule %s", h.Rule))
			}
			if t.Scan.Action != "" {
				e.Detail = append(e.Detail, p.Sprintf("action: %s", t.Scan.Action))
			}
		}
		out = append(out, e)
	}
	if t.DKIMDomain != "" {
		out = append(out, event{At: t.ReceivedAt, Kind: "signed", Title: p.Sprintf("Signed (DKIM)"), Class: "ok",
			Detail: []string{"d=" + t.DKIMDomain + " s=" + t.DKIMSelectors}})
	}
	for _, a := range t.Attempts {
		e := event{At: a.StartedAt, Kind: "attempt", Title: p.Sprintf("Attempt %d to %s: %s", a.Attempt, a.Recipient, a.Outcome)}
		switch a.Outcome {
		case "delivered":
			e.Class = "ok"
		case "deferred":
			e.Class = "warn"
		default:
			e.Class = "fail"
		}
		e.Detail = append(e.Detail, p.Sprintf("MX %s (%s), from IP %s, %d ms", or(a.RemoteMX, "–"), or(a.RemoteIP, "–"), or(a.OutboundIP, "–"), a.DurationMS))
		tls := p.Sprintf("no TLS")
		if a.TLSVersion != "" {
			tls = "TLS " + a.TLSVersion + " " + a.TLSCipher + ", " + a.TLSVerify
		}
		if a.TLSPolicy != "" && a.TLSPolicy != "none" {
			tls += p.Sprintf(" (policy: %s)", a.TLSPolicy)
		}
		e.Detail = append(e.Detail, tls)
		reply := a.RemoteReply
		if reply == "" {
			reply = strings.TrimSpace(fmt.Sprintf("%d %s %s", a.Code, a.Enhanced, a.Reply))
		}
		e.Detail = append(e.Detail, p.Sprintf("reply: %s", reply))
		if a.BounceClass != "" {
			e.Detail = append(e.Detail, p.Sprintf("bounce class: %s", a.BounceClass))
		}
		out = append(out, e)
	}
	if t.DoneAt != nil {
		e := event{At: *t.DoneAt, Kind: "done", Title: p.Sprintf("Finished: %s", t.Status), Class: "ok"}
		if t.Status != "delivered" {
			e.Class = "fail"
		}
		for _, rcpt := range t.Recipients {
			e.Detail = append(e.Detail, rcpt.Address+": "+rcpt.Status)
		}
		for _, id := range t.DSNs {
			e.Detail = append(e.Detail, p.Sprintf("a delivery status notification (DSN) was sent to <%s>: %s", t.Sender, id))
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b event) int { return a.At.Compare(b.At) })
	return out
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// queueActions are the operator's actions on a message, with their confirmation key.
var queueActions = map[string]string{"retry": "retry", "hold": "hold", "release": "release", "delete": "delete"}

func (s *server) messageAction(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id, action := r.PathValue("id"), r.PathValue("action")
	if _, ok := queueActions[action]; !ok {
		return errNotFound
	}
	t, err := msglog.Trace(r.Context(), s.o.DB, id)
	if err != nil {
		return err
	}
	rc.auditCustomer, rc.auditDetail = t.CustomerID, map[string]string{"message": id, "action": action}
	op := map[string]func() error{
		"retry":   func() error { return s.o.Queue.Retry(r.Context(), id) },
		"hold":    func() error { return s.o.Queue.Hold(r.Context(), id) },
		"release": func() error { return s.o.Queue.Release(r.Context(), id) },
		"delete":  func() error { return s.o.Queue.Delete(r.Context(), id) },
	}[action]
	if err := op(); err != nil {
		return err
	}
	return redirect(w, r, "/messages/"+id+"?done="+action)
}

type queueView struct {
	Summary  *msglog.QueueSummary
	Messages []api.MessageSummary
}

func (s *server) queuePage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cust, ok := rc.scope(r.URL.Query().Get("customer"))
	if !ok {
		return errNotFound
	}
	sum, err := msglog.SummarizeQueue(r.Context(), s.o.DB, cust, 50)
	if err != nil {
		return err
	}
	list, err := msglog.Queue(r.Context(), s.o.DB, cust, 100)
	if err != nil {
		return err
	}
	if !rc.staff() {
		sum.Customers = nil
	}
	return s.render(w, r, rc, http.StatusOK, "queue", "queue", "Queue", queueView{Summary: sum, Messages: list})
}
