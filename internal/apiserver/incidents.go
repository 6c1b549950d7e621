package apiserver

import (
	"net/http"
	"strings"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/incident"
)

// incidentRoutes registers the incident and SLA report endpoints (docs/incidents.md). Operators do
// everything; experts read everything; a customer reads, opens and comments its own incidents and confirms
// their resolution, and sees another customer's as 404.
func (s *server) incidentRoutes(route func(string, access, apiHandler)) {
	route("GET /api/v1/incidents", anyRole, s.listIncidents)
	route("POST /api/v1/incidents", anyRole, s.openIncident)
	route("GET /api/v1/incidents/{id}", anyRole, s.getIncident)
	route("PATCH /api/v1/incidents/{id}", operatorOnly, s.updateIncident)
	route("POST /api/v1/incidents/{id}/comments", anyRole, s.commentIncident)
	route("POST /api/v1/incidents/{id}/ack", operatorOnly, s.incidentStatus(api.IncidentAcknowledged))
	route("POST /api/v1/incidents/{id}/resolve", operatorOnly, s.incidentStatus(api.IncidentResolved))
	route("POST /api/v1/incidents/{id}/close", operatorOnly, s.incidentStatus(api.IncidentClosed))
	route("POST /api/v1/incidents/{id}/confirm", anyRole, s.incidentStatus(api.IncidentConfirmed))
	route("GET /api/v1/sla/report", anyRole, s.slaReport)
}

// errNoIncidents answers the incident endpoints of a server built without the service.
var errNoIncidents = &api.Error{Status: http.StatusNotFound, Message: "incidents are not enabled on this server"}

// viewer is the customer a principal sees incidents as ("" for staff).
func viewer(p authz.Principal) string {
	id, _ := p.Scoped()
	return id
}

// writeIncident answers inc with status, as p may see it: a customer gets the incident again as its viewer
// (without the internal comments).
func (s *server) writeIncident(w http.ResponseWriter, r *http.Request, p authz.Principal, status int, inc *api.Incident) error {
	if v := viewer(p); v != "" {
		var err error
		if inc, err = s.incidents.Get(r.Context(), inc.ID, v); err != nil {
			return err
		}
	}
	writeJSON(w, status, inc)
	return nil
}

// staffWrite refuses a change by an expert (403), and by a customer when customers may not make it.
func staffWrite(p authz.Principal, customerMay bool) error {
	if p.Role == authz.RoleOperator || (customerMay && p.Role == authz.RoleCustomer) {
		return nil
	}
	return &api.Error{Status: http.StatusForbidden, Message: "the " + p.Role + " role may not do this"}
}

