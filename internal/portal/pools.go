package portal

import (
	"context"
	"errors"
	"net/http"
	"net/netip"

	"easymail/internal/fielderr"
	"easymail/internal/ippool"
)

// PoolOperator changes the rotation of outbound IPs (*ippool.Pools). When the portal's Pools implements
// it, operators may pause, drain and resume IPs on the pools page.
type PoolOperator interface {
	Pause(ctx context.Context, addr netip.Addr, reason string) (ippool.IP, error)
	Drain(ctx context.Context, addr netip.Addr, reason string) (ippool.IP, error)
	Resume(ctx context.Context, addr netip.Addr) (ippool.IP, error)
}

func init() {
	area([]string{"pools"}, map[string]string{
		"Pools and IPs":                   "Pools et IP",
		"No pool.":                        "Aucun pool.",
		"Pool %s: %d IPs, %d in rotation": "Pool %s : %d IP, %d en rotation",
		"HELO":                            "HELO",
		"since %s":                        "depuis %s",
		"DNSBL listings":                  "Inscriptions sur liste noire (DNSBL)",
		"Warm-up":                         "Montée en charge",
		"day %d of %d: %d of %d today":    "jour %d sur %d : %d sur %d aujourd'hui",
		"Last 24 hours: sent, deferred, bounced, blocked": "Dernières 24 heures : envoyés, différés, rejetés, bloqués",
		"Last check":             "Dernière vérification",
		"never":                  "jamais",
		"check failed":           "vérification en échec",
		"back in rotation at %s": "de retour en rotation à %s",
		"paused for %s until %s": "en pause pour %s jusqu'au %s",
		"Reason (optional)":      "Raison (facultative)",
		"Pause":                  "Mettre en pause",
		"Drain":                  "Vider",
		"Resume":                 "Reprendre",
		"No IP in this pool.":    "Aucune IP dans ce pool.",
		"active":                 "active",
		"warming":                "en montée en charge",
		"paused":                 "en pause",
		"listed":                 "sur liste noire",
		"draining":               "en vidage",
		"Reverse DNS (FCrDNS)":   "DNS inverse (FCrDNS)",
		"The IP pools are not available on this server.": "Les pools d'IP ne sont pas disponibles sur ce serveur.",
		"The IP is paused.":           "L'IP est en pause.",
		"The IP is draining.":         "L'IP est en cours de vidage.",
		"The IP is back in rotation.": "L'IP est de retour en rotation.",
	}, map[string]string{
		"ippause": "The IP is paused.", "ipdrain": "The IP is draining.", "ipresume": "The IP is back in rotation.",
	})
}

// errNoPools answers the pool pages of a portal built without the pools.
var errNoPools = &pageError{Status: http.StatusNotFound, Message: "The IP pools are not available on this server."}

type poolView struct {
	ippool.Pool
	List []ipView
}

// ipView is an IP as the pools page shows it.
type ipView struct{ ippool.IP }

// WarmupDay is the IP's warm-up day counted from 1.
func (v ipView) WarmupDay() int {
	if v.Warmup == nil {
		return 0
	}
	return v.Warmup.Day + 1
}

type poolsView struct {
	Pools []poolView
	// CanChange: an operator, with pools that can be changed.
	CanChange bool
}

// poolsPage shows every pool and its IPs: state and why, DNSBL listings since when, warm-up progress.
func (s *server) poolsPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if s.o.Pools == nil {
		return errNoPools
	}
	_, canChange := s.o.Pools.(PoolOperator)
	d := poolsView{CanChange: canChange && rc.operator()}
	for _, p := range s.o.Pools.PoolViews() {
		ips, err := s.o.Pools.IPViews(p.Name)
		if err != nil {
			return poolErr(err)
		}
		pv := poolView{Pool: p}
		for _, ip := range ips {
			pv.List = append(pv.List, ipView{ip})
		}
		d.Pools = append(d.Pools, pv)
	}
	return s.render(w, r, rc, http.StatusOK, "pools", "pools", "Pools and IPs", d)
}

// poolAction pauses, drains or resumes an IP (operators; page() refuses the others).
func (s *server) poolAction(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	op, ok := s.o.Pools.(PoolOperator)
	if s.o.Pools == nil || !ok {
		return errNoPools
	}
	addr, err := ippool.ParseAddr(r.PathValue("addr"), "address")
	if err != nil {
		return poolErr(err)
	}
	action, reason := r.PathValue("action"), r.PostFormValue("reason")
	var before ippool.IP
	if before, err = s.ipView(addr); err != nil {
		return err
	}
	var after ippool.IP
	switch action {
	case "pause":
		after, err = op.Pause(r.Context(), addr, reason)
	case "drain":
		after, err = op.Drain(r.Context(), addr, reason)
	case "resume":
		reason = ""
		after, err = op.Resume(r.Context(), addr)
	default:
		return errNotFound
	}
	if err != nil {
		return poolErr(err)
	}
	rc.auditDetail = map[string]string{"ip": addr.String(), "pool": after.Pool, "action": action, "reason": reason,
		"state_before": string(before.State), "state": string(after.State)}
	return redirect(w, r, "/pools?done=ip"+action)
}

// ipView finds one IP among the pools' views.
func (s *server) ipView(addr netip.Addr) (ippool.IP, error) {
	ips, err := s.o.Pools.IPViews("")
	if err != nil {
		return ippool.IP{}, poolErr(err)
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip.Address); err == nil && a == addr {
			return ip, nil
		}
	}
	return ippool.IP{}, errNotFound
}

// poolErr maps the pools' errors to the portal's.
func poolErr(err error) error {
	var ie *fielderr.Error
	switch {
	case errors.Is(err, ippool.ErrNotFound):
		return errNotFound
	case errors.As(err, &ie):
		return errorf(http.StatusUnprocessableEntity, "%s", ie.Error())
	}
	return err
}
