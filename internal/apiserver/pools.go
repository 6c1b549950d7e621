package apiserver

import (
	"context"
	"errors"
	"net/http"
	"net/netip"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/fielderr"
	"easymail/internal/ippool"
)

// Pools manages the outbound IP pools for /pools and /ips. *ippool.Pools implements it. Errors are
// *fielderr.Error (422, or 409 for a conflict) and ippool.ErrNotFound (404).
type Pools interface {
	PoolViews() []api.Pool
	IPViews(pool string) ([]api.IP, error)
	IPView(addr netip.Addr) (api.IP, error)
	Add(ctx context.Context, pool string, in api.IPRequest) (api.IP, error)
	Remove(ctx context.Context, pool string, addr netip.Addr) error
	Drain(ctx context.Context, addr netip.Addr, reason string) (api.IP, error)
	Pause(ctx context.Context, addr netip.Addr, reason string) (api.IP, error)
	Resume(ctx context.Context, addr netip.Addr) (api.IP, error)
}

// IPChecker checks an outbound IP against the DNSBL zones now and records the outcome. *rbl.Monitor
// implements it.
type IPChecker interface {
	CheckNow(ctx context.Context, addr netip.Addr) error
}

// staff lets operators and experts through: the pools are the operator's infrastructure, not a customer's.
// Writes are further limited to operators by the endpoint's access.
func staff(h apiHandler) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
		if p.Role != authz.RoleOperator && p.Role != authz.RoleExpert {
			return &api.Error{Status: http.StatusForbidden, Message: "the " + p.Role +
				" role may not see the outbound IP pools; an operator or expert token is needed"}
		}
		return h(w, r, p)
	}
}

// poolError maps the errors of the pools to API errors.
func poolError(err error) error {
	if errors.Is(err, ippool.ErrNotFound) {
		return &api.Error{Status: http.StatusNotFound, Message: err.Error()}
	}
	return err
}

// poolsReady answers 404 when the server runs without pools (an API without a relay behind it).
func (s *server) poolsReady() error {
	if s.pools == nil {
		return &api.Error{Status: http.StatusNotFound, Message: "outbound IP pools are not managed by this server"}
	}
	return nil
}

// pathAddr reads the {address} path value.
func pathAddr(r *http.Request) (netip.Addr, error) {
	a, err := ippool.ParseAddr(r.PathValue("address"), "address")
	if err != nil {
		var ie *fielderr.Error
		if errors.As(err, &ie) {
			return netip.Addr{}, &api.Error{Status: http.StatusNotFound, Message: "no such outbound IP: " + ie.Msg, Field: "address"}
		}
		return netip.Addr{}, err
	}
	return a, nil
}

func (s *server) listPools(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	if err := s.poolsReady(); err != nil {
		return err
	}
	if _, err := query(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.pools.PoolViews())
	return nil
}

func (s *server) listIPs(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	if err := s.poolsReady(); err != nil {
		return err
	}
	q, err := query(r, "pool")
	if err != nil {
		return err
	}
	list, err := s.pools.IPViews(q.Get("pool"))
	if errors.Is(err, ippool.ErrNotFound) {
		return &api.Error{Status: http.StatusUnprocessableEntity, Message: "pool: " + q.Get("pool") + " is not a configured pool", Field: "pool"}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *server) getIP(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	if err := s.poolsReady(); err != nil {
		return err
	}
	addr, err := pathAddr(r)
	if err != nil {
		return err
	}
	ip, err := s.pools.IPView(addr)
	if err != nil {
		return poolError(err)
	}
	writeJSON(w, http.StatusOK, ip)
	return nil
}

func (s *server) addIP(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	if err := s.poolsReady(); err != nil {
		return err
	}
	var in api.IPRequest
	if err := decode(w, r, &in); err != nil {
		return err
	}
	ip, err := s.pools.Add(r.Context(), r.PathValue("pool"), in)
	if err != nil {
		return poolError(err)
	}
	w.Header().Set("Location", "/api/v1/ips/"+ip.Address)
	writeJSON(w, http.StatusCreated, ip)
	return nil
}

func (s *server) removeIP(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	if err := s.poolsReady(); err != nil {
		return err
	}
	addr, err := pathAddr(r)
	if err != nil {
		return err
	}
	if err := s.pools.Remove(r.Context(), r.PathValue("pool"), addr); err != nil {
		return poolError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ipAction serves POST /ips/{address}/drain|pause|resume|check.
func (s *server) ipAction(action string) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
		if err := s.poolsReady(); err != nil {
			return err
		}
		addr, err := pathAddr(r)
		if err != nil {
			return err
		}
		var in api.IPActionRequest
		if r.ContentLength != 0 && r.Body != http.NoBody {
			if err := decode(w, r, &in); err != nil {
				return err
			}
		}
		if in.Reason != "" && action != "drain" && action != "pause" {
			return badRequest("a reason is recorded for drain and pause only", "reason")
		}
		var ip api.IP
		switch action {
		case "drain":
			ip, err = s.pools.Drain(r.Context(), addr, in.Reason)
		case "pause":
			ip, err = s.pools.Pause(r.Context(), addr, in.Reason)
		case "resume":
			ip, err = s.pools.Resume(r.Context(), addr)
		case "check":
			if s.ipCheck == nil {
				return &api.Error{Status: http.StatusNotFound, Message: "DNSBL checks are not run by this server"}
			}
			if _, err = s.pools.IPView(addr); err == nil {
				if err = s.ipCheck.CheckNow(r.Context(), addr); err == nil {
					ip, err = s.pools.IPView(addr)
				}
			}
		}
		if err != nil {
			return poolError(err)
		}
		writeJSON(w, http.StatusOK, ip)
		return nil
	}
}
