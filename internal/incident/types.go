package incident

import "time"

// Incident priorities: P1 total outage, P2 serious degradation, P3 moderate impact, P4 no impact.
const (
	P1 = "P1"
	P2 = "P2"
	P3 = "P3"
	P4 = "P4"
)

// Incident channels: how an incident came in.
const (
	ChannelPhone   = "phone"
	ChannelEmail   = "email"
	ChannelPortal  = "portal"
	ChannelAPI     = "api"
	ChannelMonitor = "monitor"
)

// Incident statuses: new → acknowledged → in_progress → resolved → confirmed (by the customer) or closed.
const (
	StatusNew          = "new"
	StatusAcknowledged = "acknowledged"
	StatusInProgress   = "in_progress"
	StatusResolved     = "resolved"
	StatusConfirmed    = "confirmed"
	StatusClosed       = "closed"
)

// Event visibilities: shown to the customer, or to operators and experts only.
const (
	VisibilityCustomer = "customer"
	VisibilityInternal = "internal"
)

// Incident is an incident as the API shows it.
type Incident struct {
	ID string `json:"id"`
	// CustomerID is the customer concerned, "" for every customer (a pool or a scanner).
	CustomerID  string `json:"customer_id"`
	Priority    string `json:"priority"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Channel     string `json:"channel"`
	Status      string `json:"status"`
	// Cause is the monitor's stable key ("ip-listed:192.0.2.1"); "" for a reported incident.
	Cause string `json:"cause"`
	// SLAType is the SLA type in force when the incident was opened.
	SLAType    string     `json:"sla_type"`
	Reporter   string     `json:"reporter,omitempty"`
	OpenedAt   time.Time  `json:"opened_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// ConfirmedAt is when the customer confirmed the resolution, ClosedAt when an operator closed it.
	ConfirmedAt *time.Time `json:"confirmed_at,omitempty"`
	ClosedAt    *time.Time `json:"closed_at,omitempty"`
	SLA         SLA        `json:"sla"`
	Links       []Link     `json:"links"`
	Events      []Event    `json:"events,omitempty"`
}

// SLA is an incident's SLA clock; the durations are service-window time, in seconds.
type SLA struct {
	// ResponseTarget is the channel's response target; ResponseDueAt when it falls due.
	ResponseTarget int64      `json:"response_target_seconds"`
	ResponseDueAt  time.Time  `json:"response_due_at"`
	RespondedAt    *time.Time `json:"responded_at"`
	// ResponseTime is the time to acknowledge (null until acknowledged).
	ResponseTime *int64 `json:"response_seconds"`
	// ResolveDueAt is the resolution target's due time (null: none); ResolveTime the time to resolve.
	ResolveDueAt *time.Time `json:"resolve_due_at,omitempty"`
	ResolveTime  *int64     `json:"resolve_seconds"`
	// Breached is set when the response came after its due time, or has not come and the due time passed;
	// ResolveBreached likewise for the resolution target.
	Breached        bool `json:"breached"`
	ResolveBreached bool `json:"resolve_breached"`
}

// Link is something an incident concerns: a message (queue id), ip, pool, destination, customer or
// scanner.
type Link struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Event is one entry of an incident's timeline.
type Event struct {
	At         time.Time `json:"at"`
	Kind       string    `json:"kind"`
	Visibility string    `json:"visibility"`
	Actor      string    `json:"actor,omitempty"`
	From       string    `json:"from,omitempty"`
	To         string    `json:"to,omitempty"`
	Body       string    `json:"body,omitempty"`
}

// Create is the body of POST /incidents. A customer's token opens incidents of its own customer
// only (customer_id is then its own); channel defaults to api (an operator records phone and e-mail
// reports with those channels); priority defaults to P3.
type Create struct {
	CustomerID  string `json:"customer_id,omitempty"`
	Priority    string `json:"priority,omitempty"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Channel     string `json:"channel,omitempty"`
	Reporter    string `json:"reporter,omitempty"`
	Links       []Link `json:"links,omitempty"`
}

// Update is the body of PATCH /incidents/{id} (operators): a new priority, status or title, with an
// optional note added to the timeline.
type Update struct {
	Priority *string `json:"priority,omitempty"`
	Status   *string `json:"status,omitempty"`
	Title    *string `json:"title,omitempty"`
	Note     string  `json:"note,omitempty"`
}

// Comment is the body of POST /incidents/{id}/comments. Internal comments are for operators and
// experts only; a customer's comments are always visible to it.
type Comment struct {
	Text     string `json:"text"`
	Internal bool   `json:"internal,omitempty"`
}

// Note is the optional body of the /ack, /resolve, /confirm and /close actions.
type Note struct {
	Note string `json:"note,omitempty"`
}

// Report is the SLA report of a customer (or of every incident) for a month.
type Report struct {
	CustomerID string `json:"customer_id"`
	// Month is YYYY-MM, in the SLA type's time zone.
	Month   string `json:"month"`
	SLAType string `json:"sla_type"`
	// From and Until bound the month.
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	// Total is the number of incidents opened in the month; ByPriority the same by priority (every
	// priority present, 0 included).
	Total      int                    `json:"total"`
	ByPriority map[string]ReportCount `json:"by_priority"`
	// Responded is how many were acknowledged, Breaches how many missed their response target,
	// ResolveBreaches their resolution target.
	Responded       int `json:"responded"`
	Breaches        int `json:"breaches"`
	ResolveBreaches int `json:"resolve_breaches"`
	// MeanResponse and MaxResponse are over the acknowledged incidents, in service-window seconds.
	MeanResponse int64            `json:"mean_response_seconds"`
	MaxResponse  int64            `json:"max_response_seconds"`
	Incidents    []ReportLine     `json:"incidents"`
	Targets      map[string]int64 `json:"response_targets_seconds"`
}

// ReportCount is the report's figures of one priority.
type ReportCount struct {
	Total    int `json:"total"`
	Resolved int `json:"resolved"`
	Breaches int `json:"breaches"`
}

// ReportLine is one incident of the report.
type ReportLine struct {
	ID             string     `json:"id"`
	Priority       string     `json:"priority"`
	Channel        string     `json:"channel"`
	Title          string     `json:"title"`
	Status         string     `json:"status"`
	OpenedAt       time.Time  `json:"opened_at"`
	ResponseDueAt  time.Time  `json:"response_due_at"`
	RespondedAt    *time.Time `json:"responded_at"`
	ResponseTarget int64      `json:"response_target_seconds"`
	ResponseTime   *int64     `json:"response_seconds"`
	ResolvedAt     *time.Time `json:"resolved_at"`
	ResolveTime    *int64     `json:"resolve_seconds"`
	Breached       bool       `json:"breached"`
}
