package smtpin

import (
	"net/netip"
	"sync"
	"time"

	"easymail/internal/smtperr"
)

// rejectLinesPerSecond bounds the "reject: CONNECT" lines: a flood of refused clients must not become a
// flood of log lines (the metric easymail_smtp_connections_total counts every one). The lines left out
// are counted in the next line written.
const rejectLinesPerSecond = 20

// rejectLog rate-limits the log lines of refused connections.
type rejectLog struct {
	mu         sync.Mutex
	second     time.Time
	written    int
	suppressed int
}

// allow reports whether a line may be written now and, when it may, how many were left out before it.
func (r *rejectLog) allow(now time.Time) (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec := now.Truncate(time.Second); !sec.Equal(r.second) {
		r.second, r.written = sec, 0
	}
	if r.written >= rejectLinesPerSecond {
		r.suppressed++
		return false, 0
	}
	r.written++
	suppressed, r.suppressed = r.suppressed, 0
	return true, suppressed
}

// rejectConnect logs a connection refused before or instead of the greeting, in the line operators grep
// for: "reject: CONNECT" with the client, the reason and the reply it got.
func (s *Server) rejectConnect(ip netip.Addr, customer, reason string, e *smtperr.Error) {
	ok, suppressed := s.rejects.allow(time.Now())
	if !ok {
		return
	}
	attrs := []any{"stage", "connect", "ip", ip.String(), "reason", reason, "reply", e.Reply()}
	if customer != "" {
		attrs = append(attrs, "customer", customer)
	}
	if suppressed > 0 {
		attrs = append(attrs, "lines_left_out_before", suppressed)
	}
	s.log.Info("reject: CONNECT", attrs...)
}
