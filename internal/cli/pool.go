package cli

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"easymail/internal/api"
	"easymail/internal/ippool"
)

// poolCommands are the commands of the outbound IP pools: pool list, ip list|show|add|remove|drain|pause|
// resume|check.
func poolCommands() []*command {
	action := func(verb, summary string, withReason bool) *command {
		args := "ADDRESS"
		if withReason {
			args += " [--reason TEXT]"
		}
		return &command{name: "ip " + verb, args: args, nargs: 1, summary: summary,
			setup: func(fs *flag.FlagSet) runFunc {
				reason := new(string)
				if withReason {
					reason = fs.String("reason", "", "why, shown as the IP's reason")
				}
				return func(ctx context.Context, e *env, a []string) error {
					ip, err := e.client.IPAction(ctx, a[0], verb, *reason)
					if err != nil {
						return err
					}
					return showIP(e, ip)
				}
			}}
	}
	return []*command{
		{name: "pool list", summary: "list the outbound IP pools",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, _ []string) error {
					list, err := e.client.ListPools(ctx)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, p := range list {
						rows[i] = []string{p.Name, strconv.Itoa(p.IPs), strconv.Itoa(p.Usable), stateCounts(p.States),
							strings.Join(p.Addresses, ",")}
					}
					table(e.out, []string{"POOL", "IPS", "USABLE", "STATES", "ADDRESSES"}, rows)
					return nil
				}
			}},
		{name: "ip list", args: "[--pool P]", summary: "list the outbound IPs with their state, listings and counters",
			setup: func(fs *flag.FlagSet) runFunc {
				pool := fs.String("pool", "", "only this pool's IPs")
				return func(ctx context.Context, e *env, _ []string) error {
					list, err := e.client.ListIPs(ctx, *pool)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, ip := range list {
						var zones []string
						for _, l := range ip.Listings {
							zones = append(zones, l.Zone)
						}
						c := ip.Last24h
						rows[i] = []string{ip.Address, ip.Pool, ip.HELO, strconv.Itoa(ip.Weight), string(ip.State),
							strings.Join(zones, ","), ip.FCrDNS.Status,
							fmt.Sprintf("%d/%d/%d/%d", c.Sent, c.Deferred, c.Bounced, c.Blocked), truncate(ip.Reason, 50)}
					}
					table(e.out, []string{"ADDRESS", "POOL", "HELO", "WEIGHT", "STATE", "LISTED IN", "FCRDNS",
						"24H SENT/DEF/BOUNCED/BLOCKED", "REASON"}, rows)
					return nil
				}
			}},
		{name: "ip show", args: "ADDRESS", nargs: 1, summary: "show an outbound IP with everything supervision knows",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					ip, err := e.client.GetIP(ctx, a[0])
					if err != nil {
						return err
					}
					return showIP(e, ip)
				}
			}},
		{name: "ip add", args: "POOL ADDRESS --helo H [--weight N] [--warmup N,N,...|none]", nargs: 2,
			summary: "add an outbound IP to a pool",
			help: "The HELO name should be the IP's PTR name, and resolve back to the IP. Without --warmup the IP\n" +
				"warms up on the default schedule (ippool.warmup): a daily message cap for each day since it was\n" +
				"added; --warmup none makes it active at once.",
			setup: func(fs *flag.FlagSet) runFunc {
				var in api.IPRequest
				fs.StringVar(&in.HELO, "helo", "", "HELO name of the IP (required)")
				fs.IntVar(&in.Weight, "weight", 1, "share of the pool's traffic relative to the other IPs, 1-1000")
				fs.Func("warmup", "daily caps, comma-separated (50,100,200), or none", func(s string) error {
					if s == "none" {
						in.Warmup = []int{}
						return nil
					}
					in.Warmup = []int{}
					for _, part := range strings.Split(s, ",") {
						n, err := strconv.Atoi(strings.TrimSpace(part))
						if err != nil {
							return fmt.Errorf("not a list of numbers or none: %q", s)
						}
						in.Warmup = append(in.Warmup, n)
					}
					return nil
				})
				return func(ctx context.Context, e *env, a []string) error {
					if in.HELO == "" {
						return usagef("--helo is required")
					}
					in.Address = a[1]
					ip, err := e.client.AddIP(ctx, a[0], in)
					if err != nil {
						return err
					}
					return showIP(e, ip)
				}
			}},
		{name: "ip remove", args: "POOL ADDRESS", nargs: 2, summary: "remove an outbound IP from its pool",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					if err := e.client.RemoveIP(ctx, a[0], a[1]); err != nil {
						return err
					}
					return done(e, "outbound IP "+a[1]+" removed from pool "+a[0])
				}
			}},
		action("drain", "give an outbound IP no new message until resumed", true),
		action("pause", "take an outbound IP out of rotation until resumed", true),
		action("resume", "end an outbound IP's pause or drain, and its destination pauses", false),
		action("check", "check an outbound IP against the DNSBL zones now", false),
	}
}

