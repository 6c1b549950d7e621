package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"easymail/internal/api"
)

// limitCommands are the commands on a customer's rate limits and on the hold of its mail.
func limitCommands() []*command {
	return []*command{
		{name: "customer limits", nargs: 1,
			args:    "ID [--messages-per-minute N] [--messages-per-hour N] [--recipients-per-minute N] [--recipients-per-hour N] [--burst N] [--defaults]",
			summary: "show or set a customer's rate limits",
			help: "Each value is a number (0 is unlimited) or \"default\" (the configuration's limits: section). Limits\n" +
				"not given keep their value; --defaults first returns every limit to its default. Over a limit the\n" +
				"customer's MTA is answered 451 4.7.0 and retries. Without flags, the limits are shown.",
			setup: func(fs *flag.FlagSet) runFunc {
				type opt struct {
					name string
					set  bool
					v    *int
				}
				opts := []*opt{{name: "messages-per-minute"}, {name: "messages-per-hour"}, {name: "recipients-per-minute"},
					{name: "recipients-per-hour"}, {name: "burst"}}
				for _, o := range opts {
					fs.Func(o.name, "a count, 0 (unlimited) or \"default\"", func(s string) error {
						o.set = true
						if s == "default" {
							o.v = nil
							return nil
						}
						n, err := strconv.Atoi(s)
						if err != nil || n < 0 {
							return fmt.Errorf("not a count or \"default\": %q", s)
						}
						o.v = &n
						return nil
					})
				}
				defaults := fs.Bool("defaults", false, "return every limit not given to its default")
				return func(ctx context.Context, e *env, a []string) error {
					c, err := e.client.GetCustomer(ctx, a[0])
					if err != nil {
						return err
					}
					changed := *defaults
					for _, o := range opts {
						changed = changed || o.set
					}
					if changed {
						rl := c.RateLimits
						if *defaults {
							rl = api.RateLimits{}
						}
						fields := []**int{&rl.MessagesPerMinute, &rl.MessagesPerHour, &rl.RecipientsPerMinute,
							&rl.RecipientsPerHour, &rl.Burst}
						for i, o := range opts {
							if o.set {
								*fields[i] = o.v
							}
						}
						if c, err = e.client.UpdateCustomer(ctx, a[0], api.CustomerUpdate{RateLimits: &rl}); err != nil {
							return err
						}
					}
					if e.json {
						return printJSON(e.out, c.RateLimits)
					}
					kv(e.out, limitPairs(c)...)
					return nil
				}
			}},
		{name: "customer hold", args: "ID", nargs: 1, summary: "hold a customer's new mail (accepted and kept, not delivered)",
			help: "Lift the hold with release-held (delivers the held mail) or purge-held (deletes it).",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					held := true
					c, err := e.client.UpdateCustomer(ctx, a[0], api.CustomerUpdate{Held: &held})
					if err != nil {
						return err
					}
					return showCustomer(e, c)
				}
			}},
		{name: "customer release-held", args: "ID", nargs: 1, summary: "lift a customer's hold and deliver its held mail",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					r, err := e.client.ReleaseHeld(ctx, a[0])
					if err != nil {
						return err
					}
					return showHeldAction(e, r)
				}
			}},
		{name: "customer purge-held", args: "ID", nargs: 1, summary: "lift a customer's hold and delete its held mail (no DSN)",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					r, err := e.client.PurgeHeld(ctx, a[0])
					if err != nil {
						return err
					}
					return showHeldAction(e, r)
				}
			}},
	}
}

func showHeldAction(e *env, r *api.HeldAction) error {
	if e.json {
		return printJSON(e.out, r)
	}
	fmt.Fprintf(e.out, "customer %s: hold lifted, %d held message(s) %s\n", r.CustomerID, r.Messages, r.Action)
	return nil
}

// limitPairs are the hold state and rate limits of a customer, for showCustomer.
func limitPairs(c *api.Customer) [][2]string {
	held := "no"
	if c.Held {
		held = "yes: " + c.HeldReason
		if c.HeldAt != nil {
			held += " (since " + fmtOptTime(c.HeldAt) + ")"
		}
	}
	limit := func(v *int) string {
		switch {
		case v == nil:
			return "default"
		case *v == 0:
			return "unlimited"
		}
		return strconv.Itoa(*v)
	}
	rl := c.RateLimits
	return [][2]string{{"held", held},
		{"messages_per_minute", limit(rl.MessagesPerMinute)}, {"messages_per_hour", limit(rl.MessagesPerHour)},
		{"recipients_per_minute", limit(rl.RecipientsPerMinute)}, {"recipients_per_hour", limit(rl.RecipientsPerHour)},
		{"burst", limit(rl.Burst)}}
}
