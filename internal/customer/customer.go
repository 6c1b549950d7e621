// Package customer provisions Easymail's customers: the customer records and, under each, its sending
// domains, relay hosts and source IPs, with the validation that keeps them unambiguous (a domain or an
// address range belongs to one customer only). It also signs and verifies the onboarding links handed to
// customers.
//
// Validation failures are *fielderr.Error (the input is not acceptable, or with Conflict set it collides
// with what is registered) and ErrNotFound. Every write is one database transaction.
package customer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"easymail/internal/authz"
	"easymail/internal/fielderr"
	"easymail/internal/msgid"
	"easymail/internal/store"
)

// UnsubscribeDelegated is the unsubscribe setting of a customer whose one-click unsubscriptions the relay
// adds and honours (docs/events.md).
const UnsubscribeDelegated = "delegated"

// Service provisions customers in DB.
type Service struct {
	DB *store.DB
	// Pools are the names of the configured outbound IP pools; the first is the default.
	Pools []string
	// AllowPrivate accepts private, loopback and link-local addresses as source IPs and relay hosts.
	AllowPrivate bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// DKIM generates the DKIM key of each new domain and gives the records to publish. Optional: without
	// it, domains have no DKIM record.
	DKIM DKIM
	// SLATypes are the names of the configured SLA types a contract may name (sla.go).
	SLATypes []string
}

func (s *Service) now() int64 {
	if s.Now != nil {
		return store.Millis(s.Now())
	}
	return store.Now()
}

// newID returns a random row id.
func newID() string { return msgid.Random(10) }

