package cli

import (
	"context"
	"flag"
	"strings"
)

// tlsCommands are the views of outbound TLS: the MTA-STS policies kept and the TLS reports sent
// (docs/delivery.md).
func tlsCommands() []*command {
	return []*command{
		{name: "tls policies", args: "", nargs: 0, summary: "list the destinations' MTA-STS policies the relay keeps",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					list, err := e.client.MTASTSPolicies(ctx)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, p := range list {
						expires := fmtTime(p.ExpiresAt)
						if p.Expired {
							expires += " (expired)"
						}
						rows[i] = []string{p.Domain, p.Mode, strings.Join(p.MX, ","), p.ID, fmtTime(p.FetchedAt), expires}
					}
					table(e.out, []string{"DOMAIN", "MODE", "MX", "ID", "FETCHED", "EXPIRES"}, rows)
					return nil
				}
			}},
		{name: "tls reports", args: "[--domain DOMAIN] [--limit N]", nargs: 0, summary: "list the TLS-RPT reports sent, newest day first",
			setup: func(fs *flag.FlagSet) runFunc {
				domain := fs.String("domain", "", "only this policy domain's reports")
				limit := fs.Int("limit", 0, "at most this many (default 100)")
				return func(ctx context.Context, e *env, a []string) error {
					list, err := e.client.TLSReports(ctx, *domain, *limit)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, r := range list {
						rows[i] = []string{r.Day, r.Domain, r.RUA, fmtTime(r.SentAt), truncate(r.Outcome, 80)}
					}
					table(e.out, []string{"DAY", "DOMAIN", "RUA", "SENT", "OUTCOME"}, rows)
					return nil
				}
			}},
	}
}
