package apiserver

import (
	"net/http"
	"net/netip"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/shaping"
)

// Shaping is the provider shaping the API shows. *shaping.Shaper implements it.
type Shaping interface {
	State() []shaping.ProviderState
	Resume(provider string, ip netip.Addr) bool
}

// listProviders serves GET /providers: every provider's limits and, per outbound IP that sent to it, its
// pause and rate state.
func (s *server) listProviders(w http.ResponseWriter, r *http.Request, _ authz.Principal) error {
	if _, err := query(r); err != nil {
		return err
	}
	if s.shaping == nil {
		return errNotFound
	}
	writeJSON(w, http.StatusOK, s.shaping.State())
	return nil
}

// resumeProvider serves POST /providers/{name}/ips/{address}/resume: the pause ends at once, with the full
// rate.
func (s *server) resumeProvider(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if s.shaping == nil {
		return errNotFound
	}
	ip, err := netip.ParseAddr(r.PathValue("address"))
	if err != nil {
		return &api.Error{Status: http.StatusUnprocessableEntity, Message: "address must be an IP address", Field: "address"}
	}
	if !s.shaping.Resume(r.PathValue("name"), ip.Unmap()) {
		return &api.Error{Status: http.StatusNotFound, Message: "no such provider", Field: "name"}
	}
	s.log.Info("shaping: pause ended by an operator", "provider", r.PathValue("name"), "ip", ip.String(), "token", p.TokenID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
