package incident

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strconv"
	"time"
)

// Report returns the SLA report of customerID ("" for every incident) for month (YYYY-MM, in the time zone
// of the customer's SLA type): the incidents opened in the month (the customer's own and those linked to
// it), by priority, with their response times against the targets and the breaches. The times are
// evaluated now: an incident not responded to and past its due time is a breach.
func (s *Service) Report(ctx context.Context, customerID, month string) (*Report, error) {
	var custSLA string
	if customerID != "" {
		err := s.o.DB.R.QueryRowContext(ctx, `SELECT sla_type FROM customers WHERE id = ?`, customerID).Scan(&custSLA)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		} else if err != nil {
			return nil, err
		}
	}
	name, t := s.slaType(custSLA)
	start, err := time.ParseInLocation("2006-01", month, t.Window.Location)
	if err != nil {
		return nil, invalid("month", "must be YYYY-MM, not %q", month)
	}
	end := start.AddDate(0, 1, 0)
	list, err := s.List(ctx, Filter{Status: "all", CustomerID: customerID})
	if err != nil {
		return nil, err
	}
	rep := &Report{CustomerID: customerID, Month: month, SLAType: name, From: start.UTC(), Until: end.UTC(),
		ByPriority: map[string]ReportCount{}, Incidents: []ReportLine{}, Targets: map[string]int64{}}
	for ch, d := range t.Response {
		rep.Targets[ch] = int64(d / time.Second)
	}
	for p := 1; p <= 4; p++ {
		rep.ByPriority[priorityName(p)] = ReportCount{}
	}
	var sum int64
	for i := len(list) - 1; i >= 0; i-- {
		inc := list[i]
		if inc.OpenedAt.Before(start) || !inc.OpenedAt.Before(end) {
			continue
		}
		rep.Total++
		c := rep.ByPriority[inc.Priority]
		c.Total++
		if inc.ResolvedAt != nil || inc.ClosedAt != nil {
			c.Resolved++
		}
		if inc.SLA.Breached {
			c.Breaches++
			rep.Breaches++
		}
		if inc.SLA.ResolveBreached {
			rep.ResolveBreaches++
		}
		rep.ByPriority[inc.Priority] = c
		if r := inc.SLA.ResponseTime; r != nil {
			rep.Responded++
			sum += *r
			rep.MaxResponse = max(rep.MaxResponse, *r)
		}
		rep.Incidents = append(rep.Incidents, ReportLine{ID: inc.ID, Priority: inc.Priority, Channel: inc.Channel,
			Title: inc.Title, Status: inc.Status, OpenedAt: inc.OpenedAt, ResponseDueAt: inc.SLA.ResponseDueAt,
			RespondedAt: inc.SLA.RespondedAt, ResponseTarget: inc.SLA.ResponseTarget, ResponseTime: inc.SLA.ResponseTime,
			ResolvedAt: inc.ResolvedAt, ResolveTime: inc.SLA.ResolveTime, Breached: inc.SLA.Breached})
	}
	slices.SortStableFunc(rep.Incidents, func(a, b ReportLine) int { return a.OpenedAt.Compare(b.OpenedAt) })
	if rep.Responded > 0 {
		rep.MeanResponse = sum / int64(rep.Responded)
	}
	return rep, nil
}

// CSVHeader is the header row of WriteCSV.
var CSVHeader = []string{"id", "priority", "channel", "status", "opened_at", "response_target_seconds", "response_due_at",
	"responded_at", "response_seconds", "breached", "resolved_at", "resolve_seconds", "title"}

// WriteCSV writes the report's incidents as CSV, one line each after CSVHeader (times RFC 3339 UTC, empty
// when none).
func WriteCSV(w io.Writer, rep *Report) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
	tm := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	num := func(n *int64) string {
		if n == nil {
			return ""
		}
		return strconv.FormatInt(*n, 10)
	}
	for _, l := range rep.Incidents {
		opened, due := l.OpenedAt, l.ResponseDueAt
		cw.Write([]string{l.ID, l.Priority, l.Channel, l.Status, tm(&opened), strconv.FormatInt(l.ResponseTarget, 10), tm(&due),
			tm(l.RespondedAt), num(l.ResponseTime), strconv.FormatBool(l.Breached), tm(l.ResolvedAt), num(l.ResolveTime), l.Title})
	}
	cw.Flush()
	return cw.Error()
}
