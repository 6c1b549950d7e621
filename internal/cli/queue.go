package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"easymail/internal/api"
)

func queueCommands() []*command {
	// action runs op on one message, or the bulk action on the messages a filter matches. What it says is
	// only printed when the API did it (a verb that would do nothing, such as a retry of a held message, is
	// answered 409 and the command fails with the API's explanation).
	action := func(verb, summary string, say func(id string) string, op func(c *api.Client, ctx context.Context, id string) error) *command {
		return &command{name: "queue " + verb, args: "ID | --all | FILTERS [--yes]", nargs: -1, summary: summary,
			help: "With --all, or with filters instead of an ID, it acts on every queued message the filters match, each\n" +
				"under the same rules as one message (messages it leaves alone are counted, with the reason). It says\n" +
				"how many match and asks for confirmation on a terminal; elsewhere --yes is required (exit 2 without).\n" +
				queueFilterHelp,
			setup: func(fs *flag.FlagSet) runFunc {
				var qf queueFlags
				qf.register(fs)
				all := fs.Bool("all", false, "every message of the queue")
				yes := fs.Bool("yes", false, "do not ask for confirmation")
				return func(ctx context.Context, e *env, a []string) error {
					f, err := qf.filter()
					if err != nil {
						return err
					}
					switch {
					case len(a) > 1:
						return usagef("takes at most one message ID, got %d", len(a))
					case len(a) == 1 && (*all || f != (api.QueueFilter{})):
						return usagef("give a message ID, or --all or filters, not both")
					case len(a) == 1:
						if err := op(e.client, ctx, a[0]); err != nil {
							return err
						}
						return done(e, say(a[0]))
					case *all && f != (api.QueueFilter{}):
						return usagef("--all is the whole queue: give it alone, or filters without it")
					case !*all && f == (api.QueueFilter{}):
						return usagef("give a message ID, --all for the whole queue, or filters (--status, --domain, ...)")
					}
					f.All = *all
					return bulk(ctx, e, verb, f, *yes)
				}
			}}
	}
	return []*command{
		{name: "queue list", args: "[FILTERS] [--format table|json|csv|ids] [--limit N] [--after ID]",
			summary: "list queued and held messages, oldest first, with a mailq-style total line",
			help: queueFilterHelp + "\nThe RECIPIENTS column shows the recipients still to deliver only. Every matching message is\n" +
				"listed (fetched 1000 at a time) unless --limit; --after ID starts after that message.",
			setup: func(fs *flag.FlagSet) runFunc {
				var qf queueFlags
				qf.register(fs)
				limit := fs.Int("limit", 0, "at most this many messages (default: all)")
				after := fs.String("after", "", "start after the message with this id (the next of a JSON page)")
				format := fs.String("format", "table", "output: table, json, csv or ids")
				return func(ctx context.Context, e *env, _ []string) error {
					f, err := qf.filter()
					if err != nil {
						return err
					}
					if *limit < 0 {
						return usagef("--limit must be positive")
					}
					form := *format
					if e.json {
						form = "json"
					}
					switch form {
					case "table", "json", "csv", "ids":
					default:
						return usagef("--format must be table, json, csv or ids, not %q", *format)
					}
					page, err := queuePages(ctx, e.client, f, *limit, *after)
					if err != nil {
						return err
					}
					return printQueue(e.out, form, page, f != (api.QueueFilter{}))
				}
			}},
		{name: "queue cat", args: "ID", nargs: 1, summary: "print a queued message's content as it is in the spool (postcat -q)",
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, e *env, a []string) error {
					return e.client.MessageContent(ctx, a[0], e.out)
				}
			}},
		{name: "queue show", args: "ID", nargs: 1, summary: "show a message with its recipients and attempts",
			setup: func(fs *flag.FlagSet) runFunc { return traceRun }},
		action("retry", "deliver a queued or deferred message's pending recipients now (not a held one: release it)",
			func(id string) string {
				return "message " + id + ": its undelivered recipients are due for delivery now"
			},
			(*api.Client).RetryMessage),
		action("hold", "hold a queued message: no delivery until released",
			func(id string) string {
				return "message " + id + " held: it is not delivered until `easymail queue release " + id + "`"
			}, (*api.Client).HoldMessage),
		action("release", "release a held message: it is due for delivery now",
			func(id string) string {
				return "message " + id + " released: its undelivered recipients are due for delivery now"
			},
			(*api.Client).ReleaseMessage),
		action("delete", "delete a message from the queue without delivering it",
			func(id string) string {
				return "message " + id + " deleted from the queue: its undelivered recipients will not be delivered, and no DSN is sent"
			}, (*api.Client).DeleteMessage),
		{name: "trace", args: "ID", nargs: 1, summary: "trace a message: its recipients and every delivery attempt",
			setup: func(fs *flag.FlagSet) runFunc { return traceRun }},
		{name: "messages search", args: "[--customer C] [--sender S] [--recipient R] [--domain D] [--status S] [--since T] [more filters] [--limit N] [--before ID]",
			summary: "search the message log, newest first",
			help:    messageFilterHelp + "\n--before ID lists the messages older than ID.",
			setup: func(fs *flag.FlagSet) runFunc {
				var q api.MessageQuery
				messageFlags(fs, &q, "at most this many messages (default 100, at most 1000)")
				return func(ctx context.Context, e *env, _ []string) error {
					list, err := e.client.SearchMessages(ctx, q)
					if err != nil {
						return err
					}
					if e.json {
						return printJSON(e.out, list)
					}
					rows := make([][]string, len(list))
					for i, m := range list {
						rows[i] = []string{m.ID, fmtTime(m.ReceivedAt), m.CustomerID, m.Status, senderText(m.Sender),
							rcptText(m.Recipients), truncate(m.Subject, 40)}
					}
					table(e.out, []string{"ID", "RECEIVED", "CUSTOMER", "STATUS", "SENDER", "RECIPIENTS", "SUBJECT"}, rows)
					return nil
				}
			}},
	}
}

