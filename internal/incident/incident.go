// Package incident tracks incidents P1 (total outage) to P4 (no impact) to closure (docs/incidents.md):
// reported by customers (API, e-mail to the relay's own incident address) or by the operator (phone, e-mail),
// or raised by the relay's own monitors, one open incident per cause, resolved by the monitor when the
// cause clears. Each incident runs an SLA clock (package sla): its channel's response target counted in the
// service window of the customer's SLA type; times to respond and to resolve are recorded and breaches
// flagged. Creation, priority changes and resolution are mailed through the relay itself to the customer's
// technical contact and the operator. Report gives the monthly SLA report of a customer.
package incident

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/fielderr"
	"easymail/internal/sla"
	"easymail/internal/store"
)

// Mailer queues a notice through Easymail itself; *queue.Queue implements it. The message is queued if and
// only if also succeeds, in the same transaction.
type Mailer interface {
	SubmitWith(ctx context.Context, from, to, subject, body string, also func(tx *sql.Tx, id string) error) (string, error)
}

// SLAType is one SLA contract: its service window, its response target by channel and its optional
// resolution target by priority (P1 ... P4).
type SLAType struct {
	Window     sla.Window
	Response   map[string]time.Duration
	Resolution map[string]time.Duration
}

// Options configure a Service.
type Options struct {
	// DB is the database; required.
	DB *store.DB
	// SLATypes are the SLA types by name, DefaultSLA the one of a customer whose contract names none (or a
	// type no longer configured); required.
	SLATypes   map[string]SLAType
	DefaultSLA string
	// Mailer queues the notices; nil sends none.
	Mailer Mailer
	// From is the notices' sender (postmaster@<hostname>); Operator the operator's address ("" for none);
	// Service names the relay in the notices; Address is the incident mailbox customers write to.
	From, Operator, Service, Address string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives what happens; nil discards it.
	Logger *slog.Logger
	// Registerer receives the metrics; optional.
	Registerer prometheus.Registerer
}

// Service keeps the incidents.
type Service struct {
	o      Options
	log    *slog.Logger
	opened *prometheus.CounterVec
}

// Actors of events not made through a token.
const (
	ActorMonitor = "monitor"
	ActorSystem  = "system"
)

// New returns a service.
func New(o Options) (*Service, error) {
	if o.DB == nil {
		return nil, errors.New("incident: DB is required")
	}
	if _, ok := o.SLATypes[o.DefaultSLA]; !ok {
		return nil, fmt.Errorf("incident: default SLA type %q is not configured", o.DefaultSLA)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{o: o, log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.opened = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easymail_incidents_opened_total",
		Help: "Incidents opened, by priority and channel."}, []string{"priority", "channel"})
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.opened, &collector{s: s, open: prometheus.NewDesc("easymail_incidents_open",
			"Incidents not resolved yet, by priority.", []string{"priority"}, nil),
			breached: prometheus.NewDesc("easymail_incidents_response_breached",
				"Incidents not resolved yet whose response target has passed without a response, by priority.", []string{"priority"}, nil)})
	}
	return s, nil
}

// ErrNotFound is returned for an unknown incident, or one the viewer may not see.
var ErrNotFound = errors.New("no such incident")

func invalid(field, format string, args ...any) error { return fielderr.Newf(field, format, args...) }

func conflict(format string, args ...any) error { return fielderr.Conflictf("", format, args...) }

// Channels and link kinds accepted.
var (
	channels  = []string{ChannelPhone, ChannelEmail, ChannelPortal, ChannelAPI, ChannelMonitor}
	linkKinds = []string{"message", "ip", "pool", "destination", "customer", "scanner"}
)

// openSQL are the statuses of an unresolved incident, as an SQL list.
const openSQL = `('new', 'acknowledged', 'in_progress')`

// transitions are the status changes allowed, from → to.
var transitions = map[string][]string{
	StatusNew:          {StatusAcknowledged, StatusInProgress, StatusResolved, StatusClosed},
	StatusAcknowledged: {StatusInProgress, StatusResolved, StatusClosed},
	StatusInProgress:   {StatusResolved, StatusClosed},
	StatusResolved:     {StatusInProgress, StatusConfirmed, StatusClosed},
	StatusConfirmed:    {StatusClosed},
}

// ParsePriority reads "P1" ... "P4" (or "1" ... "4").
func ParsePriority(s string) (int, bool) {
	s = strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "P")
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 1 && n <= 4
}

