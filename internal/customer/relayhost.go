package customer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"easymail/internal/fielderr"
	"easymail/internal/store"
)

// AddRelayHost registers a relay host: a host name (whose addresses are resolved when the access table
// loads) or an IP literal. A relay host belongs to one customer only, since it identifies the customer of an
// incoming connection; an IP literal inside another customer's source prefix is refused for the same reason.
// The addresses of a name are checked by the access table at each reload instead (package access): one that
// is another customer's is ignored, as is one in a range refused here.
func (s *Service) AddRelayHost(ctx context.Context, customerID, host string) (*RelayHost, error) {
	h, ip, err := NormalizeHost(host)
	if err != nil {
		return nil, &fielderr.Error{Field: "host", Msg: err.Error()}
	}
	if ip.IsValid() {
		if err := checkRange(netip.PrefixFrom(ip, ip.BitLen()), s.AllowPrivate); err != nil {
			return nil, &fielderr.Error{Field: "host", Msg: err.Error()}
		}
	}
	rh := &RelayHost{ID: newID(), CustomerID: customerID, Host: h,
		RelayHostResolution: RelayHostResolution{Addresses: []RelayHostAddress{}}}
	now := s.now()
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := customerExists(ctx, tx, customerID); err != nil {
			return err
		}
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT customer_id FROM relay_hosts WHERE host = ?`, h).Scan(&owner)
		switch {
		case err == nil && owner == customerID:
			return &fielderr.Error{Field: "host", Msg: fmt.Sprintf("%s is already a relay host of this customer", h), Conflict: true}
		case err == nil:
			return &fielderr.Error{Field: "host", Msg: fmt.Sprintf("%s is a relay host of another customer", h), Conflict: true}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if ip.IsValid() {
			if err := checkPrefixOwners(ctx, tx, customerID, netip.PrefixFrom(ip, ip.BitLen()), "host", false); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO relay_hosts (id, customer_id, host, created_at) VALUES (?, ?, ?, ?)`,
			rh.ID, customerID, h, now)
		if store.IsUniqueViolation(err) {
			return &fielderr.Error{Field: "host", Msg: fmt.Sprintf("%s is already a relay host of this customer", h), Conflict: true}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	rh.CreatedAt = store.Time(now)
	return rh, nil
}

// RemoveRelayHost removes one of the customer's relay hosts by id.
func (s *Service) RemoveRelayHost(ctx context.Context, customerID, hostID string) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM relay_hosts WHERE id = ? AND customer_id = ?`, hostID, customerID)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
}

// relayHostColumns are the columns scanRelayHost reads.
const relayHostColumns = `id, customer_id, host, created_at, resolved, resolved_at`

// scanRelayHost reads a relay host with what the access table last recorded of its addresses.
func scanRelayHost(r scanner) (*RelayHost, error) {
	var h RelayHost
	var at int64
	var resolved string
	var resolvedAt sql.NullInt64
	if err := r.Scan(&h.ID, &h.CustomerID, &h.Host, &at, &resolved, &resolvedAt); err != nil {
		return nil, err
	}
	h.CreatedAt = store.Time(at)
	if resolved != "" {
		// Written by package access; a row it cannot read is shown as not resolved yet.
		if err := json.Unmarshal([]byte(resolved), &h.RelayHostResolution); err == nil && resolvedAt.Valid {
			t := store.Time(resolvedAt.Int64)
			h.ResolvedAt = &t
		}
	}
	if h.Addresses == nil {
		h.Addresses = []RelayHostAddress{}
	}
	return &h, nil
}

// GetRelayHost returns one of the customer's relay hosts by id.
func (s *Service) GetRelayHost(ctx context.Context, customerID, hostID string) (*RelayHost, error) {
	h, err := scanRelayHost(s.DB.R.QueryRowContext(ctx, `SELECT `+relayHostColumns+` FROM relay_hosts WHERE id = ? AND customer_id = ?`,
		hostID, customerID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return h, err
}

// RecordResolution stores, inside tx, the addresses a relay host's name resolved to (resolved, as JSON) and
// when; package access records them after each resolution so that a change can be reported.
func RecordResolution(ctx context.Context, tx *sql.Tx, hostID, resolved string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE relay_hosts SET resolved = ?, resolved_at = ? WHERE id = ?`,
		resolved, store.Millis(at), hostID)
	return err
}
