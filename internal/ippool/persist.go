package ippool

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"easymail/internal/store"
)

// Record is the stored form of an outbound IP.
type Record struct {
	Address        string
	Pool           string
	HELO           string
	Weight         int
	Warmup         []int
	Origin         string
	Removed        bool
	AddedAt        time.Time
	Operator       State
	OperatorReason string
	State          State
	Reason         string
	StateSince     time.Time
	HoldUntil      time.Time
	LastCheck      time.Time
	FCrDNS         string
	FCrDNSDetail   string
	WarmDay        int
	WarmSent       int
	Listings       []Listing
	Pauses         []DestinationPause
}

// Counter is one hour's counts of one IP.
type Counter struct {
	Address                          string
	Hour                             int64
	Sent, Deferred, Bounced, Blocked int64
}

// Store persists the outbound IPs.
type Store interface {
	// Load returns every stored IP, tombstones of removed configured IPs included.
	Load(ctx context.Context) ([]Record, error)
	// Save writes r (its listings and destination pauses replace the stored ones). The warm-up count of an
	// existing row is left alone: only CountWarm changes it.
	Save(ctx context.Context, r Record) error
	// Delete removes an IP with its listings and pauses.
	Delete(ctx context.Context, address string) error
	// CountWarm adds one message to the IP's count of warm-up day d (starting the count when d is a new day).
	CountWarm(ctx context.Context, address string, d int) error
	// LoadCounters returns the hourly counters from sinceHour on.
	LoadCounters(ctx context.Context, sinceHour int64) ([]Counter, error)
	// SaveCounters writes counters (their absolute values) and deletes those older than pruneBefore.
	SaveCounters(ctx context.Context, rows []Counter, pruneBefore int64) error
}

// DBStore is the Store in Easymail's database (tables pool_ips, ip_listings, ip_destination_pauses,
// ip_counters).
type DBStore struct {
	DB *store.DB
}

var _ Store = DBStore{}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return store.Millis(t)
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return store.Time(ms)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func splitInts(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("bad warm-up schedule %q", s)
		}
		out[i] = n
	}
	return out, nil
}

