package portal

import (
	"net/http"
	"net/netip"

	"easymail/internal/ippool"
	"easymail/internal/shaping"
)

// Shaping is the provider shaping the portal shows and operators resume (*shaping.Shaper).
type Shaping interface {
	State() []shaping.ProviderState
	Resume(provider string, ip netip.Addr) bool
}

func init() {
	area([]string{"providers"}, map[string]string{
		"Provider shaping": "Régulation par fournisseur",
		"Destinations whose MX hosts match a provider's patterns share its limits; a slow-down reply pauses the outbound IP for that provider only.": "Les destinations dont les MX correspondent aux motifs d'un fournisseur partagent ses limites ; une réponse de ralentissement met en pause l'IP sortante pour ce fournisseur seulement.",
		"MX patterns":                       "Motifs MX",
		"Connections (all IPs / per IP)":    "Connexions (toutes IP / par IP)",
		"Messages per connection":           "Messages par connexion",
		"Per minute / per hour from one IP": "Par minute / par heure depuis une IP",
		"unlimited":                         "illimité",
		"No outbound IP has sent to this provider since the start.": "Aucune IP sortante n'a envoyé à ce fournisseur depuis le démarrage.",
		"Outbound IP":                "IP sortante",
		"paused until %s":            "en pause jusqu'au %s",
		"sending":                    "envoie",
		"Strikes":                    "Avertissements",
		"Share of the limits":        "Part des limites",
		"Sent this minute / hour":    "Envoyés cette minute / heure",
		"Last slow-down reply":       "Dernière réponse de ralentissement",
		"Resume at the full rate":    "Reprendre à plein régime",
		"No provider is configured.": "Aucun fournisseur n'est configuré.",
		"Provider shaping is not available on this server.": "La régulation par fournisseur n'est pas disponible sur ce serveur.",
		"The pause for this provider has ended.":            "La pause pour ce fournisseur est terminée.",
		"No such provider.":                                 "Aucun fournisseur de ce nom.",
	}, map[string]string{"provresume": "The pause for this provider has ended."})
}

var errNoShaping = &pageError{Status: http.StatusNotFound, Message: "Provider shaping is not available on this server."}

// providerView is a provider's limits and pairs for the page.
type providerView struct {
	shaping.Provider
	IPs []pairView
}

// pairView is the state of one outbound IP for one provider.
type pairView struct{ shaping.PairState }

// Percent is the pair's share of the limits in per cent.
func (p pairView) Percent() int { return int(p.Share*100 + 0.5) }

type providersView struct {
	List      []providerView
	CanChange bool
}

// providersPage shows every provider's limits and the state of each outbound IP × provider pair.
func (s *server) providersPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if s.o.Shaping == nil {
		return errNoShaping
	}
	d := providersView{CanChange: rc.operator()}
	for _, p := range s.o.Shaping.State() {
		pv := providerView{Provider: p.Provider}
		for _, st := range p.IPs {
			pv.IPs = append(pv.IPs, pairView{st})
		}
		d.List = append(d.List, pv)
	}
	return s.render(w, r, rc, http.StatusOK, "providers", "providers", "Provider shaping", d)
}

// resumeProvider ends the pause of an outbound IP for a provider at once, at the full rate (operators).
func (s *server) resumeProvider(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if s.o.Shaping == nil {
		return errNoShaping
	}
	name := r.PathValue("name")
	addr, err := ippool.ParseAddr(r.PathValue("addr"), "address")
	if err != nil {
		return poolErr(err)
	}
	var before *shaping.PairState
	known := false
	for _, p := range s.o.Shaping.State() {
		if p.Name != name {
			continue
		}
		known = true
		for i := range p.IPs {
			if p.IPs[i].IP == addr.String() {
				before = &p.IPs[i]
			}
		}
	}
	if !known || !s.o.Shaping.Resume(name, addr) {
		return errorf(http.StatusNotFound, "No such provider.")
	}
	detail := map[string]any{"provider": name, "ip": addr.String(), "action": "resume"}
	if before != nil {
		detail["paused_before"], detail["strikes_before"], detail["share_before"] = before.Paused, before.Strikes, before.Share
	}
	rc.auditDetail = detail
	return redirect(w, r, "/providers?done=provresume")
}
