package apiserver

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/msglog"
)

// messageParams are the query parameters of GET /messages and GET /messages.csv.
var messageParams = []string{"customer", "sender", "recipient", "domain", "message_id", "queue_id", "status",
	"outbound_ip", "remote_mx", "verdict", "bounce_class", "since", "until", "limit", "before", "format"}

// messages serves GET /messages (JSON, or CSV with format=csv) and, with asCSV set, GET /messages.csv.
func (s *server) messages(w http.ResponseWriter, r *http.Request, p authz.Principal, asCSV bool) error {
	q, err := query(r, messageParams...)
	if err != nil {
		return err
	}
	switch q.Get("format") {
	case "", "json":
		if asCSV && q.Get("format") == "json" {
			return badRequest("GET /messages.csv answers CSV only; use GET /messages for JSON", "format")
		}
	case "csv":
		asCSV = true
	default:
		return badRequest(fmt.Sprintf("format must be json or csv, not %q", q.Get("format")), "format")
	}
	f := msglog.Filter{Sender: q.Get("sender"), Recipient: q.Get("recipient"), Domain: q.Get("domain"),
		MessageID: q.Get("message_id"), QueueID: q.Get("queue_id"), Status: q.Get("status"),
		OutboundIP: q.Get("outbound_ip"), RemoteMX: q.Get("remote_mx"), Verdict: q.Get("verdict"),
		BounceClass: q.Get("bounce_class"), Before: q.Get("before")}
	if f.Since, err = parseTime(q, "since"); err != nil {
		return err
	}
	if f.Until, err = parseTime(q, "until"); err != nil {
		return err
	}
	if asCSV {
		f.Limit, err = parseExportLimit(q)
	} else {
		f.Limit, err = parseLimit(q)
	}
	if err != nil {
		return err
	}
	cust, visible := scope(p, q.Get("customer"))
	f.Customer = cust
	if !asCSV {
		list := []api.MessageSummary{}
		if visible {
			if list, err = msglog.Search(r.Context(), s.db, f); err != nil {
				return err
			}
		}
		writeJSON(w, http.StatusOK, list)
		return nil
	}
	cw := &csvResponse{w: w}
	if !visible {
		// Another customer's messages: as if there were none, the header alone.
		out := csv.NewWriter(cw)
		out.Write(msglog.CSVHeader)
		out.Flush()
		return nil
	}
	n, err := msglog.ExportCSV(r.Context(), s.db, f, cw)
	if err != nil && !cw.started {
		return err
	}
	if err != nil {
		// The status is sent: the client sees a truncated file; the log says why.
		s.log.Error("api: CSV export cut short", "messages", n, "err", err)
	}
	return nil
}

// csvResponse is the CSV answer, streamed: the headers go with the first bytes, and each page is flushed.
type csvResponse struct {
	w       http.ResponseWriter
	started bool
}

func (c *csvResponse) Write(b []byte) (int, error) {
	if !c.started {
		c.started = true
		h := c.w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="messages.csv"`)
		c.w.WriteHeader(http.StatusOK)
	}
	return c.w.Write(b)
}

// Flush pushes what was written to the client.
func (c *csvResponse) Flush() error {
	return http.NewResponseController(c.w).Flush()
}

// parseExportLimit reads the limit of a CSV export: any positive number of messages; 0 (all) when absent.
func parseExportLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badRequest(fmt.Sprintf("limit must be an integer, not %q", v), "limit")
	}
	if n < 1 {
		return 0, &api.Error{Status: http.StatusUnprocessableEntity, Field: "limit", Message: "limit must be at least 1"}
	}
	return n, nil
}

func (s *server) exportMessages(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	return s.messages(w, r, p, true)
}