func priorityName(n int) string { return "P" + strconv.Itoa(n) }

// checkTitle checks a title: one line of 1 to 200 characters.
func checkTitle(t string) (string, error) {
	t = strings.TrimSpace(t)
	switch {
	case t == "":
		return "", invalid("title", "must not be empty")
	case strings.ContainsAny(t, "\r\n"):
		return "", invalid("title", "must be one line")
	case utf8.RuneCountInString(t) > 200:
		return "", invalid("title", "must be at most 200 characters")
	}
	return t, nil
}

// slaType returns the SLA type of that name, or the default one.
func (s *Service) slaType(name string) (string, SLAType) {
	if t, ok := s.o.SLATypes[name]; ok {
		return name, t
	}
	return s.o.DefaultSLA, s.o.SLATypes[s.o.DefaultSLA]
}

// Open opens an incident as actor (a token id, an e-mail address, ActorMonitor) and notifies it.
func (s *Service) Open(ctx context.Context, in Create, actor string) (*Incident, error) {
	return s.open(ctx, in, "", actor)
}

// open opens an incident with the given cause ("" for none).
func (s *Service) open(ctx context.Context, in Create, cause, actor string) (*Incident, error) {
	title, err := checkTitle(in.Title)
	if err != nil {
		return nil, err
	}
	prio := 3
	if in.Priority != "" {
		var ok bool
		if prio, ok = ParsePriority(in.Priority); !ok {
			return nil, invalid("priority", "must be P1, P2, P3 or P4, not %q", in.Priority)
		}
	}
	channel := in.Channel
	if channel == "" {
		channel = ChannelAPI
	}
	if !slices.Contains(channels, channel) {
		return nil, invalid("channel", "must be one of %s, not %q", strings.Join(channels, ", "), channel)
	}
	if len(in.Description) > 64<<10 {
		return nil, invalid("description", "must be at most 64 KiB")
	}
	for i, l := range in.Links {
		if !slices.Contains(linkKinds, l.Kind) {
			return nil, invalid(fmt.Sprintf("links[%d].kind", i), "must be one of %s", strings.Join(linkKinds, ", "))
		}
		if strings.TrimSpace(l.Value) == "" || len(l.Value) > 500 {
			return nil, invalid(fmt.Sprintf("links[%d].value", i), "must be 1 to 500 characters")
		}
	}
	var custSLA string
	if in.CustomerID != "" {
		err := s.o.DB.R.QueryRowContext(ctx, `SELECT sla_type FROM customers WHERE id = ?`, in.CustomerID).Scan(&custSLA)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, invalid("customer_id", "no such customer: %q", in.CustomerID)
		} else if err != nil {
			return nil, err
		}
	}
	typeName, t := s.slaType(custSLA)
	now := s.o.Now()
	target := t.Response[channel]
	due := t.Window.Add(now, target)
	var resTarget, resDue any
	if d, ok := t.Resolution[priorityName(prio)]; ok && d > 0 {
		resTarget, resDue = d.Milliseconds(), store.Millis(t.Window.Add(now, d))
	}
	var id string
	err = s.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		var seq int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM incidents`).Scan(&seq); err != nil {
			return err
		}
		id = "INC-" + strconv.FormatInt(seq, 10)
		if _, err := tx.ExecContext(ctx, `INSERT INTO incidents (id, seq, customer_id, priority, title, description, channel,
			status, cause, sla_type, reporter, opened_at, response_target, response_due_at, resolve_target, resolve_due_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, seq, in.CustomerID, prio, title, in.Description, channel, cause, typeName, in.Reporter, store.Millis(now),
			target.Milliseconds(), store.Millis(due), resTarget, resDue, store.Millis(now)); err != nil {
			return err
		}
		for _, l := range in.Links {
			if _, err := tx.ExecContext(ctx, `INSERT INTO incident_links (incident_id, kind, value) VALUES (?, ?, ?)
				ON CONFLICT DO NOTHING`, id, l.Kind, strings.TrimSpace(l.Value)); err != nil {
				return err
			}
		}
		return addEvent(ctx, tx, id, now, "opened", VisibilityCustomer, actor, "", priorityName(prio), title)
	})
	if err != nil {
		return nil, err
	}
	s.opened.WithLabelValues(priorityName(prio), channel).Inc()
	s.log.Warn("incident opened", "event", "incident_opened", "incident", id, "priority", priorityName(prio),
		"channel", channel, "customer", in.CustomerID, "cause", cause, "title", title)
	inc, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	s.notify(ctx, inc, noticeOpened, "")
	return inc, nil
}

