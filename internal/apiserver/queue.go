package apiserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/config"
	"easymail/internal/fielderr"
	"easymail/internal/msglog"
	"easymail/internal/queue"
)

// queueParams are the query parameters of GET /queue besides limit and after: the fields of api.QueueFilter.
var queueParams = []string{"customer", "status", "held", "domain", "recipient", "sender", "older_than", "younger_than"}

// queueFilterOf reads the filter fields of GET /queue's query.
func queueFilterOf(q url.Values) (api.QueueFilter, error) {
	f := api.QueueFilter{Customer: q.Get("customer"), Status: q.Get("status"), Domain: q.Get("domain"),
		Recipient: q.Get("recipient"), Sender: q.Get("sender"), OlderThan: q.Get("older_than"),
		YoungerThan: q.Get("younger_than")}
	switch q.Get("held") {
	case "", "false", "0":
	case "true", "1":
		f.Held = true
	default:
		return f, badRequest(fmt.Sprintf("held must be true or false, not %q", q.Get("held")), "held")
	}
	return f, nil
}

// resolveFilter checks f and turns it into the message log's filter, the ages counted back from now.
func resolveFilter(f api.QueueFilter, now time.Time) (msglog.QueueFilter, error) {
	out := msglog.QueueFilter{Customer: f.Customer, Status: f.Status, Domain: f.Domain, Recipient: f.Recipient, Sender: f.Sender}
	if f.Held {
		if f.Status != "" && f.Status != queue.StatusHeld {
			return out, &api.Error{Status: http.StatusUnprocessableEntity, Field: "held",
				Message: fmt.Sprintf("held selects the held messages, and status %s the messages that are not held: give one", f.Status)}
		}
		out.Status = queue.StatusHeld
	}
	age := func(field, v string) (time.Time, error) {
		if v == "" {
			return time.Time{}, nil
		}
		d, err := config.ParseDuration(v)
		if err != nil || d < 0 {
			if err == nil {
				err = fmt.Errorf("%q is negative", v)
			}
			return time.Time{}, &api.Error{Status: http.StatusUnprocessableEntity, Field: field, Message: err.Error()}
		}
		return now.Add(-d), nil
	}
	var err error
	if out.ReceivedBefore, err = age("older_than", f.OlderThan); err != nil {
		return out, err
	}
	if out.ReceivedAfter, err = age("younger_than", f.YoungerThan); err != nil {
		return out, err
	}
	return out, nil
}

func (s *server) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

func (s *server) listQueue(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	q, err := query(r, append([]string{"limit", "after"}, queueParams...)...)
	if err != nil {
		return err
	}
	lim, err := parseLimit(q)
	if err != nil {
		return err
	}
	af, err := queueFilterOf(q)
	if err != nil {
		return err
	}
	f, err := resolveFilter(af, s.now())
	if err != nil {
		return err
	}
	cust, ok := scope(p, f.Customer)
	if !ok {
		writeJSON(w, http.StatusOK, api.QueuePage{Messages: []api.MessageSummary{}})
		return nil
	}
	f.Customer, f.Limit, f.After = cust, lim, q.Get("after")
	page, err := msglog.QueuePage(r.Context(), s.db, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// bulkQueue serves POST /queue/bulk: the action on every message the filter matches, each under the queue's
// own rules (queue.Bulk), in one request and so one audit entry, whose snapshot is the answer: the filter,
// the counts and the reasons of the skipped messages.
func (s *server) bulkQueue(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	var req api.BulkRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if queue.BulkOp(s.queue, req.Action) == nil {
		return &api.Error{Status: http.StatusUnprocessableEntity, Field: "action",
			Message: fmt.Sprintf("action must be one of %s, not %q", strings.Join(queue.BulkActions, ", "), req.Action)}
	}
	if req.Filter.All && req.Filter != (api.QueueFilter{All: true}) {
		return &api.Error{Status: http.StatusUnprocessableEntity, Field: "filter.all",
			Message: "all selects the whole queue: give it alone, or filters without it"}
	}
	if req.Filter == (api.QueueFilter{}) {
		return &api.Error{Status: http.StatusUnprocessableEntity, Field: "filter",
			Message: `a filter is required: {"all": true} for the whole queue, or customer, status, held, domain, recipient, sender, older_than, younger_than`}
	}
	f, err := resolveFilter(req.Filter, s.now())
	if err != nil {
		return fieldPrefix(err, "filter.")
	}
	ids, err := msglog.QueueIDs(r.Context(), s.db, f)
	if err != nil {
		return fieldPrefix(err, "filter.")
	}
	// Once started, the action runs to its end and is answered and audited even if the client hangs up.
	out, err := queue.Bulk(context.WithoutCancel(r.Context()), s.queue, req.Action, ids)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.BulkResult{Action: req.Action, Filter: req.Filter, Matched: len(ids), Changed: out.Changed, Skipped: out.Skipped})
	return nil
}

// fieldPrefix prefixes the field of an API or filter error (filter.status for a bulk request's status).
func fieldPrefix(err error, prefix string) error {
	var ae *api.Error
	var fe *fielderr.Error
	switch {
	case errors.As(err, &ae) && ae.Field != "":
		c := *ae
		c.Field = prefix + c.Field
		return &c
	case errors.As(err, &fe):
		return &api.Error{Status: http.StatusUnprocessableEntity, Field: prefix + fe.Field, Message: fe.Msg}
	}
	return err
}

// messageContent serves GET /queue/{id}/content: the message as it is in this node's spool, for operators and
// experts (postcat -q). The spool keeps a message while a recipient is left to deliver (and while it is
// quarantined); after that only the log's record is left.
func (s *server) messageContent(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	id := r.PathValue("id")
	if s.spool == nil {
		return notFound("message", id)
	}
	var one int
	if err := s.db.R.QueryRowContext(r.Context(), `SELECT 1 FROM messages WHERE id = ?`, id).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("message", id)
		}
		return err
	}
	f, err := s.spool.Open(id)
	if errors.Is(err, fs.ErrNotExist) {
		return &api.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("message %q has no content in this node's spool: "+
			"the content is removed once no recipient is left to deliver (see easymail trace %s)", id, id)}
	}
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "message/rfc822")
	w.WriteHeader(http.StatusOK)
	_, err = io.Copy(w, f)
	if err != nil {
		s.log.Warn("api: message content: the copy stopped", "id", id, "err", err)
	}
	return nil
}
