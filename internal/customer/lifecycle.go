package customer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"easymail/internal/audit"
	"easymail/internal/authz"
	"easymail/internal/fielderr"
	"easymail/internal/store"
)

// lifecycleColumns are the customers columns of the lifecycle, read by scanCustomer after the others.
const lifecycleColumns = `technical_email, admin_email, deactivate_at, activated_at, deactivated_at, removed_at`

// lifecycleRow receives lifecycleColumns.
type lifecycleRow struct {
	technical, admin                    string
	deactivate, activated, deact, remov sql.NullInt64
}

func (l *lifecycleRow) dest() []any {
	return []any{&l.technical, &l.admin, &l.deactivate, &l.activated, &l.deact, &l.remov}
}

func (l *lifecycleRow) fill(c *Customer) {
	c.TechnicalEmail, c.AdminEmail = or(l.technical, c.ContactEmail), or(l.admin, c.ContactEmail)
	c.DeactivateAt, c.ActivatedAt = optTime(l.deactivate), optTime(l.activated)
	c.DeactivatedAt, c.RemovedAt = optTime(l.deact), optTime(l.remov)
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.Time(v.Int64)
	return &t
}

// or returns a, or b when a is empty.
func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkOptionalContact validates a technical or administrative contact: "" (use contact_email) or an
// address, returned as its addr-spec.
func checkOptionalContact(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	v, err := checkContact(s)
	if err != nil {
		var fe *fielderr.Error
		if errors.As(err, &fe) {
			fe.Field = field
		}
		return "", err
	}
	return v, nil
}

// checkStatusChange refuses a status change through Update when the customer is past active.
func checkStatusChange(prior Status) error {
	switch prior {
	case StatusPending, StatusActive:
		return nil
	case StatusTerminating:
		return &fielderr.Error{Field: "status", Msg: "the customer is terminating: cancel the termination (DELETE .../termination) to restore it", Conflict: true}
	}
	return &fielderr.Error{Field: "status", Msg: fmt.Sprintf("the customer is %s: its status can no longer change", prior), Conflict: true}
}

