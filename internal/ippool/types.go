package ippool

import "time"

// State is an outbound IP's state. Active and warming IPs carry mail; the others are out of rotation.
type State string

// The states.
const (
	// StateActive: in rotation.
	StateActive State = "active"
	// StateWarming: in rotation under its warm-up schedule's daily cap.
	StateWarming State = "warming"
	// StatePaused: taken out of rotation by an operator until resumed.
	StatePaused State = "paused"
	// StateListed: listed by a DNSBL, or delisted less than rbl.hold ago.
	StateListed State = "listed"
	// StateDraining: takes no new message (an operator is retiring it) until resumed or removed.
	StateDraining State = "draining"
)

// FCrDNS statuses of an outbound IP.
const (
	FCrDNSOK        = "ok"
	FCrDNSMismatch  = "mismatch"
	FCrDNSError     = "error"
	FCrDNSUnchecked = "unchecked"
)

// Pool is a named group of outbound IPs.
type Pool struct {
	Name string `json:"name"`
	// IPs counts the pool's IPs; Usable those in rotation now (active, or warming under their cap).
	IPs    int `json:"ips"`
	Usable int `json:"usable"`
	// States counts the pool's IPs by state.
	States map[State]int `json:"states"`
	// Addresses are the pool's IPs.
	Addresses []string `json:"addresses"`
}

// IP is one outbound IP and what supervision knows of it.
type IP struct {
	Address string `json:"address"`
	Pool    string `json:"pool"`
	HELO    string `json:"helo"`
	Weight  int    `json:"weight"`
	// Origin is "config" for an IP of the configuration file, "api" for one added through the API.
	Origin  string    `json:"origin"`
	AddedAt time.Time `json:"added_at"`
	// State is one of active, warming, paused, listed, draining; Reason says why.
	State      State     `json:"state"`
	Reason     string    `json:"reason"`
	StateSince time.Time `json:"state_since"`
	// Listings are the DNSBL zones that list the IP now.
	Listings []Listing `json:"listings"`
	// CheckErrors are the zones whose last check failed (no answer, or a refusal code): the IP's listing
	// there is unchanged.
	CheckErrors []CheckError `json:"check_errors"`
	// LastCheck is the time of the last DNSBL check, null before the first.
	LastCheck *time.Time `json:"last_check"`
	// HoldUntil is set after a delisting: the IP returns to rotation then.
	HoldUntil *time.Time `json:"hold_until,omitempty"`
	// FCrDNS is the forward-confirmed reverse DNS check of the IP against its HELO name.
	FCrDNS FCrDNS `json:"fcrdns"`
	// Warmup is set while the IP has a warm-up schedule to follow.
	Warmup *Warmup `json:"warmup,omitempty"`
	// PausedDestinations are the destination domains the IP is paused for, after their receivers reported
	// it blocked.
	PausedDestinations []DestinationPause `json:"paused_destinations"`
	// Last24h counts the IP's delivery outcomes over the last 24 hours.
	Last24h Counters `json:"last_24h"`
}

// Listing is one DNSBL listing of an IP.
type Listing struct {
	Zone string `json:"zone"`
	// Code is the zone's answer, e.g. 127.0.0.2; Reason its TXT record, when it has one.
	Code   string    `json:"code"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// CheckError is a DNSBL zone whose last check of an IP failed.
type CheckError struct {
	Zone  string `json:"zone"`
	Error string `json:"error"`
}

// FCrDNS is the result of the forward-confirmed reverse DNS check: the IP's PTR names must include its HELO
// name, and that name's addresses must include the IP.
type FCrDNS struct {
	// Status is ok, mismatch, error (the lookup failed) or unchecked.
	Status string `json:"status"`
	// Detail explains a mismatch or an error.
	Detail string `json:"detail,omitempty"`
	// PTR are the IP's reverse names.
	PTR []string `json:"ptr,omitempty"`
}

// Warmup is where an IP stands in its warm-up schedule.
type Warmup struct {
	// Day is the day since the IP was added (0 for the first), Days the schedule's length.
	Day  int `json:"day"`
	Days int `json:"days"`
	// Cap is today's cap, SentToday the messages counted against it.
	Cap       int   `json:"cap"`
	SentToday int   `json:"sent_today"`
	Schedule  []int `json:"schedule"`
}

// DestinationPause is a destination domain an IP does not send to until Until.
type DestinationPause struct {
	Domain string    `json:"domain"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// Counters count delivery outcomes: recipients sent, deferred and bounced, and the replies that said the
// IP is blocked.
type Counters struct {
	Sent     int64 `json:"sent"`
	Deferred int64 `json:"deferred"`
	Bounced  int64 `json:"bounced"`
	Blocked  int64 `json:"blocked"`
}

// IPRequest is the body of POST /pools/{pool}/ips. Weight defaults to 1. Warmup is the IP's warm-up
// schedule (messages per day, per day since added): absent or null gives the default schedule
// (ippool.warmup), [] none (the IP is active at once).
type IPRequest struct {
	Address string `json:"address"`
	HELO    string `json:"helo"`
	Weight  int    `json:"weight,omitempty"`
	Warmup  []int  `json:"warmup"`
}
