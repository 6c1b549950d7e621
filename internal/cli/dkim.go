package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"easymail/internal/api"
)

// dkimCommands are the commands on a domain's DKIM keys and readiness.
func dkimCommands() []*command {
	return []*command{
		{name: "customer domain dkim", args: "ID DOMAIN", nargs: 2, summary: "show a domain's DKIM keys and the records to publish",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					d, err := e.client.DomainDKIM(ctx, a[0], a[1])
					if err != nil {
						return err
					}
					return showDKIM(e, d)
				}
			}},
		{name: "customer domain rotate-dkim", args: "ID DOMAIN", nargs: 2, summary: "start a rotation of a domain's DKIM keys",
			help: "A new key is made for each algorithm the domain signs with. Signing switches to it once its record\n" +
				"(shown as pending) is published in DNS; the old key is retired after dkim.retire_after.",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					d, err := e.client.RotateDKIM(ctx, a[0], a[1])
					if err != nil {
						return err
					}
					return showDKIM(e, d)
				}
			}},
		{name: "customer domain check-dkim", args: "ID DOMAIN", nargs: 2, summary: "check a domain's pending DKIM records now",
			help: "A pending key whose record is published becomes active at once, instead of at the next check\n" +
				"(dkim.check_interval).",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					d, err := e.client.CheckDKIM(ctx, a[0], a[1])
					if err != nil {
						return err
					}
					return showDKIM(e, d)
				}
			}},
		{name: "customer domain add-ed25519", args: "ID DOMAIN", nargs: 2, summary: "add an Ed25519 DKIM key (a second signature)",
			help: "The key signs once its record (shown as pending) is published in DNS (RFC 8463).",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					d, err := e.client.AddEd25519(ctx, a[0], a[1])
					if err != nil {
						return err
					}
					return showDKIM(e, d)
				}
			}},
		{name: "customer domain readiness", args: "ID DOMAIN", nargs: 2, summary: "check a domain for bulk sending (SPF, DKIM, DMARC, unsubscribe)",
			help: "Checks DNS live and counts the domain's messages of the last 30 days.",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					r, err := e.client.Readiness(ctx, a[0], a[1])
					if err != nil {
						return err
					}
					return showReadiness(e, r)
				}
			}},
	}
}

func showDKIM(e *env, d *api.DomainDKIM) error {
	if e.json {
		return printJSON(e.out, d)
	}
	kv(e.out, [2]string{"domain", d.Domain})
	section(e.out, "Keys", len(d.Keys) == 0, func() {
		rows := make([][]string, len(d.Keys))
		for i, k := range d.Keys {
			when := fmtOptTime(k.ActivatedAt)
			switch k.State {
			case api.DKIMStateRetiring:
				when = "retire " + fmtOptTime(k.RetireAt)
			case api.DKIMStateRetired:
				when = "retired " + fmtOptTime(k.RetiredAt)
			case api.DKIMStatePending:
				when = "created " + fmtTime(k.CreatedAt)
			}
			rows[i] = []string{k.Selector, k.Algorithm, k.State, when, fmtOptTime(k.VerifiedAt)}
		}
		table(e.out, []string{"SELECTOR", "ALGORITHM", "STATE", "SINCE", "VERIFIED"}, rows)
	})
	var publish []api.DKIMKey
	for _, k := range d.Keys {
		if k.State != api.DKIMStateRetired {
			publish = append(publish, k)
		}
	}
	section(e.out, "Records to publish (TXT), one line each", len(publish) == 0, func() {
		for _, k := range publish {
			fmt.Fprintf(e.out, "%s TXT \"%s\"\n", k.Record.Name, clean(k.Record.Value))
		}
	})
	section(e.out, "The same for a zone file (strings of at most 255 bytes)", len(publish) == 0, func() {
		for _, k := range publish {
			fmt.Fprintln(e.out, clean(k.Record.Zone()))
		}
	})
	return nil
}

func showReadiness(e *env, r *api.Readiness) error {
	if e.json {
		return printJSON(e.out, r)
	}
	kv(e.out, [2]string{"domain", r.Domain}, [2]string{"checked", fmtTime(r.CheckedAt)},
		[2]string{"ready", strconv.FormatBool(r.Ready)})
	rows := [][]string{
		{"SPF", r.SPF.Status, r.SPF.Detail},
		{"DKIM", r.DKIM.Status, r.DKIM.Detail},
		{"DMARC", r.DMARC.Status, r.DMARC.Detail},
		{"unsubscribe", r.Unsubscribe.Status, r.Unsubscribe.Detail},
	}
	fmt.Fprintln(e.out)
	table(e.out, []string{"CHECK", "STATUS", "DETAIL"}, rows)
	section(e.out, "SPF per outbound IP", len(r.SPF.Results) == 0, func() {
		rows := make([][]string, len(r.SPF.Results))
		for i, x := range r.SPF.Results {
			rows[i] = []string{x.IP, x.Result, x.Error}
		}
		table(e.out, []string{"IP", "RESULT", "ERROR"}, rows)
	})
	section(e.out, "DKIM records", len(r.DKIM.Keys) == 0, func() {
		rows := make([][]string, len(r.DKIM.Keys))
		for i, k := range r.DKIM.Keys {
			rows[i] = []string{k.Name, k.Algorithm, k.State, strconv.FormatBool(k.Published), k.Detail}
		}
		table(e.out, []string{"NAME", "ALGORITHM", "STATE", "PUBLISHED", "DETAIL"}, rows)
	})
	fmt.Fprintln(e.out)
	kv(e.out,
		[2]string{"spf_record", r.SPF.Record},
		[2]string{"dmarc_record", r.DMARC.Record},
		[2]string{"dmarc_strength", r.DMARC.Strength},
		[2]string{"bulk_messages", fmt.Sprintf("%d of %d in 30 days, %s with one-click unsubscribe", r.Unsubscribe.Bulk,
			r.Unsubscribe.Messages, share(r.Unsubscribe.OneClickShare))},
		[2]string{"bounce_rate", fmt.Sprintf("%s (%d of %d recipients)", share(r.Rates.BounceRate), r.Rates.Bounced,
			r.Rates.FinalRecipients)},
		[2]string{"complaint_rate", share(r.Rates.ComplaintRate)},
	)
	return nil
}

// share formats a ratio as a percentage, "unknown" when nil.
func share(f *float64) string {
	if f == nil {
		return "unknown"
	}
	return strings.TrimSuffix(strings.TrimSuffix(strconv.FormatFloat(*f*100, 'f', 1, 64), "0"), ".") + "%"
}