// Activate moves a pending customer to active (its first domain verified) and reports whether it did.
func (s *Service) Activate(ctx context.Context, id string) (bool, error) {
	var changed bool
	now := s.now()
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE customers SET status = ?, activated_at = COALESCE(activated_at, ?), updated_at = ?
			WHERE id = ? AND status = ?`, StatusActive, now, now, id, StatusPending)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		changed = n > 0
		return err
	})
	return changed, err
}

// ScheduleTermination schedules the customer's deactivation at at, which must be in the future: the status
// becomes terminating (the previous one is kept for a cancellation) and the lifecycle scheduler sends the
// notices, deactivates and later removes. Scheduling again moves the date.
func (s *Service) ScheduleTermination(ctx context.Context, id string, at time.Time) (*Customer, error) {
	if at.IsZero() {
		return nil, &fielderr.Error{Field: "deactivate_at", Msg: "is required (RFC 3339 date and time)"}
	}
	now := s.now()
	if store.Millis(at) <= now {
		return nil, &fielderr.Error{Field: "deactivate_at", Msg: fmt.Sprintf("%s is not in the future", at.UTC().Format(time.RFC3339))}
	}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var status Status
		err := tx.QueryRowContext(ctx, `SELECT status FROM customers WHERE id = ?`, id).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		switch status {
		case StatusPending, StatusActive:
			_, err = tx.ExecContext(ctx, `UPDATE customers SET status = ?, prior_status = ?, deactivate_at = ?, updated_at = ? WHERE id = ?`,
				StatusTerminating, status, store.Millis(at), now, id)
		case StatusTerminating:
			_, err = tx.ExecContext(ctx, `UPDATE customers SET deactivate_at = ?, updated_at = ? WHERE id = ?`, store.Millis(at), now, id)
		default:
			return &fielderr.Error{Field: "deactivate_at", Msg: "the customer is already " + string(status), Conflict: true}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// CancelTermination cancels a scheduled deactivation before its date: the customer gets its previous status
// back, with everything registered for it untouched.
func (s *Service) CancelTermination(ctx context.Context, id string) (*Customer, error) {
	now := s.now()
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var status, prior Status
		var at sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT status, prior_status, deactivate_at FROM customers WHERE id = ?`, id).Scan(&status, &prior, &at)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if status != StatusTerminating {
			return &fielderr.Error{Field: "status", Msg: "no termination to cancel: the customer is " + string(status), Conflict: true}
		}
		if at.Valid && at.Int64 <= now {
			return &fielderr.Error{Field: "deactivate_at", Msg: "the deactivation date has passed: the termination can no longer be cancelled", Conflict: true}
		}
		if prior != StatusPending {
			prior = StatusActive
		}
		_, err = tx.ExecContext(ctx, `UPDATE customers SET status = ?, prior_status = '', deactivate_at = NULL, updated_at = ? WHERE id = ?`,
			prior, now, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// ServiceEnded reports whether c's service has ended: it is deactivated or removed, or terminating with its
// deactivation date reached (before the scheduler has run). Its onboarding links stop working then.
func (s *Service) ServiceEnded(c *Customer) bool {
	switch c.Status {
	case StatusDeactivated, StatusRemoved:
		return true
	case StatusTerminating:
		return c.DeactivateAt != nil && store.Millis(*c.DeactivateAt) <= s.now()
	}
	return false
}

// Ending is a customer on its way out, as the lifecycle scheduler works on it: terminating (notices, then
// deactivation at DeactivateAt) or deactivated (removal after the grace period).
type Ending struct {
	ID, Name string
	Status   Status
	// Contacts are the contact, technical and administrative addresses, without repeats.
	Contacts     []string
	DeactivateAt time.Time
}

// Ending lists the customers that are terminating or deactivated, by id.
func (s *Service) Ending(ctx context.Context) ([]Ending, error) {
	var out []Ending
	err := store.Each(ctx, s.DB.R, `SELECT id, name, status, contact_email, technical_email, admin_email, deactivate_at
		FROM customers WHERE status IN (?, ?) AND deactivate_at IS NOT NULL ORDER BY id`,
		[]any{StatusTerminating, StatusDeactivated}, func(rows *sql.Rows) error {
			var c Ending
			var contact, tech, admin string
			var at int64
			if err := rows.Scan(&c.ID, &c.Name, &c.Status, &contact, &tech, &admin, &at); err != nil {
				return err
			}
			c.DeactivateAt = store.Time(at)
			for _, a := range []string{contact, tech, admin} {
				if a != "" && !slices.ContainsFunc(c.Contacts, func(b string) bool { return strings.EqualFold(a, b) }) {
					c.Contacts = append(c.Contacts, a)
				}
			}
			out = append(out, c)
			return nil
		})
	return out, err
}

// Deactivate moves a terminating customer whose deactivation date is deactivateAt to deactivated, from
// which the SMTP side refuses its mail, and audits it as the system's. It reports false, with no change,
// when the termination was cancelled or moved meanwhile.
func (s *Service) Deactivate(ctx context.Context, id string, deactivateAt, now time.Time) (bool, error) {
	var moved bool
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE customers SET status = ?, deactivated_at = ?, updated_at = ?
			WHERE id = ? AND status = ? AND deactivate_at = ?`,
			StatusDeactivated, store.Millis(now), store.Millis(now), id, StatusTerminating, store.Millis(deactivateAt))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		moved = true
		return audit.Insert(ctx, tx, audit.Entry{At: now, ActorRole: audit.RoleSystem, Action: "lifecycle deactivate",
			Target: "/api/v1/customers/" + id, CustomerID: id,
			Before: statusJSON(StatusTerminating, deactivateAt), After: statusJSON(StatusDeactivated, deactivateAt)})
	})
	return moved, err
}

// Removed counts what Remove deleted.
type Removed struct {
	RelayHosts, Domains, SourceIPs int64
}

// Remove ends a deactivated customer's registration: its relay hosts, domains (with their DKIM keys) and
// source IPs are deleted, its API tokens revoked and its status set to removed, audited as the system's.
// The customer row and its message log stay. It returns nil, with no change, when the customer is not
// deactivated.
func (s *Service) Remove(ctx context.Context, id string, deactivateAt, now time.Time) (*Removed, error) {
	var out *Removed
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var status Status
		err := tx.QueryRowContext(ctx, `SELECT status FROM customers WHERE id = ?`, id).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && status != StatusDeactivated) {
			return nil
		}
		if err != nil {
			return err
		}
		var r Removed
		for _, d := range []struct {
			q string
			n *int64
		}{
			{`DELETE FROM relay_hosts WHERE customer_id = ?`, &r.RelayHosts},
			{`DELETE FROM customer_domains WHERE customer_id = ?`, &r.Domains},
			{`DELETE FROM source_ips WHERE customer_id = ?`, &r.SourceIPs},
		} {
			res, err := tx.ExecContext(ctx, d.q, id)
			if err != nil {
				return err
			}
			*d.n, _ = res.RowsAffected()
		}
		if err := authz.RevokeCustomerTokens(ctx, tx, id, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE customers SET status = ?, removed_at = ?, updated_at = ? WHERE id = ?`,
			StatusRemoved, store.Millis(now), store.Millis(now), id); err != nil {
			return err
		}
		out = &r
		after := fmt.Sprintf(`{"status":%q,"removed":{"relay_hosts":%d,"domains":%d,"source_ips":%d}}`,
			StatusRemoved, r.RelayHosts, r.Domains, r.SourceIPs)
		return audit.Insert(ctx, tx, audit.Entry{At: now, ActorRole: audit.RoleSystem, Action: "lifecycle remove",
			Target: "/api/v1/customers/" + id, CustomerID: id,
			Before: statusJSON(StatusDeactivated, deactivateAt), After: audit.RawJSON(after)})
	})
	return out, err
}

// statusJSON is the audit log's before or after of a lifecycle step.
func statusJSON(status Status, at time.Time) audit.RawJSON {
	return audit.RawJSON(fmt.Sprintf(`{"status":%q,"deactivate_at":%q}`, status, at.UTC().Format(time.RFC3339)))
}

// NoticeSent reports whether the termination notice of kind for the deactivation date deactivateAt was
// queued already to recipient (the lifecycle scheduler sends each one once).
func NoticeSent(ctx context.Context, db *store.DB, customerID string, deactivateAt time.Time, kind, recipient string) (bool, error) {
	var one int
	err := db.R.QueryRowContext(ctx, `SELECT 1 FROM lifecycle_notices WHERE customer_id = ? AND deactivate_at = ?
		AND kind = ? AND recipient = ?`, customerID, store.Millis(deactivateAt), kind, recipient).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// RecordNotice records, inside tx (the one that queues the notice's message queueID), that the notice of kind
// went to recipient at sentAt. A second record of the same notice is a unique violation
// (store.IsUniqueViolation): another node sent it meanwhile.
func RecordNotice(ctx context.Context, tx *sql.Tx, customerID string, deactivateAt time.Time, kind, recipient, queueID string, sentAt time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO lifecycle_notices (customer_id, deactivate_at, kind, recipient, queue_id, sent_at)
		VALUES (?, ?, ?, ?, ?, ?)`, customerID, store.Millis(deactivateAt), kind, recipient, queueID, store.Millis(sentAt))
	return err
}
