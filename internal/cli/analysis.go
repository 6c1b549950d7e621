package cli

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"easymail/internal/api"
)

// messageFlags declares the filters of `messages search` and `messages export` on fs, into q.
func messageFlags(fs *flag.FlagSet, q *api.MessageQuery, limitUsage string) {
	fs.StringVar(&q.Sender, "sender", "", "envelope sender address or domain")
	fs.StringVar(&q.Recipient, "recipient", "", "recipient address or domain")
	fs.StringVar(&q.Domain, "domain", "", "recipient domain")
	fs.StringVar(&q.MessageID, "message-id", "", "Message-ID header")
	fs.StringVar(&q.QueueID, "queue-id", "", "queue id")
	fs.StringVar(&q.Status, "status", "", "message status")
	fs.StringVar(&q.Customer, "customer", "", "customer id")
	fs.StringVar(&q.OutboundIP, "outbound-ip", "", "outbound IP of a recipient's last attempt")
	fs.StringVar(&q.RemoteMX, "remote-mx", "", "remote MX host of a recipient's last attempt")
	fs.StringVar(&q.Verdict, "verdict", "", "scan verdict")
	fs.StringVar(&q.BounceClass, "bounce-class", "", "bounce class of a recipient's last failure")
	fs.IntVar(&q.Limit, "limit", 0, limitUsage)
	fs.StringVar(&q.Before, "before", "", "paging: only messages older than this message id")
	timeFlag(fs, &q.Since, "since", "received at or after this time")
	timeFlag(fs, &q.Until, "until", "received before this time")
}

// timeFlag declares a time flag: RFC 3339, a date, or a duration back from now.
func timeFlag(fs *flag.FlagSet, dst *time.Time, name, usage string) {
	fs.Func(name, usage, func(s string) error {
		t, err := parseTimeArg(s, time.Now())
		*dst = t
		return err
	})
}

const messageFilterHelp = "Sender and recipient are addresses, or domains for every address at them; addresses match\n" +
	"without regard to case. Times are RFC 3339 (2006-01-02T15:04:05Z), dates (2006-01-02) or durations back from\n" +
	"now (24h). Status is one of queued, deferred, delivered, bounced, rejected, quarantined, held, deleted, lost. Bounce classes:\n" +
	"bad-mailbox, bad-domain, mailbox-full, policy, spam, reputation, tls, dns, timeout, other. The recipient\n" +
	"filters (--recipient, --domain, --outbound-ip, --remote-mx, --bounce-class) must hold for one same recipient.\n" +
	"Filters: --customer, --sender, --recipient, --domain, --message-id, --queue-id, --status, --outbound-ip,\n" +
	"--remote-mx, --verdict, --bounce-class, --since, --until."