// stateCounts writes {"active": 2, "listed": 1} as "active=2 listed=1".
func stateCounts(m map[ippool.State]int) string {
	var parts []string
	for s, n := range m {
		parts = append(parts, string(s)+"="+strconv.Itoa(n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func showIP(e *env, ip *api.IP) error {
	if e.json {
		return printJSON(e.out, ip)
	}
	fcrdns := ip.FCrDNS.Status
	if ip.FCrDNS.Detail != "" {
		fcrdns += ": " + ip.FCrDNS.Detail
	}
	c := ip.Last24h
	pairs := [][2]string{
		{"address", ip.Address}, {"pool", ip.Pool}, {"helo", ip.HELO}, {"weight", strconv.Itoa(ip.Weight)},
		{"origin", ip.Origin}, {"added", fmtTime(ip.AddedAt)}, {"state", string(ip.State)}, {"reason", ip.Reason},
		{"since", fmtTime(ip.StateSince)}, {"last_check", fmtOptTime(ip.LastCheck)}, {"fcrdns", fcrdns},
		{"last_24h", fmt.Sprintf("sent %d, deferred %d, bounced %d, blocked %d", c.Sent, c.Deferred, c.Bounced, c.Blocked)},
	}
	if ip.HoldUntil != nil {
		pairs = append(pairs, [2]string{"hold_until", fmtOptTime(ip.HoldUntil)})
	}
	if w := ip.Warmup; w != nil {
		pairs = append(pairs, [2]string{"warmup", fmt.Sprintf("day %d of %d, %d of %d messages today", w.Day+1, w.Days, w.SentToday, w.Cap)})
	}
	kv(e.out, pairs...)
	section(e.out, "DNSBL listings", len(ip.Listings) == 0, func() {
		rows := make([][]string, len(ip.Listings))
		for i, l := range ip.Listings {
			rows[i] = []string{l.Zone, l.Code, fmtTime(l.Since), truncate(l.Reason, 60)}
		}
		table(e.out, []string{"ZONE", "CODE", "SINCE", "REASON"}, rows)
	})
	if len(ip.CheckErrors) > 0 {
		section(e.out, "Failed checks", false, func() {
			rows := make([][]string, len(ip.CheckErrors))
			for i, ce := range ip.CheckErrors {
				rows[i] = []string{ce.Zone, truncate(ce.Error, 90)}
			}
			table(e.out, []string{"ZONE", "ERROR"}, rows)
		})
	}
	section(e.out, "Paused destinations", len(ip.PausedDestinations) == 0, func() {
		rows := make([][]string, len(ip.PausedDestinations))
		for i, d := range ip.PausedDestinations {
			rows[i] = []string{d.Domain, fmtTime(d.Until), truncate(d.Reason, 70)}
		}
		table(e.out, []string{"DOMAIN", "UNTIL", "REASON"}, rows)
	})
	return nil
}
