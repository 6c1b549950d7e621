package customer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"easymail/internal/fielderr"
	"easymail/internal/store"
)

// AddDomain registers a sending domain for the customer without its subdomains; see AddDomainWith.
func (s *Service) AddDomain(ctx context.Context, customerID, domain string) (*Domain, error) {
	return s.AddDomainWith(ctx, customerID, DomainRequest{Domain: domain})
}

// AddDomainWith registers a sending domain for the customer. The name is stored as lower-case A-labels; a
// public suffix (com, co.uk, github.io: the ICANN and private sections of the Public Suffix List) is
// refused. With in.IncludeSubdomains, the domain's subdomains may send too.
//
// A domain belongs to one customer only, and two customers' domains never nest (a.example for one,
// mail.a.example for another): under DMARC's relaxed alignment one could send as the other (see checkTree). With Service.DKIM set, the domain's first DKIM key is created in the
// same transaction, and its record returned.
func (s *Service) AddDomainWith(ctx context.Context, customerID string, in DomainRequest) (*Domain, error) {
	if err := checkNotPublicSuffix(in.Domain); err != nil {
		return nil, err
	}
	d, err := NormalizeDomain(in.Domain)
	if err != nil {
		return nil, &fielderr.Error{Field: "domain", Msg: err.Error()}
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
		if err := checkTree(ctx, tx, customerID, d, in.IncludeSubdomains, "domain", true); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO customer_domains (domain, customer_id, created_at, include_subdomains) VALUES (?, ?, ?, ?)`,
			d, customerID, now, boolInt(in.IncludeSubdomains))
		if store.IsUniqueViolation(err) {
			return &fielderr.Error{Field: "domain", Msg: fmt.Sprintf("%s is already registered", d), Conflict: true}
		}
		if err != nil || saveKey == nil {
			return err
		}
		return saveKey(ctx, tx)
	})
	if err != nil {
		return nil, err
	}
	dom := &Domain{Domain: d, CustomerID: customerID, CreatedAt: store.Time(now), IncludeSubdomains: in.IncludeSubdomains}
	if err := s.fillDKIM(ctx, []*Domain{dom}); err != nil {
		return nil, err
	}
	return dom, nil
}

// UpdateDomain changes the settings of one of the customer's domains, named in any form NormalizeDomain
// accepts. Including the subdomains is refused (a conflict on include_subdomains) while the domain
// nests with another customer's.
func (s *Service) UpdateDomain(ctx context.Context, customerID, domain string, in DomainUpdate) (*Domain, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return nil, ErrNotFound
	}
	var dom Domain
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var at int64
		err := tx.QueryRowContext(ctx, `SELECT created_at, include_subdomains FROM customer_domains WHERE domain = ? AND customer_id = ?`,
			d, customerID).Scan(&at, &dom.IncludeSubdomains)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		dom.Domain, dom.CustomerID, dom.CreatedAt = d, customerID, store.Time(at)
		if in.IncludeSubdomains == nil || *in.IncludeSubdomains == dom.IncludeSubdomains {
			return nil
		}
		if *in.IncludeSubdomains {
			if err := checkTree(ctx, tx, customerID, d, true, "include_subdomains", false); err != nil {
				return err
			}
		}
		dom.IncludeSubdomains = *in.IncludeSubdomains
		_, err = tx.ExecContext(ctx, `UPDATE customer_domains SET include_subdomains = ? WHERE domain = ? AND customer_id = ?`,
			boolInt(dom.IncludeSubdomains), d, customerID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.fillDKIM(ctx, []*Domain{&dom}); err != nil {
		return nil, err
	}
	return &dom, nil
}

// checkTree refuses d for the customer, inside tx, when it collides with a registered domain: the same
// name (when exactIsConflict; for this customer or another), or a parent or a subdomain of another
// customer's domain. field names the input in the error.
func checkTree(ctx context.Context, tx *sql.Tx, customerID, d string, include bool, field string, exactIsConflict bool) error {
	// The domain itself and its parents.
	names := []string{d}
	for rest := d; strings.Contains(rest, "."); {
		rest = rest[strings.IndexByte(rest, '.')+1:]
		names = append(names, rest)
	}
	q := `SELECT domain, customer_id, include_subdomains FROM customer_domains WHERE domain IN (?` +
		strings.Repeat(", ?", len(names)-1) + `) OR domain LIKE ? ORDER BY domain`
	args := make([]any, 0, len(names)+1)
	for _, n := range names {
		args = append(args, n)
	}
	// Subdomains. A normalised name holds only letters, digits, hyphens and dots: no LIKE wildcard.
	args = append(args, "%."+d)
	var conflict error
	err := store.Each(ctx, tx, q, args, func(r *sql.Rows) error {
		var have, owner string
		var haveInclude bool
		if err := r.Scan(&have, &owner, &haveInclude); err != nil {
			return err
		}
		switch {
		case have == d && !exactIsConflict:
		case have == d && owner == customerID:
			conflict = &fielderr.Error{Field: field, Msg: fmt.Sprintf("%s is already registered for this customer", d), Conflict: true}
		case have == d:
			conflict = &fielderr.Error{Field: field, Msg: fmt.Sprintf("%s is registered to another customer", d), Conflict: true}
		case owner == customerID || conflict != nil:
		default:
			// Nesting across customers is refused whatever include_subdomains says: a subdomain aligns with
			// its organisational domain under DMARC's relaxed mode, so one customer's mail.a.example would
			// pass as the other's a.example.
			conflict = &fielderr.Error{Field: field, Msg: fmt.Sprintf(
				"%s nests with %s, registered to another customer", d, have), Conflict: true}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return conflict
}

// checkNotPublicSuffix refuses a domain that is a public suffix, under which unrelated parties register
// their names: an ICANN suffix (com, lu, co.uk) or one of the Public Suffix List's private section
// (github.io). Names that do not parse are left to NormalizeDomain.
func checkNotPublicSuffix(domain string) error {
	d := strings.TrimSuffix(strings.TrimSpace(domain), ".")
	a, err := idna.Lookup.ToASCII(d)
	if err != nil || a == "" {
		return nil
	}
	a = strings.ToLower(a)
	ps, icann := publicsuffix.PublicSuffix(a)
	// An unlisted top-level label matches the list's default rule "*" (icann false): not a known suffix.
	if ps != a || !icann && !strings.Contains(a, ".") {
		return nil
	}
	return &fielderr.Error{Field: "domain", Msg: fmt.Sprintf(
		"%q is a public suffix (like com, lu or co.uk), shared by unrelated owners: register the customer's own domain under it", domain)}
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
