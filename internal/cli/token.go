package cli

import (
	"context"
	"flag"
	"fmt"

	"easymail/internal/api"
)

func tokenCommands() []*command {
	return []*command{
		{name: "token create", args: "--role ROLE [--customer C] [--name N]", summary: "create an API token (shown once)",
			help: "Roles: operator (everything), expert (reads everything), customer (reads its own customer; needs --customer).",
			setup: func(fs *flag.FlagSet) runFunc {
				var in api.TokenRequest
				fs.StringVar(&in.Role, "role", "", "operator, expert or customer (required)")
				fs.StringVar(&in.CustomerID, "customer", "", "the customer id, for the customer role")
				fs.StringVar(&in.Name, "name", "", "a name to recognise the token by")
				return func(ctx context.Context, e *env, _ []string) error {
					if in.Role == "" {
						return usagef("--role is required")
					}
					t, err := e.client.CreateToken(ctx, in)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, t)
					}
					kv(e.out, [2]string{"id", t.ID}, [2]string{"role", t.Role}, [2]string{"customer", t.CustomerID},
						[2]string{"name", t.Name}, [2]string{"token", t.Secret})
					_, err = fmt.Fprintln(e.out, "\nKeep the token now: it is not shown again.")
					return err
				}
			}},
		{name: "token list", summary: "list API tokens",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, _ []string) error {
					list, err := e.client.ListTokens(ctx)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, t := range list {
						rows[i] = []string{t.ID, t.Role, t.CustomerID, t.Name, fmtTime(t.CreatedAt), fmtOptTime(t.RevokedAt)}
					}
					table(e.out, []string{"ID", "ROLE", "CUSTOMER", "NAME", "CREATED", "REVOKED"}, rows)
					return nil
				}
			}},
		{name: "token revoke", args: "ID", nargs: 1, summary: "revoke an API token",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					if err := e.client.RevokeToken(ctx, a[0]); err != nil {
						return err
					}
					return done(e, "token "+a[0]+" revoked")
				}
			}},
	}
}
