package scan

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"

	"easymail/internal/contentrules"
	"easymail/internal/fielderr"
	"easymail/internal/store"
)

// Policies are the customers' scanning policies over the configured defaults. The policies are read from
// the database by Load and kept in memory; Set changes one in both. It is safe for concurrent use.
type Policies struct {
	db       *store.DB
	defaults Policy
	def      *ResolvedPolicy

	mu  sync.RWMutex
	raw map[string]Policy
	pol map[string]*ResolvedPolicy
}

// NewPolicies returns the policies with defaults, which must have every field set.
func NewPolicies(db *store.DB, defaults Policy) (*Policies, error) {
	def, err := resolve(Policy{}, defaults)
	if err != nil {
		return nil, err
	}
	return &Policies{db: db, defaults: defaults, def: def, raw: map[string]Policy{}, pol: map[string]*ResolvedPolicy{}}, nil
}

// Defaults returns the configured default policy.
func (p *Policies) Defaults() Policy { return p.defaults }

// For returns the resolved policy of a customer.
func (p *Policies) For(customerID string) *ResolvedPolicy {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if pol := p.pol[customerID]; pol != nil {
		return pol
	}
	return p.def
}

// Load reads every customer's policy from the database.
func (p *Policies) Load(ctx context.Context) error {
	rows, err := p.db.R.QueryContext(ctx, `SELECT customer_id, policy FROM scan_policies`)
	if err != nil {
		return err
	}
	defer rows.Close()
	raw, pol := map[string]Policy{}, map[string]*ResolvedPolicy{}
	for rows.Next() {
		var id, js string
		if err := rows.Scan(&id, &js); err != nil {
			return err
		}
		var sp Policy
		if err := json.Unmarshal([]byte(js), &sp); err != nil {
			return fmt.Errorf("scan policy of %s: %w", id, err)
		}
		r, err := resolve(sp, p.defaults)
		if err != nil {
			return fmt.Errorf("scan policy of %s: %w", id, err)
		}
		raw[id], pol[id] = sp, r
	}
	if err := rows.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	p.raw, p.pol = raw, pol
	p.mu.Unlock()
	return nil
}

// Get returns a customer's own policy (null fields take the defaults).
func (p *Policies) Get(customerID string) Policy {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.raw[customerID]
}

// Set checks and stores a customer's policy; a policy with every field null removes it.
func (p *Policies) Set(ctx context.Context, customerID string, sp Policy) error {
	r, err := resolve(sp, p.defaults)
	if err != nil {
		return err
	}
	empty := sp == (Policy{})
	js, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	err = p.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM scan_policies WHERE customer_id = ?`, customerID); err != nil {
			return err
		}
		if empty {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO scan_policies (customer_id, policy, updated_at) VALUES (?, ?, ?)`,
			customerID, string(js), store.Now())
		return err
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if empty {
		delete(p.raw, customerID)
		delete(p.pol, customerID)
	} else {
		p.raw[customerID], p.pol[customerID] = sp, r
	}
	return nil
}

// resolve checks sp and fills its null fields from def.
func resolve(sp, def Policy) (*ResolvedPolicy, error) {
	pick := func(v, d *float64, field string) (float64, error) {
		if v == nil {
			v = d
		}
		if v == nil {
			return 0, nil
		}
		if *v < 0 || *v > 1000 {
			return 0, fielderr.New(field, "must be 0 (off) to 1000")
		}
		return *v, nil
	}
	var pol ResolvedPolicy
	var err error
	if pol.SpamReject, err = pick(sp.SpamRejectScore, def.SpamRejectScore, "spam_reject_score"); err != nil {
		return nil, err
	}
	if pol.SpamQuarantine, err = pick(sp.SpamQuarantineScore, def.SpamQuarantineScore, "spam_quarantine_score"); err != nil {
		return nil, err
	}
	if pol.SpamTag, err = pick(sp.SpamTagScore, def.SpamTagScore, "spam_tag_score"); err != nil {
		return nil, err
	}
	str := func(v, d *string) string {
		if v != nil {
			return *v
		}
		if d != nil {
			return *d
		}
		return ""
	}
	pol.VirusAction = str(sp.VirusAction, def.VirusAction)
	if pol.VirusAction == "" {
		pol.VirusAction = contentrules.ActionReject
	}
	if pol.VirusAction != contentrules.ActionReject && pol.VirusAction != contentrules.ActionQuarantine {
		return nil, fielderr.New("virus_action", "must be reject or quarantine")
	}
	pol.OnFailure = str(sp.OnFailure, def.OnFailure)
	if pol.OnFailure == "" {
		pol.OnFailure = FailTempfail
	}
	if pol.OnFailure != FailTempfail && pol.OnFailure != FailBypass {
		return nil, fielderr.New("on_failure", "must be tempfail or bypass")
	}
	pol.CustomerRelease = str(sp.CustomerRelease, def.CustomerRelease)
	if pol.CustomerRelease == "" {
		pol.CustomerRelease = ReleaseNone
	}
	switch pol.CustomerRelease {
	case ReleaseNone, ReleaseExceptVirus, ReleaseAll:
	default:
		return nil, fielderr.New("customer_release", "must be none, except_virus or all")
	}
	var own []contentrules.Rule
	if sp.Rules != nil {
		own = *sp.Rules
	}
	if len(own) > 200 {
		return nil, fielderr.New("rules", "at most 200 rules")
	}
	// The customer's rules are checked alone first, so that an error names their index in its list.
	if _, err := contentrules.Compile(own, "rules"); err != nil {
		return nil, err
	}
	var list []contentrules.Rule
	for _, r := range effective(sp, def) {
		list = append(list, r.Rule)
	}
	if pol.Rules, err = contentrules.Compile(list, "rules"); err != nil {
		return nil, err
	}
	return &pol, nil
}

// effective returns the content rules in force under sp over the defaults def: the default rules (unless
// sp replaces them), then sp's own.
func effective(sp, def Policy) []EffectiveRule {
	out := []EffectiveRule{}
	if !sp.ReplaceDefaults && def.Rules != nil {
		for _, r := range *def.Rules {
			out = append(out, EffectiveRule{Rule: r, Origin: OriginDefault})
		}
	}
	if sp.Rules != nil {
		for _, r := range *sp.Rules {
			out = append(out, EffectiveRule{Rule: r, Origin: OriginCustomer})
		}
	}
	return out
}

// Effective returns the content rules in force for a customer, marked by origin, in the order they are
// checked.
func (p *Policies) Effective(customerID string) []EffectiveRule {
	return effective(p.Get(customerID), p.defaults)
}