// parseTimeArg reads an RFC 3339 time, a date, or a duration before now.
func parseTimeArg(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2006-01-02T15:04:05Z), a date (2006-01-02) or a duration (24h)", s)
}

func senderText(s string) string {
	if s == "" {
		return "<>"
	}
	return s
}

func rcptText(r []string) string {
	switch len(r) {
	case 0:
		return ""
	case 1:
		return r[0]
	}
	return fmt.Sprintf("%s (+%d)", r[0], len(r)-1)
}

func traceRun(ctx context.Context, e *env, a []string) error {
	t, err := e.client.Trace(ctx, a[0])
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.out, t)
	}
	m := t.Message
	pairs := [][2]string{
		{"id", m.ID}, {"customer", m.CustomerID}, {"status", m.Status}, {"sender", senderText(m.Sender)},
		{"header_from", m.HeaderFrom}, {"message_id", m.MessageID}, {"subject", m.Subject},
		{"size", strconv.FormatInt(m.Size, 10)}, {"client", strings.TrimSpace(m.ClientIP + " " + m.HELO)},
		{"tls", m.TLS}, {"received", fmtTime(m.ReceivedAt)}, {"expires", fmtTime(m.ExpiresAt)},
	}
	if m.DoneAt != nil {
		pairs = append(pairs, [2]string{"done", fmtOptTime(m.DoneAt)})
	}
	if m.Reason != "" {
		pairs = append(pairs, [2]string{"reason", m.Reason})
	}
	if m.Stage != "" {
		pairs = append(pairs, [2]string{"stage", m.Stage})
	}
	if m.IsDSN {
		pairs = append(pairs, [2]string{"dsn", "true"})
	}
	if m.Verdict != "" {
		pairs = append(pairs, [2]string{"verdict", m.Verdict})
	}
	if t.DSNFor != "" {
		pairs = append(pairs, [2]string{"dsn_for", t.DSNFor + " (the message this DSN reports on)"})
	}
	if len(t.DSNs) > 0 {
		pairs = append(pairs, [2]string{"dsns", strings.Join(t.DSNs, ", ") + " (DSNs sent about this message)"})
	}
	kv(e.out, pairs...)
	showAuthentication(e.out, m)
	showScan(e.out, m.Scan)
	section(e.out, "Recipients", len(t.Recipients) == 0, func() {
		rows := make([][]string, len(t.Recipients))
		for i, r := range t.Recipients {
			rows[i] = []string{r.Address, r.Status, strconv.Itoa(r.Attempts), r.RemoteMX, r.OutboundIP, r.BounceClass,
				outcomeText(r.LastCode, r.LastEnhanced, r.LastReply, r.LastRemoteReply)}
		}
		table(e.out, []string{"RECIPIENT", "STATUS", "ATTEMPTS", "REMOTE MX", "OUTBOUND IP", "CLASS", "LAST REPLY"}, rows)
	})
	section(e.out, "Attempts", len(t.Attempts) == 0, func() {
		rows := make([][]string, len(t.Attempts))
		for i, a := range t.Attempts {
			rows[i] = []string{fmtTime(a.StartedAt), a.Recipient, strconv.Itoa(a.Attempt), a.Outcome, a.RemoteMX,
				a.RemoteIP, a.OutboundIP, (time.Duration(a.DurationMS) * time.Millisecond).String(), tlsText(a), a.BounceClass,
				outcomeText(a.Code, a.Enhanced, a.Reply, a.RemoteReply)}
		}
		table(e.out, []string{"STARTED", "RECIPIENT", "#", "OUTCOME", "REMOTE MX", "REMOTE IP", "OUTBOUND IP", "TOOK", "TLS", "CLASS", "REPLY"}, rows)
	})
	if len(t.Timeline) > 0 {
		section(e.out, "Timeline", false, func() {
			for _, ev := range t.Timeline {
				fmt.Fprintf(e.out, "  %s  %-11s %s\n", fmtTime(ev.At), ev.Event, ev.Detail)
			}
		})
	}
	return nil
}

