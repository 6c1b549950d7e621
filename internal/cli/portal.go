package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"easymail/internal/api"
)

// stdin is where --password-stdin reads (tests replace it).
var stdin io.Reader = os.Stdin

// userCommands are the portal users' commands, as `easymail user ...` and `easymail portal user ...`.
func userCommands() []*command {
	var all []*command
	for _, prefix := range []string{"user", "portal user"} {
		all = append(all,
			&command{name: prefix + " add", args: "EMAIL --role operator|expert|customer [--customer ID] [--password-stdin]", nargs: 1,
				summary: "create a portal user",
				help:    "Without --password-stdin a one-time password is generated and printed once; with it, the first line of standard input is the password (12 to 72 bytes). A customer user needs --customer; its customer's portal must be enabled (customer update ID --portal=true) before it can log in.",
				setup: func(fs *flag.FlagSet) runFunc {
					var in api.PortalUserRequest
					fs.StringVar(&in.Role, "role", "", "operator, expert or customer (required)")
					fs.StringVar(&in.CustomerID, "customer", "", "the customer id, for the customer role")
					fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
					return func(ctx context.Context, e *env, a []string) error {
						if in.Role == "" {
							return usagef("--role is required")
						}
						in.Email = a[0]
						if *fromStdin {
							line, err := bufio.NewReader(stdin).ReadString('\n')
							if err != nil && !errors.Is(err, io.EOF) {
								return err
							}
							if in.Password = strings.TrimRight(line, "\r\n"); in.Password == "" {
								return usagef("--password-stdin: standard input holds no password")
							}
						}
						u, err := e.client.CreateUser(ctx, in)
						if err != nil {
							return err
						}
						if e.json {
							return printJSON(e.out, u)
						}
						pairs := [][2]string{{"id", u.ID}, {"email", u.Email}, {"role", u.Role}, {"customer", u.CustomerID}}
						if u.Password != "" {
							pairs = append(pairs, [2]string{"password", u.Password})
						}
						kv(e.out, pairs...)
						if u.Password != "" {
							_, err = fmt.Fprintln(e.out, "\nKeep the password now: it is not shown again. The user changes it under Your account.")
						}
						return err
					}
				}},
			&command{name: prefix + " list", args: "[--customer ID]", summary: "list portal users",
				setup: func(fs *flag.FlagSet) runFunc {
					cust := fs.String("customer", "", "only this customer's users")
					return func(ctx context.Context, e *env, _ []string) error {
						list, err := e.client.ListUsers(ctx, *cust)
						if err != nil {
							return err
						}
						if e.json {
							return printJSON(e.out, list)
						}
						rows := make([][]string, len(list))
						for i, u := range list {
							totp := "off"
							if u.TOTP {
								totp = "on"
							}
							rows[i] = []string{u.ID, u.Email, u.Role, u.CustomerID, totp, fmtTime(u.CreatedAt)}
						}
						table(e.out, []string{"ID", "EMAIL", "ROLE", "CUSTOMER", "TOTP", "CREATED"}, rows)
						return nil
					}
				}},
			&command{name: prefix + " delete", args: "ID", nargs: 1, summary: "delete a portal user and end its sessions",
				setup: func(fs *flag.FlagSet) runFunc {
					return func(ctx context.Context, e *env, a []string) error {
						if err := e.client.DeleteUser(ctx, a[0]); err != nil {
							return err
						}
						return done(e, "user "+a[0]+" deleted")
					}
				}},
		)
	}
	return all
}
