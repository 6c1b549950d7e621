package node

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/config"
	"easymail/internal/events"
	"easymail/internal/feedback"
	"easymail/internal/store"
)

// complaintIntake is the complaint side of a node: the intake that matches feedback reports to relayed
// messages (and counts the rates), and the feedback listener when complaints.address is set.
type complaintIntake struct {
	intake    *feedback.Intake
	server    *feedback.Server
	listeners []net.Listener
}

func newComplaints(cfg config.Config, db *store.DB, bus *events.Bus, reg prometheus.Registerer, log *slog.Logger,
	hooked []net.Listener) (*complaintIntake, error) {
	c := &complaintIntake{intake: feedback.NewIntake(feedback.IntakeOptions{DB: db, Bus: bus, Hostname: cfg.Hostname,
		Logger: log, Registerer: reg})}
	if cfg.Complaints.Address == "" {
		return c, nil
	}
	c.server = feedback.NewServer(feedback.ServerOptions{Hostname: cfg.Hostname, Address: cfg.Complaints.Address,
		MaxSize: cfg.Complaints.MaxSize, Intake: c.intake, Logger: log})
	if len(hooked) > 0 {
		c.listeners = hooked
		return c, nil
	}
	for _, addr := range cfg.Complaints.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("complaints.listen %s: %w", addr, err)
		}
		c.listeners = append(c.listeners, l)
	}
	return c, nil
}

// listener is the feedback listener (nil when complaints.address is not set): it serves until ctx ends, then
// lets the sessions in progress finish.
func (c *complaintIntake) listener(log *slog.Logger) Component {
	if c.server == nil || len(c.listeners) == 0 {
		return nil
	}
	return &listenerServer{listeners: c.listeners, serve: c.server.Serve, shutdown: c.server.Shutdown,
		grace: smtpGrace, log: log, name: "feedback listener"}
}

func (c *complaintIntake) close() {
	for _, l := range c.listeners {
		l.Close()
	}
}