// showAuthentication prints the DMARC facts of a message: its From domain, Easymail's DKIM signature and
// the identifier alignments, when the message was analysed.
func showAuthentication(w io.Writer, m api.Message) {
	if m.FromDomain == "" && m.DKIMDomain == "" {
		return
	}
	section(w, "Authentication", false, func() {
		signed := "not signed"
		if m.DKIMDomain != "" {
			signed = "d=" + m.DKIMDomain + " s=" + m.DKIMSelectors
		}
		kv(w, [2]string{"from_domain", m.FromDomain}, [2]string{"dkim", signed},
			[2]string{"dkim_aligned", optBoolText(m.DKIMAligned)}, [2]string{"spf_aligned", optBoolText(m.SPFAligned)},
			[2]string{"dmarc_aligned", optBoolText(m.DMARCAligned)})
	})
}

// optBoolText is "yes", "no" or "unknown" (not analysed).
func optBoolText(b *bool) string {
	switch {
	case b == nil:
		return "unknown"
	case *b:
		return "yes"
	}
	return "no"
}

// tlsText is the TLS column of a trace: "TLS1.3 TLS_AES_128_GCM_SHA256 verified (mta-sts)", "none" for plain
// text, the failure's result type when a policy stopped the session, "-" for an attempt made before TLS was
// recorded or that reached no host.
func tlsText(a api.Attempt) string {
	if a.TLSVerify == "" {
		return "-"
	}
	s := strings.TrimSpace(a.TLSVersion + " " + a.TLSCipher + " " + a.TLSVerify)
	if a.TLSPolicy != "" && a.TLSPolicy != "none" {
		s += " (" + a.TLSPolicy + ")"
	}
	return s
}

// outcomeText is the REPLY column of a trace: the remote host's own reply, whole and as it wrote it, when one
// decided the outcome ("250 2.0.0 Ok: queued as 4BX3"); otherwise Easymail's outcome, cut to 70 characters.
// The server has already removed control characters from remote replies.
func outcomeText(code int, enhanced, text, remote string) string {
	if remote != "" {
		return remote
	}
	return truncate(replyText(code, enhanced, text), 70)
}

// replyText formats an SMTP reply: "250 2.0.0 OK".
func replyText(code int, enhanced, text string) string {
	var parts []string
	if code != 0 {
		parts = append(parts, strconv.Itoa(code))
	}
	if enhanced != "" {
		parts = append(parts, enhanced)
	}
	if text != "" {
		parts = append(parts, text)
	}
	return strings.Join(parts, " ")
}