// Create registers a customer in status "pending". Topology hiding and anti-spoofing default to on.
func (s *Service) Create(ctx context.Context, in Create) (*Customer, error) {
	name, err := checkName(in.Name)
	if err != nil {
		return nil, err
	}
	contact, err := checkContact(in.ContactEmail)
	if err != nil {
		return nil, err
	}
	technical, err := checkOptionalContact("technical_email", in.TechnicalEmail)
	if err != nil {
		return nil, err
	}
	admin, err := checkOptionalContact("admin_email", in.AdminEmail)
	if err != nil {
		return nil, err
	}
	pool, err := checkPool(in.Pool, s.Pools)
	if err != nil {
		return nil, err
	}
	fallback, err := checkFallback(in.FallbackPool, pool, s.Pools)
	if err != nil {
		return nil, err
	}
	now := s.now()
	c := &Customer{
		ID: newID(), Name: name, ContactEmail: contact, TechnicalEmail: or(technical, contact), AdminEmail: or(admin, contact), Pool: pool, FallbackPool: fallback, Status: StatusPending,
		TopologyHiding: in.TopologyHiding == nil || *in.TopologyHiding,
		AntiSpoofing:   in.AntiSpoofing == nil || *in.AntiSpoofing,
		CreatedAt:      store.Time(now), UpdatedAt: store.Time(now),
		Domains: []Domain{}, RelayHosts: []RelayHost{}, SourceIPs: []SourceIP{},
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO customers (id, name, contact_email, pool, fallback_pool, status, topology_hiding,
			anti_spoofing, created_at, updated_at, technical_email, admin_email) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Name, c.ContactEmail, c.Pool, c.FallbackPool, c.Status, boolInt(c.TopologyHiding), boolInt(c.AntiSpoofing), now, now,
			technical, admin)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Get returns one customer with its domains, relay hosts and source IPs.
func (s *Service) Get(ctx context.Context, id string) (*Customer, error) {
	row := s.DB.R.QueryRowContext(ctx, `SELECT id, name, contact_email, pool, fallback_pool, status, topology_hiding, anti_spoofing,
		tls_policy, unsubscribe, created_at, updated_at, `+lifecycleColumns+` FROM customers WHERE id = ?`, id)
	c, err := scanCustomer(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	all := map[string]*Customer{c.ID: c}
	if err := s.loadChildren(ctx, all, "WHERE customer_id = ?", id); err != nil {
		return nil, err
	}
	if err := s.fillDKIM(ctx, domainsOf(c)); err != nil {
		return nil, err
	}
	if err := s.fillSLA(ctx, c); err != nil {
		return nil, err
	}
	if err := s.fillLimits(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// List returns every customer, by name, with its domains, relay hosts and source IPs.
func (s *Service) List(ctx context.Context) ([]Customer, error) {
	rows, err := s.DB.R.QueryContext(ctx, `SELECT id, name, contact_email, pool, fallback_pool, status, topology_hiding, anti_spoofing,
		tls_policy, unsubscribe, created_at, updated_at, `+lifecycleColumns+` FROM customers ORDER BY name, id`)
	if err != nil {
		return nil, err
	}
	var list []*Customer
	all := map[string]*Customer{}
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		list = append(list, c)
		all[c.ID] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := s.loadChildren(ctx, all, ""); err != nil {
		return nil, err
	}
	if err := s.fillDKIM(ctx, domainsOf(list...)); err != nil {
		return nil, err
	}
	if err := s.fillSLA(ctx, list...); err != nil {
		return nil, err
	}
	if err := s.fillLimits(ctx, list...); err != nil {
		return nil, err
	}
	out := make([]Customer, len(list))
	for i, c := range list {
		out[i] = *c
	}
	return out, nil
}

type scanner interface{ Scan(...any) error }

func scanCustomer(r scanner) (*Customer, error) {
	var c Customer
	var created, updated int64
	var lc lifecycleRow
	if err := r.Scan(append([]any{&c.ID, &c.Name, &c.ContactEmail, &c.Pool, &c.FallbackPool, &c.Status, &c.TopologyHiding, &c.AntiSpoofing,
		&c.TLSPolicy, &c.Unsubscribe, &created, &updated}, lc.dest()...)...); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = store.Time(created), store.Time(updated)
	lc.fill(&c)
	c.Domains, c.RelayHosts, c.SourceIPs = []Domain{}, []RelayHost{}, []SourceIP{}
	return &c, nil
}

// loadChildren fills the domains, relay hosts and source IPs of the customers in all, reading the rows
// selected by where (applied to each child table) with args.
func (s *Service) loadChildren(ctx context.Context, all map[string]*Customer, where string, args ...any) error {
	err := store.Each(ctx, s.DB.R, `SELECT customer_id, domain, created_at, include_subdomains FROM customer_domains `+where+` ORDER BY domain`, args,
		func(r *sql.Rows) error {
			var d Domain
			var at int64
			if err := r.Scan(&d.CustomerID, &d.Domain, &at, &d.IncludeSubdomains); err != nil {
				return err
			}
			d.CreatedAt = store.Time(at)
			if c := all[d.CustomerID]; c != nil {
				c.Domains = append(c.Domains, d)
			}
			return nil
		})
	if err != nil {
		return err
	}
	err = store.Each(ctx, s.DB.R, `SELECT `+relayHostColumns+` FROM relay_hosts `+where+` ORDER BY created_at, id`, args,
		func(r *sql.Rows) error {
			h, err := scanRelayHost(r)
			if err != nil {
				return err
			}
			if c := all[h.CustomerID]; c != nil {
				c.RelayHosts = append(c.RelayHosts, *h)
			}
			return nil
		})
	if err != nil {
		return err
	}
	return store.Each(ctx, s.DB.R, `SELECT id, customer_id, cidr, created_at FROM source_ips `+where+` ORDER BY created_at, id`, args,
		func(r *sql.Rows) error {
			var p SourceIP
			var at int64
			if err := r.Scan(&p.ID, &p.CustomerID, &p.CIDR, &at); err != nil {
				return err
			}
			p.CreatedAt = store.Time(at)
			if c := all[p.CustomerID]; c != nil {
				c.SourceIPs = append(c.SourceIPs, p)
			}
			return nil
		})
}

// Update changes the fields set in in. Status may be set to "pending" or "active" (an operator forcing the
// activation), and only while the customer is pending or active: a termination is scheduled and cancelled
// with ScheduleTermination and CancelTermination.
func (s *Service) Update(ctx context.Context, id string, in Update) (*Customer, error) {
	var sets []string
	var args []any
	if in.Name != nil {
		v, err := checkName(*in.Name)
		if err != nil {
			return nil, err
		}
		sets, args = append(sets, "name = ?"), append(args, v)
	}
	if in.ContactEmail != nil {
		v, err := checkContact(*in.ContactEmail)
		if err != nil {
			return nil, err
		}
		sets, args = append(sets, "contact_email = ?"), append(args, v)
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"technical_email", in.TechnicalEmail}, {"admin_email", in.AdminEmail}} {
		if f.v == nil {
			continue
		}
		v, err := checkOptionalContact(f.name, *f.v)
		if err != nil {
			return nil, err
		}
		sets, args = append(sets, f.name+" = ?"), append(args, v)
	}
	if in.Pool != nil {
		if *in.Pool == "" {
			return nil, &fielderr.Error{Field: "pool", Msg: "must not be empty"}
		}
		v, err := checkPool(*in.Pool, s.Pools)
		if err != nil {
			return nil, err
		}
		sets, args = append(sets, "pool = ?"), append(args, v)
	}
	if in.FallbackPool != nil {
		v, err := checkFallback(*in.FallbackPool, "", s.Pools)
		if err != nil {
			return nil, err
		}
		sets, args = append(sets, "fallback_pool = ?"), append(args, v)
	}
	if in.Status != nil {
		switch *in.Status {
		case StatusPending, StatusActive:
		default:
			return nil, &fielderr.Error{Field: "status", Msg: fmt.Sprintf("%q is not a status that can be set (use %q or %q)",
				*in.Status, StatusActive, StatusPending)}
		}
		sets, args = append(sets, "status = ?"), append(args, *in.Status)
		if *in.Status == StatusActive {
			sets, args = append(sets, "activated_at = COALESCE(activated_at, ?)"), append(args, s.now())
		}
	}
	if in.TopologyHiding != nil {
		sets, args = append(sets, "topology_hiding = ?"), append(args, boolInt(*in.TopologyHiding))
	}
	if in.AntiSpoofing != nil {
		sets, args = append(sets, "anti_spoofing = ?"), append(args, boolInt(*in.AntiSpoofing))
	}
	if in.TLSPolicy != nil {
		switch *in.TLSPolicy {
		case "", "may", "encrypt", "verify":
		default:
			return nil, &fielderr.Error{Field: "tls_policy", Msg: fmt.Sprintf("%q is not a TLS policy (may, encrypt, verify, or \"\" for the configured default)", *in.TLSPolicy)}
		}
		sets, args = append(sets, "tls_policy = ?"), append(args, *in.TLSPolicy)
	}
	if in.Unsubscribe != nil {
		if *in.Unsubscribe != "" && *in.Unsubscribe != UnsubscribeDelegated {
			return nil, &fielderr.Error{Field: "unsubscribe", Msg: fmt.Sprintf("%q is not an unsubscribe setting (%q, or \"\" for none)", *in.Unsubscribe, UnsubscribeDelegated)}
		}
		sets, args = append(sets, "unsubscribe = ?"), append(args, *in.Unsubscribe)
	}
	sets, args, lerr := s.limitSets(in, sets, args)
	if lerr != nil {
		return nil, lerr
	}
	sets, args, lerr = s.slaSets(in, sets, args)
	if lerr != nil {
		return nil, lerr
	}
	if in.PortalEnabled != nil {
		sets, args = append(sets, "portal_enabled = ?"), append(args, boolInt(*in.PortalEnabled))
	}
	sets, args = append(sets, "updated_at = ?"), append(args, s.now())
	var prior Status
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT status FROM customers WHERE id = ?`, id).Scan(&prior); errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		q := "UPDATE customers SET "
		for i, set := range sets {
			if i > 0 {
				q += ", "
			}
			q += set
		}
		res, err := tx.ExecContext(ctx, q+" WHERE id = ?", append(args, id)...)
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		if in.Status != nil {
			if err := checkStatusChange(prior); err != nil {
				return err
			}
		}
		return checkPoolPair(ctx, tx, id, in.FallbackPool != nil)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// Delete removes a customer with its domains, relay hosts and source IPs, and revokes its API tokens. The
// message log keeps the customer's messages.
func (s *Service) Delete(ctx context.Context, id string) error {
	now := s.now()
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM customer_domains WHERE customer_id = ?`,
			`DELETE FROM relay_hosts WHERE customer_id = ?`,
			`DELETE FROM source_ips WHERE customer_id = ?`,
			`DELETE FROM lifecycle_notices WHERE customer_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		if err := authz.RevokeCustomerTokens(ctx, tx, id, time.UnixMilli(now)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM customers WHERE id = ?`, id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
}

// BlankContact blanks, inside tx, the contact e-mail of every customer whose contact is address (case
// aside), recording now as their update time, and returns their ids, sorted (a data subject's erasure,
// package retention).
func BlankContact(ctx context.Context, tx *sql.Tx, address string, now time.Time) ([]string, error) {
	ids := []string{}
	if err := store.Each(ctx, tx, `SELECT id FROM customers WHERE lower(contact_email) = lower(?) ORDER BY id`, []any{address},
		func(r *sql.Rows) error {
			var id string
			if err := r.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
			return nil
		}); err != nil {
		return nil, err
	}
	_, err := tx.ExecContext(ctx, `UPDATE customers SET contact_email = '', updated_at = ? WHERE lower(contact_email) = lower(?)`,
		store.Millis(now), address)
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// mustAffect turns "no row changed" into ErrNotFound.
func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// customerExists checks, inside tx, that the customer exists.
func customerExists(ctx context.Context, tx *sql.Tx, id string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM customers WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
