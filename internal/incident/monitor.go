package incident

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Condition is a cause a probe finds present: the incident it calls for.
type Condition struct {
	// Cause is a stable key, "kind:subject" ("ip-listed:192.0.2.1"): one open incident per cause.
	Cause string
	// Priority is P1 ... P4; a condition found again with another priority changes the incident's.
	Priority string
	// Title and Description describe it; CustomerID is the customer concerned ("" for every customer).
	Title, Description string
	CustomerID         string
	Links              []Link
}

// Probe checks for the causes of some kinds. Check returns the conditions present now; an error means the
// probe could not tell, and its open incidents are left as they are.
type Probe interface {
	// Kinds are the cause kinds the probe answers for (the part of a cause before its colon).
	Kinds() []string
	Check(ctx context.Context) ([]Condition, error)
}

// causeKind is the kind of cause.
func causeKind(cause string) string {
	k, _, _ := strings.Cut(cause, ":")
	return k
}

// Raise makes sure an incident is open for c: it opens one when none is, and changes the open one's
// priority when c's differs. It returns the incident's id and whether it was opened now.
func (s *Service) Raise(ctx context.Context, c Condition) (string, bool, error) {
	for range 2 {
		var id string
		var prio int
		err := s.o.DB.R.QueryRowContext(ctx, `SELECT id, priority FROM incidents WHERE cause = ? AND status IN `+openSQL, c.Cause).Scan(&id, &prio)
		if err == nil {
			if p, ok := ParsePriority(c.Priority); ok && p != prio {
				_, err := s.Update(ctx, id, Change{Priority: c.Priority, Actor: ActorMonitor,
					Note: "The monitor changed the priority: " + c.Title, Internal: true})
				return id, false, err
			}
			return id, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", false, err
		}
		inc, err := s.open(ctx, Create{CustomerID: c.CustomerID, Priority: c.Priority, Title: c.Title,
			Description: c.Description, Channel: ChannelMonitor, Reporter: ActorMonitor, Links: c.Links}, c.Cause, ActorMonitor)
		if err == nil {
			return inc.ID, true, nil
		}
		if !strings.Contains(err.Error(), "UNIQUE") {
			return "", false, err
		}
		// Another node opened it meanwhile: read it again.
	}
	return "", false, errors.New("incident: cause " + c.Cause + " opened and closed concurrently")
}

// Clear resolves the open incident of cause, if any, with note in its timeline.
func (s *Service) Clear(ctx context.Context, cause, note string) (bool, error) {
	var id string
	err := s.o.DB.R.QueryRowContext(ctx, `SELECT id FROM incidents WHERE cause = ? AND status IN `+openSQL, cause).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	_, err = s.Update(ctx, id, Change{Status: StatusResolved, Actor: ActorMonitor, Note: note})
	return err == nil, err
}

// openCauses returns the causes of the open monitor incidents.
func (s *Service) openCauses(ctx context.Context) ([]string, error) {
	rows, err := s.o.DB.R.QueryContext(ctx, `SELECT cause FROM incidents WHERE cause <> '' AND status IN `+openSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Monitor runs probes and keeps one open incident per cause they find, resolving it when the cause clears.
type Monitor struct {
	svc      *Service
	probes   []Probe
	interval time.Duration
	log      *slog.Logger
}

// NewMonitor returns a monitor of the probes, checked every interval.
func NewMonitor(svc *Service, interval time.Duration, probes ...Probe) *Monitor {
	return &Monitor{svc: svc, probes: probes, interval: interval, log: svc.log}
}

// Run runs Tick at once and then every interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.Tick(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("incident: monitor run failed; the next run continues", "err", err)
		}
		t.Reset(m.interval)
	}
}

// Tick runs every probe once: it raises the conditions found and clears the open causes of the probes'
// kinds that were not found. A probe that fails leaves its incidents alone.
func (m *Monitor) Tick(ctx context.Context) error {
	openList, err := m.svc.openCauses(ctx)
	if err != nil {
		return err
	}
	var firstErr error
	for _, p := range m.probes {
		conds, err := p.Check(ctx)
		if err != nil {
			m.log.Warn("incident: a monitor probe failed; its incidents are left as they are", "kinds", p.Kinds(), "err", err)
			firstErr = cmpErr(firstErr, err)
			continue
		}
		found := map[string]bool{}
		for _, c := range conds {
			found[c.Cause] = true
			if _, _, err := m.svc.Raise(ctx, c); err != nil {
				firstErr = cmpErr(firstErr, err)
			}
		}
		for _, cause := range openList {
			if found[cause] || !slices.Contains(p.Kinds(), causeKind(cause)) {
				continue
			}
			if _, err := m.svc.Clear(ctx, cause, "The cause cleared: "+cause); err != nil {
				firstErr = cmpErr(firstErr, err)
			}
		}
	}
	return firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
