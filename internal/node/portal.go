package node

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"easymail/internal/config"
	"easymail/internal/customer"
	"easymail/internal/portal"
)

// webPortal is the portal of a node: on the API's listener at / (next to /api/v1), or on its own listener
// when portal.listen is set.
type webPortal struct {
	handler  http.Handler
	listener net.Listener
	srv      *http.Server
}

// newPortal builds the portal. Its services (o) are the node's, shared with the API, and so is the
// onboarding links' signer.
func newPortal(cfg *config.Config, o portal.Options, hooks Hooks, log *slog.Logger) (*webPortal, error) {
	o.Config, o.Logger = cfg, log
	if o.Onboarding == nil {
		// The API's signing key (apiserver.New has created it): the links made in the portal are the API's.
		onb, err := customer.LoadOnboarding(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		o.Onboarding = onb
	}
	h, err := portal.New(o)
	if err != nil {
		return nil, err
	}
	p := &webPortal{handler: h}
	if cfg.Portal.Listen == "" {
		return p, nil
	}
	p.listener = hooks.PortalListener
	if p.listener == nil {
		if p.listener, err = net.Listen("tcp", cfg.Portal.Listen); err != nil {
			return nil, fmt.Errorf("portal.listen %s: %w", cfg.Portal.Listen, err)
		}
	}
	p.listener = limitConnections(p.listener, cfg.API.MaxConnections)
	p.srv = httpServer(cfg.API, h, log)
	return p, nil
}

// mount returns the API listener's handler: the API, and the portal at / unless it has its own listener.
func (p *webPortal) mount(apiHandler http.Handler) http.Handler {
	if p.srv != nil {
		return apiHandler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/onboard/") || strings.HasPrefix(path, "/u/") ||
			path == "/healthz" || path == "/metrics" {
			apiHandler.ServeHTTP(w, r)
			return
		}
		p.handler.ServeHTTP(w, r)
	})
}

// server is the portal's own listener (nil when the portal is on the API's).
func (p *webPortal) server(log *slog.Logger) Component {
	return httpComponent("portal", p.srv, p.listener, log)
}

// addr is the portal's own address, "" when it is on the API's listener.
func (p *webPortal) addr() string {
	if p.listener == nil {
		return ""
	}
	return p.listener.Addr().String()
}

// close closes the portal's listener when the node fails to start.
func (p *webPortal) close() {
	if p.listener != nil {
		p.listener.Close()
	}
}
