package node

import (
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/net/netutil"

	"easymail/internal/config"
)

// httpServer is the HTTP server of the API (and of the metrics listener) with the timeouts of the api
// section, so that no client can hold a connection or a handler longer than they allow.
func httpServer(c config.API, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// limitConnections caps the connections accepted on l at once (api.max_connections; 0 is no cap): over
// it, Accept waits until one closes, and new clients wait in the kernel's listen backlog.
func limitConnections(l net.Listener, n int) net.Listener {
	if n <= 0 {
		return l
	}
	return netutil.LimitListener(l, n)
}
