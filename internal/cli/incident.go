package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"easymail/internal/api"
	"easymail/internal/incident"
)

// incidentCommands are the incident commands: incident list|show|open|ack|comment|resolve|confirm|close|
// priority, and sla report.
func incidentCommands() []*command {
	show := func(e *env, inc *api.Incident) error {
		if e.json {
			return printJSON(e.out, inc)
		}
		cust := inc.CustomerID
		if cust == "" {
			cust = "(all)"
		}
		fmt.Fprintf(e.out, "%s  %s  %s  %s\n", inc.ID, inc.Priority, inc.Status, inc.Title)
		fmt.Fprintf(e.out, "customer: %s  channel: %s  sla: %s  opened: %s\n", cust, inc.Channel, inc.SLAType, fmtTime(inc.OpenedAt))
		if inc.Cause != "" {
			fmt.Fprintf(e.out, "cause: %s\n", inc.Cause)
		}
		resp := "not yet"
		if inc.SLA.RespondedAt != nil {
			resp = fmtTime(*inc.SLA.RespondedAt) + " (" + secsText(inc.SLA.ResponseTime) + " in the window)"
		}
		breach := ""
		if inc.SLA.Breached {
			breach = "  BREACHED"
		}
		fmt.Fprintf(e.out, "response due: %s  responded: %s%s\n", fmtTime(inc.SLA.ResponseDueAt), resp, breach)
		if inc.ResolvedAt != nil {
			fmt.Fprintf(e.out, "resolved: %s (%s in the window)\n", fmtTime(*inc.ResolvedAt), secsText(inc.SLA.ResolveTime))
		}
		for _, l := range inc.Links {
			fmt.Fprintf(e.out, "concerns %s %s\n", l.Kind, l.Value)
		}
		if inc.Description != "" {
			fmt.Fprintf(e.out, "\n%s\n", inc.Description)
		}
		if len(inc.Events) > 0 {
			fmt.Fprintln(e.out)
			rows := make([][]string, len(inc.Events))
			for i, ev := range inc.Events {
				what := ev.Body
				if ev.From != "" || ev.To != "" {
					what = strings.TrimSpace(ev.From + " -> " + ev.To + " " + ev.Body)
				}
				rows[i] = []string{fmtTime(ev.At), ev.Kind, ev.Visibility, ev.Actor, truncate(strings.ReplaceAll(what, "\n", " "), 80)}
			}
			table(e.out, []string{"AT", "EVENT", "VISIBLE", "BY", "WHAT"}, rows)
		}
		return nil
	}
	action := func(verb, summary string) *command {
		return &command{name: "incident " + verb, args: "ID [--note TEXT]", nargs: 1, summary: summary,
			setup: func(fs *flag.FlagSet) runFunc {
				note := fs.String("note", "", "a note for the timeline (visible to the customer)")
				return func(ctx context.Context, e *env, a []string) error {
					inc, err := e.client.IncidentAction(ctx, a[0], verb, *note)
					if err != nil {
						return err
					}
					return show(e, inc)
				}
			}}
	}
	return []*command{
		{name: "incident list", args: "[--status open|all|STATUS] [--customer ID]", summary: "list incidents, newest first",
			setup: func(fs *flag.FlagSet) runFunc {
				status := fs.String("status", "open", "open (not resolved), all, or a status")
				cust := fs.String("customer", "", "only this customer's")
				return func(ctx context.Context, e *env, _ []string) error {
					list, err := e.client.ListIncidents(ctx, *status, *cust)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, inc := range list {
						breach := ""
						if inc.SLA.Breached {
							breach = "yes"
						}
						rows[i] = []string{inc.ID, inc.Priority, inc.Status, inc.CustomerID, inc.Channel, fmtTime(inc.OpenedAt),
							fmtTime(inc.SLA.ResponseDueAt), breach, inc.Cause, truncate(inc.Title, 60)}
					}
					table(e.out, []string{"ID", "PRIO", "STATUS", "CUSTOMER", "CHANNEL", "OPENED", "RESPONSE DUE", "BREACHED", "CAUSE", "TITLE"}, rows)
					return nil
				}
			}},
		{name: "incident show", args: "ID", nargs: 1, summary: "show an incident, its SLA clock and its timeline",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					inc, err := e.client.GetIncident(ctx, a[0])
					if err != nil {
						return err
					}
					return show(e, inc)
				}
			}},
		{name: "incident open", args: "--title TEXT [--priority P1..P4] [--customer ID] [--channel phone|email|portal|api] [--description TEXT]",
			summary: "open an incident (a report taken by phone or e-mail: --channel)",
			setup: func(fs *flag.FlagSet) runFunc {
				title := fs.String("title", "", "what is wrong (required)")
				prio := fs.String("priority", "P3", "P1 total outage, P2 serious degradation, P3 moderate impact, P4 no impact")
				cust := fs.String("customer", "", "the customer concerned (empty: every customer)")
				channel := fs.String("channel", "api", "how it was reported: phone, email, portal or api")
				desc := fs.String("description", "", "details")
				reporter := fs.String("reporter", "", "who reported it")
				return func(ctx context.Context, e *env, _ []string) error {
					if *title == "" {
						return usagef("--title is required")
					}
					inc, err := e.client.OpenIncident(ctx, api.IncidentCreate{CustomerID: *cust, Priority: *prio, Title: *title,
						Description: *desc, Channel: *channel, Reporter: *reporter})
					if err != nil {
						return err
					}
					return show(e, inc)
				}
			}},
		action("ack", "acknowledge an incident (its response, for the SLA clock)"),
		{name: "incident comment", args: "ID TEXT [--internal]", nargs: 2, summary: "comment an incident (visible to the customer unless --internal)",
			setup: func(fs *flag.FlagSet) runFunc {
				internal := fs.Bool("internal", false, "for operators and experts only")
				return func(ctx context.Context, e *env, a []string) error {
					inc, err := e.client.CommentIncident(ctx, a[0], api.IncidentComment{Text: a[1], Internal: *internal})
					if err != nil {
						return err
					}
					return show(e, inc)
				}
			}},
		action("resolve", "resolve an incident (notified to the customer and the operator)"),
		action("confirm", "confirm an incident's resolution (the customer, or an operator on its behalf)"),
		action("close", "close an incident"),
		{name: "incident priority", args: "ID P1..P4", nargs: 2, summary: "change an incident's priority (notified)",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					p := a[1]
					inc, err := e.client.UpdateIncident(ctx, a[0], api.IncidentUpdate{Priority: &p})
					if err != nil {
						return err
					}
					return show(e, inc)
				}
			}},
		{name: "sla report", args: "--month YYYY-MM [--customer ID] [--csv]", summary: "the SLA report of a customer for a month",
			setup: func(fs *flag.FlagSet) runFunc {
				month := fs.String("month", "", "the month, YYYY-MM (required)")
				cust := fs.String("customer", "", "the customer (empty: every incident; a customer token: its own)")
				asCSV := fs.Bool("csv", false, "one CSV line per incident")
				return func(ctx context.Context, e *env, _ []string) error {
					if *month == "" {
						return usagef("--month is required")
					}
					rep, err := e.client.SLAReport(ctx, *cust, *month)
					if err != nil {
						return err
					}
					switch {
					case *asCSV:
						return incident.WriteCSV(e.out, rep)
					case e.json:
						return printJSON(e.out, rep)
					}
					fmt.Fprintf(e.out, "SLA report %s, customer %s, SLA %s\n", rep.Month, orAll(rep.CustomerID), rep.SLAType)
					fmt.Fprintf(e.out, "incidents: %d  responded: %d  breaches: %d  mean response: %s  max response: %s\n",
						rep.Total, rep.Responded, rep.Breaches, secsText(&rep.MeanResponse), secsText(&rep.MaxResponse))
					rows := [][]string{}
					for _, p := range []string{"P1", "P2", "P3", "P4"} {
						c := rep.ByPriority[p]
						rows = append(rows, []string{p, strconv.Itoa(c.Total), strconv.Itoa(c.Resolved), strconv.Itoa(c.Breaches)})
					}
					table(e.out, []string{"PRIORITY", "INCIDENTS", "RESOLVED", "BREACHES"}, rows)
					fmt.Fprintln(e.out)
					rows = rows[:0]
					for _, l := range rep.Incidents {
						b := ""
						if l.Breached {
							b = "yes"
						}
						rows = append(rows, []string{l.ID, l.Priority, l.Channel, fmtTime(l.OpenedAt), secsText(&l.ResponseTarget), secsText(l.ResponseTime), b, truncate(l.Title, 50)})
					}
					table(e.out, []string{"ID", "PRIO", "CHANNEL", "OPENED", "TARGET", "RESPONSE", "BREACHED", "TITLE"}, rows)
					return nil
				}
			}},
	}
}

// secs writes a number of seconds as a duration ("35m0s"), or "-" for none.
func secsText(n *int64) string {
	if n == nil {
		return "-"
	}
	return (fmt.Sprint(*n/60) + "m" + fmt.Sprint(*n%60) + "s")
}

func orAll(s string) string {
	if s == "" {
		return "(all)"
	}
	return s
}
