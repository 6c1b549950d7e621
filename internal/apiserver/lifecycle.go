package apiserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"easymail/internal/api"
	"easymail/internal/audit"
	"easymail/internal/authz"
	"easymail/internal/spfrecord"
)

// staffOnly lets operators and experts through (operator infrastructure and the audit log are not a
// customer's data).
func staffOnly(h apiHandler) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
		if p.Role != authz.RoleOperator && p.Role != authz.RoleExpert {
			return &api.Error{Status: http.StatusForbidden, Message: "the " + p.Role + " role may not do this; an operator or expert token is needed"}
		}
		return h(w, r, p)
	}
}

// scheduleTermination serves POST /customers/{id}/termination {"deactivate_at"}.
func (s *server) scheduleTermination(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	// The body of api.TerminationRequest, with the time read here so that a malformed one names its field.
	var in struct {
		DeactivateAt *string `json:"deactivate_at"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	var at time.Time
	if in.DeactivateAt != nil {
		var err error
		if at, err = time.Parse(time.RFC3339Nano, *in.DeactivateAt); err != nil {
			return badRequest(fmt.Sprintf("deactivate_at must be an RFC 3339 time (2006-01-02T15:04:05Z), not %q", *in.DeactivateAt), "deactivate_at")
		}
	}
	c, err := s.customers.ScheduleTermination(r.Context(), r.PathValue("id"), at)
	if err != nil {
		return err
	}
	s.changed()
	writeJSON(w, http.StatusOK, c)
	return nil
}

// cancelTermination serves DELETE /customers/{id}/termination.
func (s *server) cancelTermination(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	c, err := s.customers.CancelTermination(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.changed()
	writeJSON(w, http.StatusOK, c)
	return nil
}

// checkCustomer serves GET /customers/{id}/check: the onboarding checks against live DNS. A pending
// customer whose first domain verifies becomes active.
func (s *server) checkCustomer(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	id := r.PathValue("id")
	if !p.CanRead(id) {
		return errNotFound
	}
	c, err := s.customers.Get(r.Context(), id)
	if err != nil {
		return err
	}
	chk, err := s.runCheck(r.Context(), c, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, chk)
	return nil
}

// relayPort is the port of the first SMTP listener.
func (s *server) relayPort() string {
	if len(s.cfg.SMTP.Listen) > 0 {
		if _, port, err := net.SplitHostPort(s.cfg.SMTP.Listen[0]); err == nil {
			return port
		}
	}
	return ""
}

// verifiedReadiness is the onboarding criterion of a domain: SPF authorises every outbound IP, the DKIM
// signing key's record is published and matches, and a DMARC record is present. Bulk-mail criteria
// (one-click unsubscription) are not part of it.
func verifiedReadiness(rep *api.Readiness) bool {
	ok := func(s string) bool { return s == api.ReadinessPass || s == api.ReadinessWarn }
	return rep != nil && rep.SPF.Status == api.ReadinessPass && ok(rep.DKIM.Status) && ok(rep.DMARC.Status)
}

// runCheck checks every domain of c concurrently and activates c when it is pending and a domain verifies;
// the activation is audited with p as actor (a zero p, from the onboarding page, is the system).
func (s *server) runCheck(ctx context.Context, c *api.Customer, p authz.Principal) (*api.CustomerCheck, error) {
	chk := &api.CustomerCheck{CustomerID: c.ID, Status: c.Status, RelayHost: s.cfg.Hostname, RelayPort: s.relayPort(),
		Senders: api.ReadinessFail, SPFInclude: "include:" + s.cfg.SPFDomain(), Domains: make([]api.DomainCheck, len(c.Domains)),
		CheckedAt: time.Now().UTC()}
	if len(c.RelayHosts)+len(c.SourceIPs) > 0 {
		chk.Senders = api.ReadinessPass
	}
	reps := s.domainChecks(ctx, c)
	off := s.readinessOff()
	for i, d := range c.Domains {
		dc := api.DomainCheck{Domain: d.Domain}
		switch {
		case off != nil:
			dc.Error = off.Message
		case i < len(reps) && reps[i].Err != "":
			dc.Error = reps[i].Err
		case i < len(reps) && reps[i].Readiness != nil:
			rep := reps[i].Readiness
			dc.SPF, dc.DKIM, dc.DMARC = &rep.SPF, &rep.DKIM, &rep.DMARC
			dc.Verified = verifiedReadiness(rep)
		}
		chk.Verified = chk.Verified || dc.Verified
		chk.Domains[i] = dc
	}
	if chk.Verified && c.Status == api.StatusPending {
		if err := s.activate(ctx, c, p); err != nil {
			return nil, err
		}
		chk.Activated, chk.Status = true, api.StatusActive
	}
	return chk, nil
}

// activate moves c from pending to active and records it in the audit log.
func (s *server) activate(ctx context.Context, c *api.Customer, p authz.Principal) error {
	before := s.customerSnapshot(ctx, c.ID)
	changed, err := s.customers.Activate(ctx, c.ID)
	if err != nil || !changed {
		return err
	}
	s.changed()
	role := p.Role
	if role == "" {
		role = audit.RoleSystem
	}
	e := audit.Entry{ActorToken: p.TokenID, ActorRole: role, ActorCustomer: p.CustomerID, Action: "lifecycle activate",
		Target: "/api/v1/customers/" + c.ID, CustomerID: c.ID, Status: http.StatusOK, Before: before,
		After: s.customerSnapshot(ctx, c.ID)}
	if err := audit.Record(context.WithoutCancel(ctx), s.db, e); err != nil {
		s.log.Error("audit: could not record an activation", "customer", c.ID, "err", err)
	}
	return nil
}

// poolAddrs are the outbound IPs of every pool: the pools' current members when the pools are managed,
// else the configured ones.
func (s *server) poolAddrs() []netip.Addr {
	var out []netip.Addr
	add := func(a string) {
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, ip)
		}
	}
	if s.pools != nil {
		for _, p := range s.pools.PoolViews() {
			for _, a := range p.Addresses {
				add(a)
			}
		}
		return out
	}
	for _, p := range s.cfg.Pools {
		for _, a := range p.IPs {
			add(a.Address)
		}
	}
	return out
}

// spfRecords serves GET /dns/spf: the TXT records of the operator's SPF domain.
func (s *server) spfRecords(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	name := s.cfg.SPFDomain()
	recs, lookups, err := spfrecord.Build(name, s.poolAddrs())
	if err != nil {
		return &api.Error{Status: http.StatusConflict, Message: err.Error()}
	}
	writeJSON(w, http.StatusOK, api.SPFRecords{Name: name, Include: "include:" + name, Records: recs, Lookups: lookups})
	return nil
}
