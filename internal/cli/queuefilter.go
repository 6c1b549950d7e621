package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"easymail/internal/api"
	"easymail/internal/config"
	"easymail/internal/msglog"
)

// queueFilterHelp describes the filters of queue list and of the bulk queue verbs.
const queueFilterHelp = `Filters (all must hold; --domain and --recipient match the recipients still to deliver):
  --status queued|deferred|held, --held (as --status held), --customer ID, --domain DOMAIN,
  --sender ADDRESS|DOMAIN, --recipient ADDRESS|DOMAIN, --older-than AGE, --younger-than AGE (AGE: 30m, 4h, 5d).`

// queueFlags are the filter flags of queue list and the bulk queue verbs.
type queueFlags struct {
	f api.QueueFilter
}

func (q *queueFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&q.f.Status, "status", "", "only messages in this state: queued, deferred or held")
	fs.BoolVar(&q.f.Held, "held", false, "only held messages")
	fs.StringVar(&q.f.Customer, "customer", "", "only this customer's messages")
	fs.StringVar(&q.f.Domain, "domain", "", "only messages with a recipient to deliver at this domain")
	fs.StringVar(&q.f.Sender, "sender", "", "only messages from this envelope sender (an address, or a domain)")
	fs.StringVar(&q.f.Recipient, "recipient", "", "only messages with this recipient to deliver (an address, or a domain)")
	fs.StringVar(&q.f.OlderThan, "older-than", "", "only messages received longer ago than this (30m, 4h, 5d)")
	fs.StringVar(&q.f.YoungerThan, "younger-than", "", "only messages received less long ago than this")
}

// filter checks the flags' values that the CLI can check itself and returns the filter.
func (q *queueFlags) filter() (api.QueueFilter, error) {
	for _, a := range [][2]string{{"older-than", q.f.OlderThan}, {"younger-than", q.f.YoungerThan}} {
		if a[1] == "" {
			continue
		}
		if d, err := config.ParseDuration(a[1]); err != nil || d < 0 {
			return q.f, usagef("--%s: %q is not an age: write a number and a unit, e.g. 30m, 4h or 5d", a[0], a[1])
		}
	}
	switch q.f.Status {
	case "", "queued", "deferred", "held":
	default:
		return q.f, usagef("--status must be queued, deferred or held, not %q", q.f.Status)
	}
	if q.f.Held && q.f.Status != "" && q.f.Status != "held" {
		return q.f, usagef("--held and --status %s contradict each other: give one", q.f.Status)
	}
	return q.f, nil
}

// queuePages fetches the queue's messages matching f after the message after, page by page, up to limit
// (0: all). The result's Total is the server's total of every match; its Next is set when limit stopped the
// listing before the end.
func queuePages(ctx context.Context, c *api.Client, f api.QueueFilter, limit int, after string) (*api.QueuePage, error) {
	const pageSize = 1000
	out := &api.QueuePage{Messages: []api.MessageSummary{}}
	for {
		n := pageSize
		if limit > 0 {
			n = min(n, limit-len(out.Messages))
		}
		p, err := c.QueuePage(ctx, f, n, after)
		if err != nil {
			return nil, err
		}
		if after == "" || len(out.Messages) == 0 {
			out.Total = p.Total
		}
		out.Messages = append(out.Messages, p.Messages...)
		out.Next = p.Next
		if p.Next == "" || limit > 0 && len(out.Messages) >= limit {
			return out, nil
		}
		after = p.Next
	}
}

// printQueue writes a queue listing in form: table (with the mailq-style total line), json, csv or ids.
func printQueue(w io.Writer, form string, p *api.QueuePage, filtered bool) error {
	switch form {
	case "json":
		return printJSON(w, p)
	case "ids":
		for _, m := range p.Messages {
			if _, err := fmt.Fprintln(w, m.ID); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"id", "customer_id", "status", "size", "received_at", "next_attempt_at", "sender", "pending", "recipients"})
		for _, m := range p.Messages {
			cw.Write(msglog.SafeCSV([]string{m.ID, m.CustomerID, m.Status, strconv.FormatInt(m.Size, 10), fmtTime(m.ReceivedAt),
				fmtOptTime(m.NextAttemptAt), m.Sender, strconv.Itoa(m.Pending), strings.Join(m.Recipients, " ")}))
		}
		cw.Flush()
		return cw.Error()
	}
	if p.Total.Messages == 0 && !filtered {
		_, err := fmt.Fprintln(w, "Mail queue is empty")
		return err
	}
	rows := make([][]string, len(p.Messages))
	for i, m := range p.Messages {
		rows[i] = []string{m.ID, m.CustomerID, m.Status, strconv.FormatInt(m.Size, 10), senderText(m.Sender),
			rcptText(m.Recipients), strconv.Itoa(m.Pending), fmtOptTime(m.NextAttemptAt), fmtTime(m.ReceivedAt)}
	}
	table(w, []string{"ID", "CUSTOMER", "STATUS", "SIZE", "SENDER", "RECIPIENTS", "PENDING", "NEXT ATTEMPT", "RECEIVED"}, rows)
	if p.Next != "" {
		fmt.Fprintf(w, "(more: easymail queue list --after %s)\n", p.Next)
	}
	_, err := fmt.Fprintln(w, totalLine(p.Total))
	return err
}

// totalLine is mailq's last line: "-- 12 Kbytes in 3 Requests."
func totalLine(t api.QueueTotal) string {
	s := "s"
	if t.Messages == 1 {
		s = ""
	}
	return fmt.Sprintf("-- %d Kbytes in %d Request%s.", (t.Size+1023)/1024, t.Messages, s)
}

// terminal returns standard input and whether it is a terminal a confirmation can be asked on (a character
// device such as /dev/null is not: it must answer the terminal ioctl); tests replace it.
var terminal = func() (io.Reader, bool) {
	_, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS)
	return os.Stdin, err == nil
}

// bulk runs the bulk action verb on the messages f matches, after saying how many match and, unless yes,
// asking (on a terminal) or refusing (elsewhere).
func bulk(ctx context.Context, e *env, verb string, f api.QueueFilter, yes bool) error {
	lf := f
	lf.All = false
	p, err := e.client.QueuePage(ctx, lf, 1, "")
	if err != nil {
		return err
	}
	n := p.Total.Messages
	if n == 0 {
		if e.json {
			return printJSON(e.out, api.BulkResult{Action: verb, Filter: f, Skipped: []api.BulkSkipped{}})
		}
		_, err := fmt.Fprintln(e.out, "no queued message matches: nothing to do")
		return err
	}
	what := fmt.Sprintf("%s %d message%s (%d Kbytes)", verb, n, plural(n), (p.Total.Size+1023)/1024)
	if !yes {
		in, tty := terminal()
		if !tty {
			return usagef("this would %s: add --yes to confirm", what)
		}
		fmt.Fprintf(e.errOut, "%s? [y/N] ", what)
		line, _ := bufio.NewReader(in).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return fmt.Errorf("not confirmed: nothing done")
		}
	}
	res, err := e.client.BulkQueue(ctx, verb, f)
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.out, res)
	}
	fmt.Fprintf(e.out, "%s: %d matched, %d changed, %d skipped\n", verb, res.Matched, res.Changed, res.Matched-res.Changed)
	for _, s := range res.Skipped {
		fmt.Fprintf(e.out, "  skipped %d: %s\n", s.Count, s.Reason)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
