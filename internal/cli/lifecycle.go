package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"easymail/internal/api"
)

// lifecycleCommands are the onboarding check, activation, termination, the operator's SPF record and the
// audit log (docs/lifecycle.md).
func lifecycleCommands() []*command {
	return []*command{
		{name: "customer check", args: "ID", nargs: 1, summary: "check a customer's setup against live DNS (SPF, DKIM, DMARC)",
			help: "A pending customer becomes active when one of its domains verifies. The exit status is 1\nwhen no domain verifies yet.",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					c, err := e.client.CheckCustomer(ctx, a[0])
					if err != nil {
						return err
					}
					if err := showCheck(e, c); err != nil {
						return err
					}
					if !c.Verified {
						return fmt.Errorf("no domain of customer %s verifies yet", a[0])
					}
					return nil
				}
			}},
		{name: "customer activate", args: "ID", nargs: 1, summary: "make a pending customer active without waiting for its DNS",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					st := api.StatusActive
					c, err := e.client.UpdateCustomer(ctx, a[0], api.CustomerUpdate{Status: &st})
					if err != nil {
						return err
					}
					return showCustomer(e, c)
				}
			}},
		{name: "customer terminate", args: "ID --at TIME", nargs: 1, summary: "schedule a customer's deactivation",
			help: "TIME is RFC 3339 (2027-01-31T00:00:00Z), a date (2027-01-31) or a duration from now (720h). The contacts\n" +
				"are warned by e-mail before (lifecycle.notices) and at the date; from the date its mail is refused; after\n" +
				"lifecycle.grace its relay hosts, domains and source IPs are removed. Cancel with customer terminate-cancel.",
			setup: func(fs *flag.FlagSet) runFunc {
				at := fs.String("at", "", "deactivation time (required)")
				return func(ctx context.Context, e *env, a []string) error {
					if *at == "" {
						return usagef("--at is required")
					}
					t, err := parseFutureArg(*at, time.Now())
					if err != nil {
						return usagef("--at: %v", err)
					}
					c, err := e.client.ScheduleTermination(ctx, a[0], t)
					if err != nil {
						return err
					}
					return showCustomer(e, c)
				}
			}},
		{name: "customer terminate-cancel", args: "ID", nargs: 1, summary: "cancel a scheduled deactivation before its date",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					c, err := e.client.CancelTermination(ctx, a[0])
					if err != nil {
						return err
					}
					return showCustomer(e, c)
				}
			}},
		{name: "dns spf", summary: "print the operator's SPF TXT records, built from every pool IP",
			help: "Publish each record at its name. Customers add the include shown to their own SPF records.",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, _ []string) error {
					r, err := e.client.SPFRecords(ctx)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, r)
					}
					fmt.Fprintf(e.out, "; customers add %s to their SPF records (DNS lookups it costs: %d)\n", r.Include, r.Lookups+1)
					for _, rec := range r.Records {
						quoted := make([]string, len(rec.Strings))
						for i, s := range rec.Strings {
							quoted[i] = strconv.Quote(s)
						}
						fmt.Fprintf(e.out, "%s. IN TXT %s\n", rec.Name, strings.Join(quoted, " "))
					}
					return nil
				}
			}},
		{name: "audit list", args: "[--customer C] [--actor TOKENID] [--action TEXT] [--since T] [--until T] [--limit N]",
			summary: "show the audit log, newest first",
			setup: func(fs *flag.FlagSet) runFunc {
				var q api.AuditQuery
				fs.StringVar(&q.Customer, "customer", "", "changes of this customer")
				fs.StringVar(&q.Actor, "actor", "", "changes made with this token id")
				fs.StringVar(&q.Action, "action", "", "actions containing this text (e.g. termination)")
				timeFlag(fs, &q.Since, "since", "at or after this time")
				timeFlag(fs, &q.Until, "until", "before this time")
				fs.IntVar(&q.Limit, "limit", 0, "at most this many entries (default 100)")
				return func(ctx context.Context, e *env, _ []string) error {
					list, err := e.client.Audit(ctx, q)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, a := range list {
						actor := a.ActorRole
						if a.ActorToken != "" {
							actor += " " + a.ActorToken
						}
						rows[i] = []string{fmtTime(a.At), actor, a.Action, a.Target, strconv.Itoa(a.Status)}
					}
					table(e.out, []string{"AT", "ACTOR", "ACTION", "TARGET", "STATUS"}, rows)
					return nil
				}
			}},
	}
}

// showCheck prints the outcome of a customer check.
func showCheck(e *env, c *api.CustomerCheck) error {
	if e.json {
		return printJSON(e.out, c)
	}
	status := string(c.Status)
	if c.Activated {
		status += " (activated by this check)"
	}
	kv(e.out, [2]string{"customer", c.CustomerID}, [2]string{"status", status},
		[2]string{"relay", c.RelayHost + " port " + c.RelayPort}, [2]string{"senders", c.Senders},
		[2]string{"spf_include", c.SPFInclude}, [2]string{"verified", strconv.FormatBool(c.Verified)})
	section(e.out, "Domains", len(c.Domains) == 0, func() {
		var rows [][]string
		for _, d := range c.Domains {
			if d.Error != "" {
				rows = append(rows, []string{d.Domain, "error", "", d.Error})
				continue
			}
			verdict := "not verified"
			if d.Verified {
				verdict = "verified"
			}
			rows = append(rows, []string{d.Domain, verdict, "", ""})
			if d.SPF != nil {
				rows = append(rows, []string{"", "", "spf " + d.SPF.Status, d.SPF.Detail})
			}
			if d.DKIM != nil {
				rows = append(rows, []string{"", "", "dkim " + d.DKIM.Status, d.DKIM.Detail})
			}
			if d.DMARC != nil {
				rows = append(rows, []string{"", "", "dmarc " + d.DMARC.Status, d.DMARC.Detail})
			}
		}
		table(e.out, []string{"DOMAIN", "RESULT", "CHECK", "DETAIL"}, rows)
	})
	return nil
}