func (s *server) listIncidents(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if s.incidents == nil {
		return errNoIncidents
	}
	q, err := query(r, "status", "customer")
	if err != nil {
		return err
	}
	cust, ok := scope(p, q.Get("customer"))
	if !ok {
		writeJSON(w, http.StatusOK, []api.Incident{})
		return nil
	}
	list, err := s.incidents.List(r.Context(), incident.Filter{Status: q.Get("status"), CustomerID: cust, Viewer: viewer(p)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *server) openIncident(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if s.incidents == nil {
		return errNoIncidents
	}
	if err := staffWrite(p, true); err != nil {
		return err
	}
	var in api.IncidentCreate
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if own, scoped := p.Scoped(); scoped {
		// A customer reports for itself, through the portal or the API, and names no other customer.
		if in.CustomerID != "" && in.CustomerID != own {
			return &api.Error{Status: http.StatusUnprocessableEntity, Field: "customer_id", Message: "a customer opens incidents of its own only"}
		}
		in.CustomerID = own
		switch in.Channel {
		case "", api.ChannelAPI, api.ChannelPortal:
		default:
			return &api.Error{Status: http.StatusUnprocessableEntity, Field: "channel", Message: "a customer's token reports by api or portal"}
		}
		if in.Reporter == "" {
			in.Reporter = p.TokenID
		}
		for _, l := range in.Links {
			if l.Kind == "customer" && l.Value != own {
				return &api.Error{Status: http.StatusUnprocessableEntity, Field: "links", Message: "a customer links its own customer only"}
			}
		}
	}
	inc, err := s.incidents.Open(r.Context(), in, p.TokenID)
	if err != nil {
		return err
	}
	return s.writeIncident(w, r, p, http.StatusCreated, inc)
}

func (s *server) getIncident(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if s.incidents == nil {
		return errNoIncidents
	}
	inc, err := s.incidents.Get(r.Context(), r.PathValue("id"), viewer(p))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inc)
	return nil
}

func (s *server) updateIncident(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if s.incidents == nil {
		return errNoIncidents
	}
	var in api.IncidentUpdate
	if err := decode(w, r, &in); err != nil {
		return err
	}
	c := incident.Change{Note: in.Note, Actor: p.TokenID}
	if in.Status != nil {
		if *in.Status == "" {
			return &api.Error{Status: http.StatusUnprocessableEntity, Field: "status", Message: "must not be empty"}
		}
		c.Status = *in.Status
	}
	if in.Priority != nil {
		if *in.Priority == "" {
			return &api.Error{Status: http.StatusUnprocessableEntity, Field: "priority", Message: "must not be empty"}
		}
		c.Priority = *in.Priority
	}
	if in.Title != nil {
		if strings.TrimSpace(*in.Title) == "" {
			return &api.Error{Status: http.StatusUnprocessableEntity, Field: "title", Message: "must not be empty"}
		}
		c.Title = *in.Title
	}
	inc, err := s.incidents.Update(r.Context(), r.PathValue("id"), c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inc)
	return nil
}

// ownIncident checks that a customer may act on the incident (404 otherwise).
func (s *server) ownIncident(r *http.Request, p authz.Principal) error {
	if v := viewer(p); v != "" {
		_, err := s.incidents.Get(r.Context(), r.PathValue("id"), v)
		return err
	}
	return nil
}

func (s *server) commentIncident(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if s.incidents == nil {
		return errNoIncidents
	}
	if err := s.ownIncident(r, p); err != nil {
		return err
	}
	if err := staffWrite(p, true); err != nil {
		return err
	}
	var in api.IncidentComment
	if err := decode(w, r, &in); err != nil {
		return err
	}
	customer := p.Role == authz.RoleCustomer
	if customer && in.Internal {
		return &api.Error{Status: http.StatusUnprocessableEntity, Field: "internal", Message: "a customer's comments are visible to it"}
	}
	inc, err := s.incidents.Comment(r.Context(), r.PathValue("id"), p.TokenID, in.Text, in.Internal, customer)
	if err != nil {
		return err
	}
	return s.writeIncident(w, r, p, http.StatusCreated, inc)
}

// incidentStatus serves an action setting the incident's status, with an optional {"note"}. Only confirm
// is open to the incident's customer.
func (s *server) incidentStatus(status string) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
		if s.incidents == nil {
			return errNoIncidents
		}
		if err := s.ownIncident(r, p); err != nil {
			return err
		}
		if err := staffWrite(p, status == api.IncidentConfirmed); err != nil {
			return err
		}
		var in api.IncidentNote
		if r.ContentLength != 0 {
			if err := decode(w, r, &in); err != nil {
				return err
			}
		}
		inc, err := s.incidents.Update(r.Context(), r.PathValue("id"), incident.Change{Status: status, Note: in.Note,
			Actor: p.TokenID, Customer: p.Role == authz.RoleCustomer})
		if err != nil {
			return err
		}
		return s.writeIncident(w, r, p, http.StatusOK, inc)
	}
}

// slaReport serves GET /sla/report?customer=ID&month=YYYY-MM[&format=csv|json], CSV also with
// Accept: text/csv. A customer gets its own report only; staff may leave customer out for every incident.
func (s *server) slaReport(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if s.incidents == nil {
		return errNoIncidents
	}
	q, err := query(r, "customer", "month", "format")
	if err != nil {
		return err
	}
	cust, ok := scope(p, q.Get("customer"))
	if !ok {
		return errNotFound
	}
	if q.Get("month") == "" {
		return badRequest("month is required (YYYY-MM)", "month")
	}
	format := q.Get("format")
	if format == "" && strings.Contains(r.Header.Get("Accept"), "text/csv") {
		format = "csv"
	}
	if format != "" && format != "csv" && format != "json" {
		return badRequest("format must be json or csv", "format")
	}
	rep, err := s.incidents.Report(r.Context(), cust, q.Get("month"))
	if err != nil {
		return err
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="sla-`+rep.Month+`.csv"`)
		return incident.WriteCSV(w, rep)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