// addEvent appends an event to the incident's timeline.
func addEvent(ctx context.Context, tx *sql.Tx, id string, at time.Time, kind, visibility, actor, from, to, body string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO incident_events (incident_id, idx, at, kind, visibility, actor, from_value, to_value, body)
		SELECT ?, COALESCE(MAX(idx), 0) + 1, ?, ?, ?, ?, ?, ?, ? FROM incident_events WHERE incident_id = ?`,
		id, store.Millis(at), kind, visibility, actor, from, to, body, id)
	return err
}

// row is an incident as stored.
type row struct {
	inc                                  Incident
	prio                                 int
	target, due                          int64
	responded, resTarget, resDue         sql.NullInt64
	resolved, confirmed, closed, updated sql.NullInt64
	opened                               int64
}

const columns = `id, customer_id, priority, title, description, channel, status, cause, sla_type, reporter, opened_at,
	response_target, response_due_at, responded_at, resolve_target, resolve_due_at, resolved_at, confirmed_at, closed_at, updated_at`

func scanRow(sc interface{ Scan(...any) error }) (*row, error) {
	r := &row{}
	i := &r.inc
	err := sc.Scan(&i.ID, &i.CustomerID, &r.prio, &i.Title, &i.Description, &i.Channel, &i.Status, &i.Cause, &i.SLAType,
		&i.Reporter, &r.opened, &r.target, &r.due, &r.responded, &r.resTarget, &r.resDue, &r.resolved, &r.confirmed, &r.closed, &r.updated)
	return r, err
}

func timePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := store.Time(n.Int64)
	return &t
}

// finish turns a stored row into the API's form, with its SLA clock evaluated at now.
func (s *Service) finish(r *row, now time.Time) *Incident {
	i := r.inc
	i.Priority = priorityName(r.prio)
	i.OpenedAt, i.UpdatedAt = store.Time(r.opened), store.Time(r.updated.Int64)
	i.ResolvedAt, i.ConfirmedAt, i.ClosedAt = timePtr(r.resolved), timePtr(r.confirmed), timePtr(r.closed)
	_, t := s.slaType(i.SLAType)
	w := t.Window
	due := store.Time(r.due)
	c := SLA{ResponseTarget: r.target / 1000, ResponseDueAt: due, RespondedAt: timePtr(r.responded),
		ResolveDueAt: timePtr(r.resDue)}
	opened := store.Time(r.opened)
	if c.RespondedAt != nil {
		d := int64(w.Between(opened, *c.RespondedAt) / time.Second)
		c.ResponseTime = &d
		c.Breached = c.RespondedAt.After(due)
	} else {
		c.Breached = now.After(due)
	}
	end := i.ResolvedAt
	if end == nil && i.ClosedAt != nil {
		end = i.ClosedAt
	}
	if end != nil {
		d := int64(w.Between(opened, *end) / time.Second)
		c.ResolveTime = &d
	}
	if c.ResolveDueAt != nil {
		c.ResolveBreached = (end != nil && end.After(*c.ResolveDueAt)) || (end == nil && now.After(*c.ResolveDueAt))
	}
	i.SLA = c
	if i.Links == nil {
		i.Links = []Link{}
	}
	return &i
}

// get loads an incident with its links and whole timeline (no viewer restriction).
func (s *Service) get(ctx context.Context, id string) (*Incident, error) {
	r, err := scanRow(s.o.DB.R.QueryRowContext(ctx, `SELECT `+columns+` FROM incidents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	inc := s.finish(r, s.o.Now())
	links, err := s.links(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	inc.Links = append(inc.Links, links[id]...)
	rows, err := s.o.DB.R.QueryContext(ctx, `SELECT at, kind, visibility, actor, from_value, to_value, body
		FROM incident_events WHERE incident_id = ? ORDER BY idx`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&at, &e.Kind, &e.Visibility, &e.Actor, &e.From, &e.To, &e.Body); err != nil {
			return nil, err
		}
		e.At = store.Time(at)
		inc.Events = append(inc.Events, e)
	}
	return inc, rows.Err()
}

