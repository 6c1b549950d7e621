package portal

import (
	"net/http"
	"net/url"

	"easymail/internal/incident"
)

// errNoIncidents answers the incident pages of a portal built without the service.
var errNoIncidents = &pageError{Status: http.StatusNotFound, Message: "Incidents are not enabled on this server."}

type incidentsView struct {
	Status    string
	List      []incident.Incident
	Customers []string
	// CanOpen is whether the user may report an incident (operators and customers).
	CanOpen bool
}

// viewer is the customer the user sees incidents as ("" for staff).
func (rc *reqCtx) viewer() string {
	if rc.staff() {
		return ""
	}
	return rc.user().CustomerID
}

func (s *server) incidents(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if s.o.Incidents == nil {
		return errNoIncidents
	}
	q := r.URL.Query()
	cust, ok := rc.scope(q.Get("customer"))
	if !ok {
		return errNotFound
	}
	status := q.Get("status")
	if status == "" {
		status = "open"
	}
	list, err := s.o.Incidents.List(r.Context(), incident.Filter{Status: status, CustomerID: cust, Viewer: rc.viewer()})
	if err != nil {
		return err
	}
	d := incidentsView{Status: status, List: list, CanOpen: rc.operator() || !rc.staff()}
	if rc.operator() {
		var err error
		if d.Customers, err = s.customerIDs(r.Context()); err != nil {
			return err
		}
	}
	return s.render(w, r, rc, http.StatusOK, "incidents", "incidents", "Incidents", d)
}

func (s *server) openIncident(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if s.o.Incidents == nil {
		return errNoIncidents
	}
	in := incident.Create{Priority: r.PostFormValue("priority"), Title: r.PostFormValue("title"),
		Description: r.PostFormValue("description"), Channel: incident.ChannelPortal, Reporter: rc.user().Email}
	switch {
	case rc.operator():
		// The operator records a report made by phone or e-mail, or one of its own.
		in.CustomerID = r.PostFormValue("customer")
		if ch := r.PostFormValue("channel"); ch != "" {
			in.Channel = ch
		}
	case rc.staff():
		return errorf(http.StatusForbidden, "Your role may not change anything.")
	default:
		in.CustomerID = rc.user().CustomerID
	}
	inc, err := s.o.Incidents.Open(r.Context(), in, "user:"+rc.user().Email)
	if err != nil {
		return err
	}
	rc.auditCustomer, rc.auditDetail = inc.CustomerID, map[string]string{"incident": inc.ID, "priority": inc.Priority, "title": inc.Title}
	return redirect(w, r, "/incidents/"+url.PathEscape(inc.ID)+"?done=opened")
}

type incidentView struct {
	I *incident.Incident
	// CanComment: operators and the incident's customer; CanConfirm: its customer once resolved.
	CanComment, CanConfirm bool
}

func (s *server) incident(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if s.o.Incidents == nil {
		return errNoIncidents
	}
	inc, err := s.o.Incidents.Get(r.Context(), r.PathValue("id"), rc.viewer())
	if err != nil {
		return err
	}
	d := incidentView{I: inc, CanComment: rc.operator() || !rc.staff(),
		CanConfirm: !rc.staff() && inc.Status == incident.StatusResolved}
	return s.render(w, r, rc, http.StatusOK, "incident", "incidents", "Incident", d)
}

func (s *server) incidentAction(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if s.o.Incidents == nil {
		return errNoIncidents
	}
	id, action := r.PathValue("id"), r.PathValue("action")
	// What the user may not see does not exist for it.
	inc, err := s.o.Incidents.Get(r.Context(), id, rc.viewer())
	if err != nil {
		return err
	}
	customerUser := !rc.staff()
	actor := "user:" + rc.user().Email
	note := r.PostFormValue("note")
	rc.auditCustomer, rc.auditDetail = inc.CustomerID, map[string]string{"incident": id, "action": action}
	var status string
	switch action {
	case "comment":
		if rc.staff() && !rc.operator() {
			return errorf(http.StatusForbidden, "Your role may not change anything.")
		}
		internal := rc.operator() && r.PostFormValue("internal") == "on"
		if _, err := s.o.Incidents.Comment(r.Context(), id, actor, r.PostFormValue("text"), internal, customerUser); err != nil {
			return err
		}
		return redirect(w, r, "/incidents/"+url.PathEscape(id)+"?done=comment")
	case "ack":
		status = incident.StatusAcknowledged
	case "resolve":
		status = incident.StatusResolved
	case "close":
		status = incident.StatusClosed
	case "confirm":
		status = incident.StatusConfirmed
	default:
		return errNotFound
	}
	if status == incident.StatusConfirmed {
		if !customerUser && !rc.operator() {
			return errorf(http.StatusForbidden, "Your role may not change anything.")
		}
	} else if !rc.operator() {
		return errorf(http.StatusForbidden, "Your role may not change anything.")
	}
	if _, err := s.o.Incidents.Update(r.Context(), id, incident.Change{Status: status, Note: note, Actor: actor,
		Customer: customerUser}); err != nil {
		return err
	}
	return redirect(w, r, "/incidents/"+url.PathEscape(id)+"?done="+action)
}

type slaView struct {
	Customer, Month string
	Customers       []string
	R               *incident.Report
}

// slaQuery reads the report's customer and month.
func (s *server) slaQuery(r *http.Request, rc *reqCtx) (string, string, error) {
	if s.o.Incidents == nil {
		return "", "", errNoIncidents
	}
	q := r.URL.Query()
	cust, ok := rc.scope(q.Get("customer"))
	if !ok {
		return "", "", errNotFound
	}
	month := q.Get("month")
	if month == "" {
		month = s.o.Now().UTC().Format("2006-01")
	}
	return cust, month, nil
}

func (s *server) slaReport(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cust, month, err := s.slaQuery(r, rc)
	if err != nil {
		return err
	}
	rep, err := s.o.Incidents.Report(r.Context(), cust, month)
	if err != nil {
		return err
	}
	d := slaView{Customer: cust, Month: month, R: rep}
	if rc.staff() {
		var err error
		if d.Customers, err = s.customerIDs(r.Context()); err != nil {
			return err
		}
	}
	return s.render(w, r, rc, http.StatusOK, "sla", "sla", "SLA report", d)
}

func (s *server) slaCSV(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	cust, month, err := s.slaQuery(r, rc)
	if err != nil {
		return err
	}
	rep, err := s.o.Incidents.Report(r.Context(), cust, month)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="sla-`+rep.Month+`.csv"`)
	return incident.WriteCSV(w, rep)
}