func analysisCommands() []*command {
	return []*command{
		{name: "messages export", args: "[--csv] [filters of messages search] [--limit N]",
			summary: "export the message log as CSV, one row per recipient, streamed",
			help: messageFilterHelp + "\nWithout --limit every matching message is exported. Cells starting with = + - @ get a leading\n" +
				"apostrophe, so that a spreadsheet does not run them.",
			setup: func(fs *flag.FlagSet) runFunc {
				var q api.MessageQuery
				csv := fs.Bool("csv", true, "write CSV (the export format)")
				messageFlags(fs, &q, "at most this many messages (default: all)")
				return func(ctx context.Context, e *env, _ []string) error {
					if !*csv || e.json {
						return usagef("the export is CSV; use 'messages search --json' for JSON")
					}
					return e.client.ExportMessagesCSV(ctx, q, e.out)
				}
			}},
		{name: "stats", args: "[--customer C] [--domain D] [--destination D] [--bucket hour|day] [--group G] [--since T] [--until T]",
			summary: "traffic statistics over time: received, delivered, deferred, bounced by class, latency",
			help: "Messages are counted in the bucket of their reception. --domain is a sending domain, --destination a\n" +
				"recipient domain; --group splits the figures by customer, domain or destination. The default range is the\n" +
				"last 24 hours (hourly buckets) or 30 days (daily buckets). Empty buckets are not printed.",
			setup: func(fs *flag.FlagSet) runFunc {
				var q api.StatsQuery
				fs.StringVar(&q.Customer, "customer", "", "customer id")
				fs.StringVar(&q.Domain, "domain", "", "sending domain")
				fs.StringVar(&q.Destination, "destination", "", "recipient domain")
				fs.StringVar(&q.Bucket, "bucket", "", "hour (default) or day")
				fs.StringVar(&q.Group, "group", "", "split by customer, domain or destination")
				timeFlag(fs, &q.Since, "since", "from this time")
				timeFlag(fs, &q.Until, "until", "up to this time")
				return func(ctx context.Context, e *env, _ []string) error {
					s, err := e.client.Stats(ctx, q)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, s)
					}
					printStats(e, s)
					return nil
				}
			}},
		{name: "suppression list", args: "CUSTOMER", nargs: 1, summary: "list a customer's suppressed recipients",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					list, err := e.client.ListSuppressions(ctx, a[0])
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, s := range list {
						rows[i] = []string{s.Address, s.Source, fmtTime(s.CreatedAt), fmtTime(s.ExpiresAt), s.QueueID, truncate(s.Reason, 60)}
					}
					table(e.out, []string{"ADDRESS", "SOURCE", "CREATED", "EXPIRES", "QUEUE ID", "REASON"}, rows)
					return nil
				}
			}},
		{name: "suppression add", args: "CUSTOMER ADDRESS [--reason R] [--expires T]", nargs: 2,
			summary: "suppress a recipient for a customer: its mail to it is refused at RCPT (550 5.1.1)",
			help:    "--expires is an RFC 3339 time, a date, or a duration from now (720h); default: suppression.ttl from now.",
			setup: func(fs *flag.FlagSet) runFunc {
				reason := fs.String("reason", "", "why (shown in the refusal)")
				expires := fs.String("expires", "", "when the suppression ends")
				return func(ctx context.Context, e *env, a []string) error {
					in := api.SuppressionRequest{Address: a[1], Reason: *reason}
					if *expires != "" {
						t, err := parseFutureArg(*expires, time.Now())
						if err != nil {
							return usagef("--expires: %v", err)
						}
						in.ExpiresAt = &t
					}
					s, err := e.client.AddSuppression(ctx, a[0], in)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, s)
					}
					return done(e, fmt.Sprintf("%s suppressed for %s until %s", s.Address, s.CustomerID, fmtTime(s.ExpiresAt)))
				}
			}},
		{name: "suppression remove", args: "CUSTOMER ADDRESS", nargs: 2, summary: "take a recipient off a customer's suppression list",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					if err := e.client.RemoveSuppression(ctx, a[0], a[1]); err != nil {
						return err
					}
					return done(e, a[1]+" is no longer suppressed for "+a[0])
				}
			}},
		{name: "data-subject export", args: "ADDRESS", nargs: 1,
			summary: "export every record naming an e-mail address (JSON; operators only)",
			help: "The export holds the customers whose contact the address is, its suppression entries, the messages it\n" +
				"sent (with all recipients and attempts) and those it received (with its own entries only).",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					return e.client.ExportDataSubject(ctx, a[0], e.out)
				}
			}},
		{name: "data-subject erase", args: "ADDRESS --yes", nargs: 1,
			summary: "erase every record naming an e-mail address (operators only; cannot be undone)",
			help: "Messages whose only recipient is the address are deleted; from the others, its recipient entries are\n" +
				"deleted, and its sender and header From are blanked. Messages still being delivered are left: erase\n" +
				"again once they are finished. Customer contacts that are the address are blanked.",
			setup: func(fs *flag.FlagSet) runFunc {
				yes := fs.Bool("yes", false, "confirm the erasure")
				return func(ctx context.Context, e *env, a []string) error {
					if !*yes {
						return usagef("erasure cannot be undone: add --yes to confirm")
					}
					r, err := e.client.EraseDataSubject(ctx, a[0])
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, r)
					}
					kv(e.out,
						[2]string{"messages deleted", strconv.FormatInt(r.MessagesDeleted, 10)},
						[2]string{"messages blanked", strconv.FormatInt(r.MessagesBlanked, 10)},
						[2]string{"recipients deleted", strconv.FormatInt(r.RecipientsDeleted, 10)},
						[2]string{"attempts deleted", strconv.FormatInt(r.AttemptsDeleted, 10)},
						[2]string{"suppressions deleted", strconv.FormatInt(r.SuppressionsDeleted, 10)},
						[2]string{"contacts blanked", strings.Join(r.ContactsBlanked, " ")},
						[2]string{"still in the queue", strings.Join(r.MessagesPending, " ")})
					return nil
				}
			}},
	}
}

// parseFutureArg reads an RFC 3339 time, a date, or a duration after now.
func parseFutureArg(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2006-01-02T15:04:05Z), a date (2006-01-02) or a duration (720h)", s)
}

// printStats writes a table of the non-empty buckets of every series, and each series' total.
func printStats(e *env, s *api.Stats) {
	header := []string{"BUCKET", "RECEIVED", "RCPTS", "DELIVERED", "DEFERRED", "BOUNCED", "DELETED", "LOST", "REJECTED", "QUARANT.", "PENDING",
		"P50", "P90", "P99", "BOUNCES BY CLASS"}
	if s.Group != "" {
		header = append([]string{strings.ToUpper(s.Group)}, header...)
	}
	layout := "2006-01-02 15:04"
	if s.Bucket == "day" {
		layout = time.DateOnly
	}
	var rows [][]string
	row := func(key, label string, c api.StatCounts) {
		r := []string{label, n(c.Received), n(c.Recipients), n(c.Delivered), n(c.Deferred), n(c.Bounced), n(c.Deleted), n(c.Lost), n(c.Rejected),
			n(c.Quarantined), n(c.Pending), secs(c.Latency.P50), secs(c.Latency.P90), secs(c.Latency.P99), classes(c.BouncedByClass)}
		if s.Group != "" {
			r = append([]string{key}, r...)
		}
		rows = append(rows, r)
	}
	for _, sr := range s.Series {
		for _, b := range sr.Buckets {
			if b.Received+b.Rejected+b.Recipients == 0 {
				continue
			}
			row(sr.Key, b.Start.UTC().Format(layout), b.StatCounts)
		}
		row(sr.Key, "total", sr.Total)
	}
	table(e.out, header, rows)
}

func n(v int64) string { return strconv.FormatInt(v, 10) }

func secs(v float64) string {
	if v == 0 {
		return ""
	}
	return (time.Duration(v * float64(time.Second))).Round(time.Millisecond).String()
}

func classes(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
