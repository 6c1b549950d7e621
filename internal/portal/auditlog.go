package portal

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"easymail/internal/audit"
	"easymail/internal/store"
)

func init() {
	area([]string{"audit"}, map[string]string{
		"Audit log":         "Journal d'audit",
		"Actor":             "Auteur",
		"Action contains":   "L'action contient",
		"From (UTC)":        "Du (UTC)",
		"Until (UTC)":       "Au (UTC)",
		"Per page":          "Par page",
		"Filter":            "Filtrer",
		"Time":              "Heure",
		"Target path":       "Chemin visé",
		"What changed":      "Ce qui a changé",
		"system":            "système",
		"No entry matches.": "Aucune entrée ne correspond.",
		"Older entries":     "Entrées plus anciennes",
		"Newest entries":    "Entrées les plus récentes",
		"Action":            "Action",
	}, nil)
}

const (
	// auditPageSize is the default number of entries a page shows; auditMaxPage bounds it.
	auditPageSize = 50
	auditMaxPage  = 200
	// maxAuditFilter bounds a text filter.
	maxAuditFilter = 200
	// maxAuditShown bounds the snapshot text shown per entry.
	maxAuditShown = 400
)

type auditRow struct {
	audit.Entry
	// Change is the entry's after snapshot (or before), shortened.
	Change string
}

type auditView struct {
	Actor, Customer, Action, Since, Until string
	Size                                  int
	Customers                             []string
	List                                  []auditRow
	// Older links to the next page ("" on the last), Newest to the first (set past the first page). They are
	// built here, whole, because html/template would escape a query string's "&" and "=".
	Older, Newest template.URL
}

// auditCursor is the last entry of a page: the next page starts after it (newest first).
type auditCursor struct {
	at int64
	id string
}

func parseCursor(s string) (*auditCursor, error) {
	if s == "" {
		return nil, nil
	}
	ms, id, ok := strings.Cut(s, "~")
	at, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" || len(id) > 64 {
		return nil, errorf(http.StatusUnprocessableEntity, "before: not a position in the audit log")
	}
	return &auditCursor{at: at, id: id}, nil
}

// parseAuditTime reads a filter's time: a date, a date and time (UTC), or RFC 3339.
func parseAuditTime(field, v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errorf(http.StatusUnprocessableEntity, "%s: %q is not a date (YYYY-MM-DD, YYYY-MM-DDTHH:MM or RFC 3339)", field, v)
}

// auditPage lists the audit log, newest first, filtered by actor, customer, action and time, a bounded page
// at a time.
func (s *server) auditPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	q := r.URL.Query()
	d := auditView{Actor: strings.TrimSpace(q.Get("actor")), Customer: strings.TrimSpace(q.Get("customer")),
		Action: strings.TrimSpace(q.Get("action")), Since: q.Get("since"), Until: q.Get("until"), Size: auditPageSize}
	for field, v := range map[string]string{"actor": d.Actor, "customer": d.Customer, "action": d.Action, "since": d.Since, "until": d.Until} {
		if len(v) > maxAuditFilter || !utf8.ValidString(v) {
			return errorf(http.StatusUnprocessableEntity, "%s: at most %d characters", field, maxAuditFilter)
		}
	}
	if v := q.Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > auditMaxPage {
			return errorf(http.StatusUnprocessableEntity, "size: must be 1-%d", auditMaxPage)
		}
		d.Size = n
	}
	f := audit.Query{Actor: d.Actor, Customer: d.Customer, Action: d.Action}
	var err error
	if f.Since, err = parseAuditTime("since", d.Since); err != nil {
		return err
	}
	if f.Until, err = parseAuditTime("until", d.Until); err != nil {
		return err
	}
	cur, err := parseCursor(q.Get("before"))
	if err != nil {
		return err
	}
	list, more, err := s.auditEntries(r.Context(), f, cur, d.Size)
	if err != nil {
		return err
	}
	for _, e := range list {
		d.List = append(d.List, auditRow{Entry: e, Change: shorten(e)})
	}
	link := func(before string) template.URL {
		v := url.Values{}
		for k, s := range map[string]string{"actor": d.Actor, "customer": d.Customer, "action": d.Action, "since": d.Since, "until": d.Until, "before": before} {
			if s != "" {
				v.Set(k, s)
			}
		}
		if d.Size != auditPageSize {
			v.Set("size", strconv.Itoa(d.Size))
		}
		// Only the portal's own path and url.Values' encoding: safe as a URL.
		return template.URL("/audit?" + v.Encode())
	}
	if cur != nil {
		d.Newest = link("")
	}
	if more {
		last := list[len(list)-1]
		d.Older = link(strconv.FormatInt(store.Millis(last.At), 10) + "~" + last.ID)
	}
	if d.Customers, err = s.customerIDs(r.Context()); err != nil {
		return err
	}
	return s.render(w, r, rc, http.StatusOK, "audit", "audit", "Audit log", d)
}

// auditEntries returns up to size entries of f after cur (newest first), and whether more follow. Entries of
// the cursor's millisecond already shown are skipped: the log orders by time, then id, both descending.
func (s *server) auditEntries(ctx context.Context, f audit.Query, cur *auditCursor, size int) ([]audit.Entry, bool, error) {
	if cur != nil {
		until := store.Time(cur.at + 1)
		if f.Until.IsZero() || f.Until.After(until) {
			f.Until = until
		}
	}
	f.Limit = size + 1
	for {
		list, err := audit.List(ctx, s.o.DB, f)
		if err != nil {
			return nil, false, err
		}
		skip := 0
		for cur != nil && skip < len(list) && store.Millis(list[skip].At) == cur.at && list[skip].ID >= cur.id {
			skip++
		}
		rest := list[skip:]
		if len(rest) > size || len(list) < f.Limit || f.Limit >= audit.MaxLimit {
			return rest[:min(size, len(rest))], len(rest) > size, nil
		}
		// Many entries share the cursor's millisecond: read further.
		f.Limit = min(f.Limit*2, audit.MaxLimit)
	}
}

// shorten returns an entry's snapshot as text, bounded.
func shorten(e audit.Entry) string {
	b := e.After
	if len(b) == 0 {
		b = e.Before
	}
	s := string(b)
	if len(s) > maxAuditShown {
		s = s[:maxAuditShown]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}
