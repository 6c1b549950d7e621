package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"easymail/internal/api"
)

func eventCommands() []*command {
	return []*command{
		{name: "webhook add", args: "CUSTOMER URL --events delivered,bounced,...", nargs: 2,
			summary: "add a webhook: the customer's events are POSTed to URL, signed (prints the secret once)",
			help: "Events: " + strings.Join(api.EventNames, ", ") + ".\n" +
				"Each POST carries X-Easymail-Signature: t=UNIX,v1=HEX, the HMAC-SHA256 of \"t.\" and the body keyed with\n" +
				"the secret printed here (docs/events.md).",
			setup: func(fs *flag.FlagSet) runFunc {
				evs := fs.String("events", strings.Join(api.EventNames, ","), "comma-separated events to send")
				return func(ctx context.Context, e *env, a []string) error {
					var list []string
					for _, x := range strings.Split(*evs, ",") {
						if x = strings.TrimSpace(x); x != "" {
							list = append(list, x)
						}
					}
					h, err := e.client.CreateWebhook(ctx, a[0], api.WebhookRequest{URL: a[1], Events: list})
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, h)
					}
					kv(e.out, [2]string{"id", h.ID}, [2]string{"url", h.URL}, [2]string{"events", strings.Join(h.Events, ",")},
						[2]string{"secret", h.Secret})
					return nil
				}
			}},
		{name: "webhook list", args: "CUSTOMER", nargs: 1, summary: "list a customer's webhooks",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					list, err := e.client.ListWebhooks(ctx, a[0])
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, h := range list {
						rows[i] = []string{h.ID, h.URL, strings.Join(h.Events, ","), fmtTime(h.CreatedAt)}
					}
					table(e.out, []string{"ID", "URL", "EVENTS", "CREATED"}, rows)
					return nil
				}
			}},
		{name: "webhook delete", args: "CUSTOMER WEBHOOK", nargs: 2, summary: "remove a webhook and its pending deliveries",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					if err := e.client.DeleteWebhook(ctx, a[0], a[1]); err != nil {
						return err
					}
					return done(e, "webhook "+a[1]+" removed")
				}
			}},
		{name: "webhook dead", args: "CUSTOMER", nargs: 1, summary: "list a customer's dead-lettered webhook deliveries",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					list, err := e.client.DeadWebhookDeliveries(ctx, a[0])
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, d := range list {
						rows[i] = []string{strconv.FormatInt(d.ID, 10), d.WebhookID, d.Event, d.EventID, fmtTime(d.CreatedAt),
							strconv.Itoa(d.Attempts), truncate(d.LastError, 60)}
					}
					table(e.out, []string{"DELIVERY", "WEBHOOK", "EVENT", "EVENT ID", "CREATED", "ATTEMPTS", "LAST ERROR"}, rows)
					return nil
				}
			}},
		{name: "webhook redeliver", args: "CUSTOMER DELIVERY", nargs: 2, summary: "deliver a dead-lettered event again",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					id, err := strconv.ParseInt(a[1], 10, 64)
					if err != nil {
						return usagef("DELIVERY must be a number (the DELIVERY column of webhook dead)")
					}
					if err := e.client.RedeliverWebhook(ctx, a[0], id); err != nil {
						return err
					}
					return done(e, fmt.Sprintf("delivery %d is due again", id))
				}
			}},
		{name: "provider list", args: "", nargs: 0, summary: "list the providers' limits and the outbound IPs paused for them",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					list, err := e.client.Providers(ctx)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					var rows [][]string
					for _, p := range list {
						limits := fmt.Sprintf("conn %d/ip %d, %d/conn, %d/min, %d/h", p.MaxConnections, p.MaxConnectionsPerIP,
							p.MessagesPerConnection, p.PerMinute, p.PerHour)
						rows = append(rows, []string{p.Name, strings.Join(p.MX, ","), limits, "", "", ""})
						for _, ip := range p.IPs {
							state := "active"
							if ip.Paused {
								state = "paused until " + fmtTime(ip.PausedUntil)
							}
							rows = append(rows, []string{p.Name, "", "", ip.IP, state + fmt.Sprintf(" (share %.2f)", ip.Share), truncate(ip.LastReply, 50)})
						}
					}
					table(e.out, []string{"PROVIDER", "MX", "LIMITS", "IP", "STATE", "LAST REPLY"}, rows)
					return nil
				}
			}},
		{name: "provider resume", args: "PROVIDER IP", nargs: 2, summary: "end an outbound IP's pause for a provider (full rate at once)",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					if err := e.client.ResumeProvider(ctx, a[0], a[1]); err != nil {
						return err
					}
					return done(e, a[1]+" resumed for "+a[0])
				}
			}},
		{name: "complaints", args: "[--window 24h]", nargs: 0, summary: "complaint rates per customer and outbound IP",
			setup: func(fs *flag.FlagSet) runFunc {
				window := fs.String("window", "", "the period counted (default: complaints.rate_window)")
				return func(ctx context.Context, e *env, a []string) error {
					r, err := e.client.ComplaintRates(ctx, *window)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, r)
					}
					var rows [][]string
					for _, c := range r.Customers {
						rows = append(rows, []string{"customer", c.Key, strconv.Itoa(c.Complaints), strconv.Itoa(c.Delivered), fmt.Sprintf("%.3f%%", 100*c.Rate)})
					}
					for _, c := range r.IPs {
						rows = append(rows, []string{"ip", c.Key, strconv.Itoa(c.Complaints), strconv.Itoa(c.Delivered), fmt.Sprintf("%.3f%%", 100*c.Rate)})
					}
					fmt.Fprintf(e.out, "since %s (%s)\n", fmtTime(r.Since), r.Window)
					table(e.out, []string{"KIND", "KEY", "COMPLAINTS", "DELIVERED", "RATE"}, rows)
					return nil
				}
			}},
		{name: "events stream", args: "", nargs: 0, summary: "print every event as it happens, one JSON object a line (operators)",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					return e.client.StreamEvents(ctx, e.out)
				}
			}},
	}
}
