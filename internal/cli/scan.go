package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"easymail/internal/api"
)

// scanCommands are the commands of the quarantine and of the scanning policies: quarantine list|show|
// release|delete, scan-policy show|set.
func scanCommands() []*command {
	action := func(verb, summary string, op func(*api.Client) func(context.Context, string) error) *command {
		return &command{name: "quarantine " + verb, args: "ID", nargs: 1, summary: summary,
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					if err := op(e.client)(ctx, a[0]); err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, api.QuarantineAction{ID: a[0], Action: verb + "d"})
					}
					fmt.Fprintf(e.out, "%s: %sd\n", a[0], verb)
					return nil
				}
			}}
	}
	return []*command{
		{name: "quarantine list", args: "[--customer ID] [--limit N]", summary: "list quarantined messages, newest first",
			setup: func(fs *flag.FlagSet) runFunc {
				cust := fs.String("customer", "", "only this customer's")
				limit := fs.Int("limit", 0, "at most this many (default 100)")
				return func(ctx context.Context, e *env, _ []string) error {
					list, err := e.client.ListQuarantine(ctx, *cust, *limit)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, q := range list {
						rows[i] = []string{q.ID, q.CustomerID, fmtTime(q.CreatedAt), senderText(q.Sender),
							truncate(strings.Join(q.Recipients, ","), 40), truncate(q.Subject, 40), q.Verdict, truncate(q.Reason, 60)}
					}
					table(e.out, []string{"ID", "CUSTOMER", "QUARANTINED", "SENDER", "RECIPIENTS", "SUBJECT", "VERDICT", "REASON"}, rows)
					return nil
				}
			}},
		{name: "quarantine show", args: "ID", nargs: 1,
			summary: "show a quarantined message: header, verdicts, a safe text preview",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					m, err := e.client.GetQuarantined(ctx, a[0])
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, m)
					}
					kv(e.out, [2]string{"id", m.ID}, [2]string{"customer", m.CustomerID}, [2]string{"sender", senderText(m.Sender)},
						[2]string{"recipients", strings.Join(m.Recipients, ", ")}, [2]string{"subject", m.Subject},
						[2]string{"size", strconv.FormatInt(m.Size, 10)}, [2]string{"verdict", m.Verdict},
						[2]string{"reason", m.Reason}, [2]string{"quarantined", fmtTime(m.CreatedAt)},
						[2]string{"expires", fmtTime(m.ExpiresAt)})
					showScan(e.out, m.Scan)
					section(e.out, "Header", m.Header == "", func() { fmt.Fprint(e.out, m.Header) })
					section(e.out, "Preview", m.Preview == "", func() { fmt.Fprintln(e.out, m.Preview) })
					return nil
				}
			}},
		action("release", "release a quarantined message: it is queued and delivered normally",
			func(c *api.Client) func(context.Context, string) error { return c.ReleaseQuarantined }),
		action("delete", "delete a quarantined message without delivering it",
			func(c *api.Client) func(context.Context, string) error { return c.DeleteQuarantined }),
		{name: "scan-policy rules", args: "CUSTOMER", nargs: 1,
			summary: "list the content rules in force for a customer: the defaults and its own, by origin",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					p, err := e.client.GetScanPolicy(ctx, a[0])
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, p.EffectiveRules)
					}
					rows := make([][]string, len(p.EffectiveRules))
					for i, r := range p.EffectiveRules {
						match := strings.Join(r.Values, ",")
						switch {
						case r.Pattern != "":
							match = r.Pattern
						case r.MaxBytes > 0:
							match = strconv.FormatInt(r.MaxBytes, 10) + " bytes"
						}
						rows[i] = []string{r.Origin, r.Name, r.Type, truncate(match, 50), r.Action, truncate(r.Reason, 50)}
					}
					table(e.out, []string{"ORIGIN", "NAME", "TYPE", "MATCH", "ACTION", "REASON"}, rows)
					return nil
				}
			}},
		{name: "scan-policy show", args: "CUSTOMER", nargs: 1,
			summary: "show a customer's scanning policy, the defaults it falls back on, and the content rules in force",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					p, err := e.client.GetScanPolicy(ctx, a[0])
					if err != nil {
						return err
					}
					return printJSON(e.out, p)
				}
			}},
		{name: "scan-policy set", args: "CUSTOMER FILE", nargs: 2,
			summary: "replace a customer's scanning policy with the JSON in FILE (- for standard input)",
			help: "FILE holds a JSON object with any of spam_reject_score, spam_quarantine_score, spam_tag_score,\n" +
				"virus_action (reject, quarantine), on_failure (tempfail, bypass), customer_release (none, except_virus,\n" +
				"all: what the customer's portal users may release and delete of its quarantine), rules (a list of content rules, which\n" +
				"apply in addition to the configured ones) and replace_defaults (true: the configured rules do not apply);\n" +
				"a field left out or null takes the configured default. {} returns the customer to the defaults.\n" +
				"See docs/scanning.md.",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					var b []byte
					var err error
					if a[1] == "-" {
						b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
					} else {
						b, err = os.ReadFile(a[1])
					}
					if err != nil {
						return err
					}
					var in api.ScanPolicy
					dec := json.NewDecoder(bytes.NewReader(b))
					dec.DisallowUnknownFields()
					if err := dec.Decode(&in); err != nil {
						return fmt.Errorf("%s: %w", a[1], err)
					}
					p, err := e.client.SetScanPolicy(ctx, a[0], in)
					if err != nil {
						return err
					}
					return printJSON(e.out, p)
				}
			}},
	}
}

// showScan prints a scan report: each scanner's verdict and the content rules that matched.
func showScan(w io.Writer, r *api.ScanReport) {
	if r == nil {
		return
	}
	section(w, "Scan", false, func() {
		pairs := [][2]string{{"verdict", r.Verdict}, {"action", r.Action}}
		if r.Reason != "" {
			pairs = append(pairs, [2]string{"reason", r.Reason})
		}
		kv(w, pairs...)
		rows := make([][]string, 0, len(r.Verdicts)+len(r.Rules))
		for _, v := range r.Verdicts {
			detail := v.Name
			if v.Scanner == "rspamd" && v.Error == "" {
				detail = fmt.Sprintf("score %.2f, %s: %s", v.Score, v.Action, strings.Join(v.Symbols, " "))
			}
			if v.Error != "" {
				detail = v.Error
			}
			rows = append(rows, []string{v.Scanner, v.Result, strconv.FormatInt(v.Millis, 10) + "ms", truncate(detail, 90)})
		}
		for _, h := range r.Rules {
			rows = append(rows, []string{"rule " + h.Rule, h.Action, "", truncate(h.Reason+" ("+h.Where+")", 90)})
		}
		if len(rows) > 0 {
			table(w, []string{"CHECK", "RESULT", "TOOK", "DETAIL"}, rows)
		}
	})
}
