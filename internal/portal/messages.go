package portal

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"easymail/internal/fielderr"
	"easymail/internal/msglog"
)

// searchFields are the message search's fields: the API's (GET /api/v1/messages).
var searchFields = []string{"sender", "recipient", "domain", "message_id", "queue_id", "status", "customer", "outbound_ip",
	"remote_mx", "verdict", "bounce_class", "since", "until"}

type messagesView struct {
	Q        map[string]string
	Statuses []string
	Results  []msglog.MessageSummary
	// Next is the query of the next page, "" at the end.
	Next   string
	Search bool
	// Actions are the bulk actions.
	Actions []bulkAction
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
	return time.Time{}, &fielderr.Error{Field: field, Msg: fmt.Sprintf("%q is not a date (2006-01-02 or 2006-01-02T15:04)", v)}
}

// search reads the message search of a query or form: the fields as given (Q), and the message log's
// filter, limited to the user's customer for a customer's user (errNotFound when it asked for another).
func search(q url.Values, rc *reqCtx) (map[string]string, msglog.Filter, error) {
	fields := map[string]string{}
	for _, f := range searchFields {
		fields[f] = strings.TrimSpace(q.Get(f))
	}
	cust, ok := rc.scope(fields["customer"])
	if !ok {
		return nil, msglog.Filter{}, errNotFound
	}
	if !rc.staff() {
		fields["customer"] = ""
	}
	f := msglog.Filter{Customer: cust, Sender: fields["sender"], Recipient: fields["recipient"], Domain: fields["domain"],
		MessageID: fields["message_id"], QueueID: fields["queue_id"], Status: fields["status"], OutboundIP: fields["outbound_ip"],
		RemoteMX: fields["remote_mx"], Verdict: fields["verdict"], BounceClass: fields["bounce_class"]}
	var err error
	if f.Since, err = parseDate("since", fields["since"]); err != nil {
		return nil, f, err
	}
	if f.Until, err = parseDate("until", fields["until"]); err != nil {
		return nil, f, err
	}
	return fields, f, nil
}

func (s *server) messages(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	q := r.URL.Query()
	fields, f, err := search(q, rc)
	if err != nil {
		return err
	}
	d := messagesView{Q: fields, Statuses: msglog.Statuses(), Actions: bulkActions}
	for _, v := range fields {
		if v != "" {
			d.Search = true
		}
	}
	f.Limit, f.Before = pageSize+1, q.Get("before")
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
	T        *msglog.MessageTrace
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
func timeline(rc *reqCtx, t *msglog.MessageTrace) []event {
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
	Messages []msglog.MessageSummary
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
