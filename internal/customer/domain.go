package customer

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"easymail/internal/store"
)

// AddDomain registers a sending domain for the customer. The name is stored as lower-case A-labels. A domain
// belongs to one customer only, and so does its tree: a domain that is a parent or a subdomain of another
// customer's domain is refused too, because a customer may send from the subdomains of its domains. With
// Service.DKIM set, the domain's first DKIM key is created in the same transaction, and its record returned.
func (s *Service) AddDomain(ctx context.Context, customerID, domain string) (*Domain, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return nil, &FieldError{Field: "domain", Msg: err.Error()}
	}
	var saveKey func(context.Context, *sql.Tx) error
	if s.DKIM != nil {
		if saveKey, err = s.DKIM.Prepare(d); err != nil {
			return nil, err
		}
	}
	now := s.now()
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := customerExists(ctx, tx, customerID); err != nil {
			return err
		}
		// The domain itself and its parents.
		names := []string{d}
		for rest := d; strings.Contains(rest, "."); {
			rest = rest[strings.IndexByte(rest, '.')+1:]
			names = append(names, rest)
		}
		q := `SELECT domain, customer_id FROM customer_domains WHERE domain IN (?` + strings.Repeat(", ?", len(names)-1) +
			`) OR domain LIKE ?`
		args := make([]any, 0, len(names)+1)
		for _, n := range names {
			args = append(args, n)
		}
		// Subdomains. A normalised name holds only letters, digits, hyphens and dots: no LIKE wildcard.
		args = append(args, "%."+d)
		var conflict error
		err := query(ctx, tx, q, args, func(r *sql.Rows) error {
			var have, owner string
			if err := r.Scan(&have, &owner); err != nil {
				return err
			}
			switch {
			case have == d && owner == customerID:
				conflict = &ConflictError{Field: "domain", Msg: fmt.Sprintf("%s is already registered for this customer", d)}
			case have == d:
				conflict = &ConflictError{Field: "domain", Msg: fmt.Sprintf("%s is registered to another customer", d)}
			case owner != customerID && conflict == nil:
				conflict = &ConflictError{Field: "domain", Msg: fmt.Sprintf("%s overlaps %s, registered to another customer", d, have)}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if conflict != nil {
			return conflict
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO customer_domains (domain, customer_id, created_at) VALUES (?, ?, ?)`,
			d, customerID, now)
		if store.IsUniqueViolation(err) {
			return &ConflictError{Field: "domain", Msg: fmt.Sprintf("%s is already registered", d)}
		}
		if err != nil || saveKey == nil {
			return err
		}
		return saveKey(ctx, tx)
	})
	if err != nil {
		return nil, err
	}
	dom := &Domain{Domain: d, CustomerID: customerID, CreatedAt: store.Time(now)}
	if err := s.fillDKIM(ctx, []*Domain{dom}); err != nil {
		return nil, err
	}
	return dom, nil
}

// RemoveDomain removes one of the customer's domains, named in any form NormalizeDomain accepts.
func (s *Service) RemoveDomain(ctx context.Context, customerID, domain string) error {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return ErrNotFound
	}
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM customer_domains WHERE domain = ? AND customer_id = ?`, d, customerID)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
}
