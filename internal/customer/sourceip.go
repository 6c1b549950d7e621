package customer

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"strings"

	"easymail/internal/fielderr"
	"easymail/internal/store"
)

// AddSourceIP registers a source IP or CIDR prefix for the customer, normalised as ParsePrefix does. A
// prefix that overlaps one of another customer's, or contains another customer's relay host address, is
// refused: each client address must identify one customer.
func (s *Service) AddSourceIP(ctx context.Context, customerID, cidr string) (*SourceIP, error) {
	p, err := ParsePrefix(cidr)
	if err != nil {
		return nil, &fielderr.Error{Field: "cidr", Msg: err.Error()}
	}
	if err := checkRange(p, s.AllowPrivate); err != nil {
		return nil, &fielderr.Error{Field: "cidr", Msg: err.Error()}
	}
	sip := &SourceIP{ID: newID(), CustomerID: customerID, CIDR: p.String()}
	now := s.now()
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := customerExists(ctx, tx, customerID); err != nil {
			return err
		}
		if err := checkPrefixOwners(ctx, tx, customerID, p, "cidr", true); err != nil {
			return err
		}
		err := store.Each(ctx, tx, `SELECT host FROM relay_hosts WHERE customer_id <> ?`, []any{customerID}, func(r *sql.Rows) error {
			var h string
			if err := r.Scan(&h); err != nil {
				return err
			}
			if ip, err := netip.ParseAddr(h); err == nil && p.Contains(ip.Unmap()) {
				return &fielderr.Error{Field: "cidr", Msg: fmt.Sprintf("%s contains %s, a relay host of another customer", p, h), Conflict: true}
			}
			return nil
		})
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO source_ips (id, customer_id, cidr, created_at) VALUES (?, ?, ?, ?)`,
			sip.ID, customerID, sip.CIDR, now)
		if store.IsUniqueViolation(err) {
			return &fielderr.Error{Field: "cidr", Msg: fmt.Sprintf("%s is already registered", p), Conflict: true}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	sip.CreatedAt = store.Time(now)
	if raw, err := netip.ParsePrefix(strings.TrimSpace(cidr)); err == nil && raw.Addr().Unmap() != raw.Masked().Addr().Unmap() {
		sip.Warning = fmt.Sprintf("%s has host bits set: stored as the network %s, which admits %s", strings.TrimSpace(cidr), p,
			rangeText(p))
	}
	return sip, nil
}

// rangeText is the addresses of p: "10.0.0.0 to 10.0.0.255".
func rangeText(p netip.Prefix) string {
	last := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range last {
		for b := 7; b >= 0; b-- {
			if i*8+(7-b) >= bits {
				last[i] |= 1 << b
			}
		}
	}
	end, _ := netip.AddrFromSlice(last)
	return p.Addr().String() + " to " + end.String()
}

// checkPrefixOwners refuses p when it overlaps a source prefix of another customer and, when dupIsConflict,
// when it is already a source prefix of this customer. field names the input in the error.
func checkPrefixOwners(ctx context.Context, tx *sql.Tx, customerID string, p netip.Prefix, field string, dupIsConflict bool) error {
	return store.Each(ctx, tx, `SELECT customer_id, cidr FROM source_ips`, nil, func(r *sql.Rows) error {
		var owner, c string
		if err := r.Scan(&owner, &c); err != nil {
			return err
		}
		have, ok := parseStored(c)
		switch {
		case !ok:
			return nil
		case owner == customerID && have == p && dupIsConflict:
			return &fielderr.Error{Field: field, Msg: fmt.Sprintf("%s is already registered for this customer", p), Conflict: true}
		case owner != customerID && have.Overlaps(p):
			return &fielderr.Error{Field: field, Msg: fmt.Sprintf("%s overlaps %s of another customer", p, have), Conflict: true}
		}
		return nil
	})
}

// parseStored parses a source_ips.cidr value: a prefix or, in rows written by hand, a bare address.
func parseStored(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// RemoveSourceIP removes one of the customer's source IPs by id.
func (s *Service) RemoveSourceIP(ctx context.Context, customerID, ipID string) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM source_ips WHERE id = ? AND customer_id = ?`, ipID, customerID)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
}
