package customer

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"easymail/internal/fielderr"
	"easymail/internal/store"
)

// slaSets adds in.SLAType to an update: the name of an SLA type of incidents.sla_types, or "" for the
// default type. Without SLATypes configured, any name is refused but "".
func (s *Service) slaSets(in Update, sets []string, args []any) ([]string, []any, error) {
	if in.SLAType == nil {
		return sets, args, nil
	}
	v := strings.TrimSpace(*in.SLAType)
	if v != "" && !slices.Contains(s.SLATypes, v) {
		return nil, nil, &fielderr.Error{Field: "sla_type", Msg: fmt.Sprintf("%q is not an SLA type (configured: %s; \"\" for the default)",
			v, strings.Join(s.SLATypes, ", "))}
	}
	return append(sets, "sla_type = ?"), append(args, v), nil
}

// fillSLA fills the SLA type and the portal switch of the customers in list.
func (s *Service) fillSLA(ctx context.Context, list ...*Customer) error {
	if len(list) == 0 {
		return nil
	}
	byID := make(map[string]*Customer, len(list))
	for _, c := range list {
		byID[c.ID] = c
	}
	q, args := `SELECT id, sla_type, portal_enabled FROM customers`, []any{}
	if len(list) == 1 {
		q, args = q+` WHERE id = ?`, append(args, list[0].ID)
	}
	return store.Each(ctx, s.DB.R, q, args, func(r *sql.Rows) error {
		var id, t string
		var portal bool
		if err := r.Scan(&id, &t, &portal); err != nil {
			return err
		}
		if c := byID[id]; c != nil {
			c.SLAType, c.PortalEnabled = t, portal
		}
		return nil
	})
}

// OperatorHoldReason is the reason recorded for a hold set by an operator (PATCH "held": true), as opposed
// to one set by compromise detection.
const OperatorHoldReason = operatorHoldReason