// links returns the links of the incidents ids.
func (s *Service) links(ctx context.Context, ids []string) (map[string][]Link, error) {
	out := map[string][]Link{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.o.DB.R.QueryContext(ctx, `SELECT incident_id, kind, value FROM incident_links WHERE incident_id IN (?`+
		strings.Repeat(", ?", len(ids)-1)+`) ORDER BY incident_id, kind, value`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var l Link
		if err := rows.Scan(&id, &l.Kind, &l.Value); err != nil {
			return nil, err
		}
		out[id] = append(out[id], l)
	}
	return out, rows.Err()
}

// visible reports whether the customer viewer may see inc: its own, or one linked to it.
func visible(inc *Incident, viewer string) bool {
	if inc.CustomerID == viewer {
		return true
	}
	return slices.Contains(inc.Links, Link{Kind: "customer", Value: viewer})
}

// redact removes from inc what the customer viewer may not see: internal events, other customers' links.
func redact(inc *Incident, viewer string) {
	inc.Events = slices.DeleteFunc(inc.Events, func(e Event) bool { return e.Visibility != VisibilityCustomer })
	inc.Links = slices.DeleteFunc(inc.Links, func(l Link) bool { return l.Kind == "customer" && l.Value != viewer })
	for i := range inc.Events {
		if strings.HasPrefix(inc.Events[i].Actor, "tok") || inc.Events[i].Actor == "" {
			inc.Events[i].Actor = ""
		}
	}
}

// Get returns an incident with its timeline. A viewer other than "" is a customer's id: it sees its own
// incidents and those linked to it only (ErrNotFound for others), without internal events.
func (s *Service) Get(ctx context.Context, id, viewer string) (*Incident, error) {
	inc, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if viewer != "" {
		if !visible(inc, viewer) {
			return nil, ErrNotFound
		}
		redact(inc, viewer)
	}
	return inc, nil
}

// Filter selects incidents for List.
type Filter struct {
	// Status is "open" (new, acknowledged, in progress; the default), "all", or one status.
	Status string
	// CustomerID keeps the incidents of that customer (its own and those linked to it); "" keeps all.
	CustomerID string
	// Viewer, when not "", is the customer whose token asks: only its incidents are listed, redacted.
	Viewer string
}

// List returns the incidents matching f, newest first, without their timelines.
func (s *Service) List(ctx context.Context, f Filter) ([]Incident, error) {
	q := `SELECT ` + columns + ` FROM incidents WHERE 1 = 1`
	var args []any
	switch f.Status {
	case "", "open":
		q += ` AND status IN ` + openSQL
	case "all":
	default:
		if _, ok := transitions[f.Status]; !ok && f.Status != StatusClosed {
			return nil, invalid("status", "must be open, all or a status (new, acknowledged, in_progress, resolved, confirmed, closed), not %q", f.Status)
		}
		q, args = q+` AND status = ?`, append(args, f.Status)
	}
	for _, c := range []string{f.CustomerID, f.Viewer} {
		if c != "" {
			q += ` AND (customer_id = ? OR id IN (SELECT incident_id FROM incident_links WHERE kind = 'customer' AND value = ?))`
			args = append(args, c, c)
		}
	}
	rows, err := s.o.DB.R.QueryContext(ctx, q+` ORDER BY seq DESC`, args...)
	if err != nil {
		return nil, err
	}
	now := s.o.Now()
	var out []Incident
	var ids []string
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, *s.finish(r, now))
		ids = append(ids, r.inc.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	links, err := s.links(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Links = append(out[i].Links, links[out[i].ID]...)
		if f.Viewer != "" {
			redact(&out[i], f.Viewer)
		}
	}
	if out == nil {
		out = []Incident{}
	}
	return out, nil
}

// Change is a change to an incident made through Update.
type Change struct {
	// Status is the new status ("" for none), Priority the new priority ("" for none), Title a new title.
	Status, Priority, Title string
	// Note is added to the timeline; Internal hides it from the customer.
	Note     string
	Internal bool
	// Actor made the change; Customer is set when it is the incident's customer (it may only confirm).
	Actor    string
	Customer bool
}

// Update applies c to the incident and notifies a priority change or a resolution.
func (s *Service) Update(ctx context.Context, id string, c Change) (*Incident, error) {
	var prio int
	if c.Priority != "" {
		var ok bool
		if prio, ok = ParsePriority(c.Priority); !ok {
			return nil, invalid("priority", "must be P1, P2, P3 or P4, not %q", c.Priority)
		}
	}
	if c.Title != "" {
		t, err := checkTitle(c.Title)
		if err != nil {
			return nil, err
		}
		c.Title = t
	}
	if c.Status != "" && !slices.Contains(append(slices.Collect(mapKeys(transitions)), StatusClosed), c.Status) {
		return nil, invalid("status", "must be one of new, acknowledged, in_progress, resolved, confirmed, closed, not %q", c.Status)
	}
	vis := VisibilityCustomer
	if c.Internal {
		vis = VisibilityInternal
	}
	var before row
	var changedPrio, resolved bool
	now := s.o.Now()
	err := s.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		r, err := scanRow(tx.QueryRowContext(ctx, `SELECT `+columns+` FROM incidents WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		before = *r
		ms := store.Millis(now)
		if c.Status != "" && c.Status != r.inc.Status {
			if !slices.Contains(transitions[r.inc.Status], c.Status) {
				return conflict("incident %s is %s; it cannot become %s", id, r.inc.Status, c.Status)
			}
			sets := `status = ?, updated_at = ?`
			args := []any{c.Status, ms}
			switch c.Status {
			case StatusResolved:
				sets += `, resolved_at = ?, confirmed_at = NULL, closed_at = NULL`
				args = append(args, ms)
				resolved = true
			case StatusConfirmed:
				sets += `, confirmed_at = ?`
				args = append(args, ms)
			case StatusClosed:
				sets += `, closed_at = ?`
				args = append(args, ms)
			case StatusInProgress:
				sets += `, resolved_at = NULL`
			}
			if !c.Customer && !r.responded.Valid {
				sets += `, responded_at = ?`
				args = append(args, ms)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE incidents SET `+sets+` WHERE id = ?`, append(args, id)...); err != nil {
				if strings.Contains(err.Error(), "UNIQUE") {
					return conflict("another incident is open for the cause %q", r.inc.Cause)
				}
				return err
			}
			if err := addEvent(ctx, tx, id, now, "status", VisibilityCustomer, c.Actor, r.inc.Status, c.Status, ""); err != nil {
				return err
			}
		}
		if prio != 0 && prio != r.prio {
			if _, err := tx.ExecContext(ctx, `UPDATE incidents SET priority = ?, updated_at = ? WHERE id = ?`, prio, ms, id); err != nil {
				return err
			}
			if err := addEvent(ctx, tx, id, now, "priority", VisibilityCustomer, c.Actor, priorityName(r.prio), priorityName(prio), ""); err != nil {
				return err
			}
			changedPrio = true
		}
		if c.Title != "" && c.Title != r.inc.Title {
			if _, err := tx.ExecContext(ctx, `UPDATE incidents SET title = ?, updated_at = ? WHERE id = ?`, c.Title, ms, id); err != nil {
				return err
			}
			if err := addEvent(ctx, tx, id, now, "title", VisibilityCustomer, c.Actor, r.inc.Title, c.Title, ""); err != nil {
				return err
			}
		}
		if strings.TrimSpace(c.Note) != "" {
			if err := addEvent(ctx, tx, id, now, "comment", vis, c.Actor, "", "", strings.TrimSpace(c.Note)); err != nil {
				return err
			}
			if !c.Customer && !c.Internal && !r.responded.Valid {
				if _, err := tx.ExecContext(ctx, `UPDATE incidents SET responded_at = ?, updated_at = ? WHERE id = ? AND responded_at IS NULL`, ms, ms, id); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	inc, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if changedPrio {
		s.log.Warn("incident priority changed", "event", "incident_priority", "incident", id, "from", priorityName(before.prio), "to", inc.Priority)
		s.notify(ctx, inc, noticePriority, priorityName(before.prio))
	}
	if resolved {
		s.log.Info("incident resolved", "event", "incident_resolved", "incident", id, "cause", inc.Cause)
		s.notify(ctx, inc, noticeResolved, c.Note)
	}
	return inc, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Comment adds a comment to the incident's timeline. A staff comment visible to the customer is a response.
func (s *Service) Comment(ctx context.Context, id, actor, text string, internal, customer bool) (*Incident, error) {
	if strings.TrimSpace(text) == "" {
		return nil, invalid("text", "must not be empty")
	}
	if len(text) > 64<<10 {
		return nil, invalid("text", "must be at most 64 KiB")
	}
	return s.Update(ctx, id, Change{Note: text, Internal: internal && !customer, Actor: actor, Customer: customer})
}

// now is the service's clock in the stored form.
func (s *Service) now() int64 { return store.Millis(s.o.Now()) }