// Load implements Store.
func (s DBStore) Load(ctx context.Context) ([]Record, error) {
	rows, err := s.DB.R.QueryContext(ctx, `SELECT address, pool, helo, weight, warmup, origin, removed, added_at,
		operator_state, operator_reason, state, reason, state_since, hold_until, last_check, fcrdns, fcrdns_detail,
		warm_day, warm_sent FROM pool_ips ORDER BY added_at, address`)
	if err != nil {
		return nil, err
	}
	var recs []Record
	index := map[string]int{}
	for rows.Next() {
		var r Record
		var warmup string
		var added, since, hold, check int64
		if err := rows.Scan(&r.Address, &r.Pool, &r.HELO, &r.Weight, &warmup, &r.Origin, &r.Removed, &added,
			&r.Operator, &r.OperatorReason, &r.State, &r.Reason, &since, &hold, &check, &r.FCrDNS, &r.FCrDNSDetail,
			&r.WarmDay, &r.WarmSent); err != nil {
			rows.Close()
			return nil, err
		}
		if r.Warmup, err = splitInts(warmup); err != nil {
			rows.Close()
			return nil, fmt.Errorf("outbound IP %s: %w", r.Address, err)
		}
		r.AddedAt, r.StateSince, r.HoldUntil, r.LastCheck = fromMillis(added), fromMillis(since), fromMillis(hold), fromMillis(check)
		index[r.Address] = len(recs)
		recs = append(recs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	err = store.Each(ctx, s.DB.R, `SELECT address, zone, code, reason, since FROM ip_listings ORDER BY address, zone`, nil, func(r *sql.Rows) error {
		var a string
		var l Listing
		var since int64
		if err := r.Scan(&a, &l.Zone, &l.Code, &l.Reason, &since); err != nil {
			return err
		}
		l.Since = fromMillis(since)
		if i, ok := index[a]; ok {
			recs[i].Listings = append(recs[i].Listings, l)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = store.Each(ctx, s.DB.R, `SELECT address, domain, until, reason FROM ip_destination_pauses ORDER BY address, domain`, nil, func(r *sql.Rows) error {
		var a string
		var d DestinationPause
		var until int64
		if err := r.Scan(&a, &d.Domain, &until, &d.Reason); err != nil {
			return err
		}
		d.Until = fromMillis(until)
		if i, ok := index[a]; ok {
			recs[i].Pauses = append(recs[i].Pauses, d)
		}
		return nil
	})
	return recs, err
}

// Save implements Store.
func (s DBStore) Save(ctx context.Context, r Record) error {
	now := store.Now()
	return s.DB.Batch(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO pool_ips (address, pool, helo, weight, warmup, origin, removed, added_at,
			operator_state, operator_reason, state, reason, state_since, hold_until, last_check, fcrdns, fcrdns_detail,
			warm_day, warm_sent, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (address) DO UPDATE SET pool = excluded.pool, helo = excluded.helo, weight = excluded.weight,
			warmup = excluded.warmup, origin = excluded.origin, removed = excluded.removed, added_at = excluded.added_at,
			operator_state = excluded.operator_state, operator_reason = excluded.operator_reason, state = excluded.state,
			reason = excluded.reason, state_since = excluded.state_since, hold_until = excluded.hold_until,
			last_check = excluded.last_check, fcrdns = excluded.fcrdns, fcrdns_detail = excluded.fcrdns_detail,
			updated_at = excluded.updated_at`,
			r.Address, r.Pool, r.HELO, r.Weight, joinInts(r.Warmup), r.Origin, r.Removed, millis(r.AddedAt),
			r.Operator, r.OperatorReason, r.State, r.Reason, millis(r.StateSince), millis(r.HoldUntil), millis(r.LastCheck),
			r.FCrDNS, r.FCrDNSDetail, r.WarmDay, r.WarmSent, now)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM ip_listings WHERE address = ?`, r.Address); err != nil {
			return err
		}
		for _, l := range r.Listings {
			if _, err := tx.Exec(`INSERT INTO ip_listings (address, zone, code, reason, since) VALUES (?, ?, ?, ?, ?)`,
				r.Address, l.Zone, l.Code, l.Reason, millis(l.Since)); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(`DELETE FROM ip_destination_pauses WHERE address = ?`, r.Address); err != nil {
			return err
		}
		for _, d := range r.Pauses {
			if _, err := tx.Exec(`INSERT INTO ip_destination_pauses (address, domain, until, reason) VALUES (?, ?, ?, ?)`,
				r.Address, d.Domain, millis(d.Until), d.Reason); err != nil {
				return err
			}
		}
		return nil
	})
}

// Delete implements Store.
func (s DBStore) Delete(ctx context.Context, address string) error {
	return s.DB.Batch(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM pool_ips WHERE address = ?`,
			`DELETE FROM ip_listings WHERE address = ?`,
			`DELETE FROM ip_destination_pauses WHERE address = ?`,
		} {
			if _, err := tx.Exec(q, address); err != nil {
				return err
			}
		}
		return nil
	})
}

// CountWarm implements Store. The increment is done in SQL, so that concurrent counts commute.
func (s DBStore) CountWarm(ctx context.Context, address string, d int) error {
	return s.DB.Batch(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE pool_ips SET warm_sent = CASE WHEN warm_day = ? THEN warm_sent + 1 ELSE 1 END,
			warm_day = ? WHERE address = ?`, d, d, address)
		return err
	})
}

// LoadCounters implements Store.
func (s DBStore) LoadCounters(ctx context.Context, sinceHour int64) ([]Counter, error) {
	var out []Counter
	err := store.Each(ctx, s.DB.R, `SELECT address, hour, sent, deferred, bounced, blocked FROM ip_counters WHERE hour >= ?`,
		[]any{sinceHour},
		func(r *sql.Rows) error {
			var c Counter
			if err := r.Scan(&c.Address, &c.Hour, &c.Sent, &c.Deferred, &c.Bounced, &c.Blocked); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	return out, err
}

// SaveCounters implements Store.
func (s DBStore) SaveCounters(ctx context.Context, rows []Counter, pruneBefore int64) error {
	return s.DB.Batch(ctx, func(tx *sql.Tx) error {
		for _, c := range rows {
			if _, err := tx.Exec(`INSERT INTO ip_counters (address, hour, sent, deferred, bounced, blocked)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (address, hour) DO UPDATE SET sent = excluded.sent,
				deferred = excluded.deferred, bounced = excluded.bounced, blocked = excluded.blocked`,
				c.Address, c.Hour, c.Sent, c.Deferred, c.Bounced, c.Blocked); err != nil {
				return err
			}
		}
		_, err := tx.Exec(`DELETE FROM ip_counters WHERE hour < ?`, pruneBefore)
		return err
	})
}
