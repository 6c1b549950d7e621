// Command msglog measures the message log's queries on a large log: it generates a log of -messages
// messages (with their recipients and delivery attempts) into a temporary SQLite database, as Easymail's
// migrations define it, then times the searches through the same code the API uses (package msglog, the
// store's read connections) and prints the median and 90th percentile of each; then it times the portal's
// pages on the same database (portal.go), with an operator's and a customer user's session, and prints the
// p50 and p99 of each.
//
// Generation loads the rows without the secondary indexes, in big multi-row INSERTs in one transaction, then
// builds the indexes, which is several times faster than inserting into them; the database is the same. Run
// it with `make bench-msglog` (5 million messages; BENCH_MSGLOG_ARGS="-messages 2000000" for a smaller log).
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite" // the "sqlite" driver, for the bulk load

	"easymail/internal/bounce"
	"easymail/internal/msglog"
	"easymail/internal/retention"
	"easymail/internal/store"
)

func main() {
	n := flag.Int("messages", 5_000_000, "messages to generate, each with 1-5 recipients and their attempts (5 million make 20.7 million rows)")
	dir := flag.String("dir", "", "directory for the database (default: a new temporary directory, removed at the end)")
	keep := flag.Bool("keep", false, "keep the database (and reuse it next time with the same -dir)")
	samples := flag.Int("samples", 200, "queries timed per kind")
	pages := flag.Int("portal-samples", 100, "requests timed per portal page and session; 0 leaves the portal out")
	budget := flag.Duration("portal-budget", 30*time.Second, "most time spent on one portal page and session (fewer samples when slower)")
	flag.Parse()
	if err := run(*n, *dir, *keep, *samples, *pages, *budget); err != nil {
		log.Fatal(err)
	}
}

func run(n int, dir string, keep bool, samples, pages int, budget time.Duration) error {
	ctx := context.Background()
	if dir == "" {
		d, err := os.MkdirTemp("", "easymail-bench-msglog-")
		if err != nil {
			return err
		}
		dir = d
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	path := filepath.Join(dir, "easymail.db")
	g := newGenerator(n)
	if _, err := os.Stat(path); err == nil && keep {
		fmt.Printf("reusing %s\n", path)
		g.replay()
	} else {
		os.Remove(path)
		if err := generate(ctx, path, g); err != nil {
			return err
		}
	}
	db, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	var rows [3]int64
	for i, t := range []string{"messages", "recipients", "attempts"} {
		if err := db.R.QueryRow(`SELECT COUNT(*) FROM ` + t).Scan(&rows[i]); err != nil {
			return err
		}
	}
	fi, _ := os.Stat(path)
	fmt.Printf("log: %d messages, %d recipients, %d attempts (%d rows), %.1f GB\n\n", rows[0], rows[1], rows[2],
		rows[0]+rows[1]+rows[2], float64(fi.Size())/1e9)
	if err := measure(ctx, db, g, samples); err != nil {
		return err
	}
	if pages < 1 {
		return nil
	}
	return measurePortal(ctx, db, g, pages, budget)
}

// generator makes the log, deterministically, and remembers samples to query.
type generator struct {
	n     int
	rnd   *rand.Rand
	start time.Time
	step  time.Duration

	// Samples, taken every sampleEvery messages.
	ids, msgIDs, rcpts, customers []string
}

const (
	customers   = 200
	addresses   = 2_000_000 // distinct recipient addresses
	smallDoms   = 5000
	sampleEvery = 9973
	pending     = 5000 // the newest messages are still in the queue
)

func newGenerator(n int) *generator {
	end := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	span := 180 * 24 * time.Hour // the retention period
	return &generator{n: n, rnd: rand.New(rand.NewPCG(7, 11)), start: end.Add(-span), step: span / time.Duration(n)}
}

// replay runs the generator without writing, to recompute the samples of a kept database.
func (g *generator) replay() {
	for i := range g.n {
		g.message(i, func(string, ...any) {})
	}
}

func (g *generator) domain() string {
	switch r := g.rnd.IntN(100); {
	case r < 35:
		return "gmail.example"
	case r < 55:
		return "outlook.example"
	case r < 65:
		return "yahoo.example"
	default:
		return fmt.Sprintf("d%d.example", g.rnd.IntN(smallDoms))
	}
}

// message produces message i's rows through emit(table, values...).
func (g *generator) message(i int, emit func(table string, v ...any)) {
	at := g.start.Add(time.Duration(i) * g.step)
	ms := store.Millis(at)
	id := fmt.Sprintf("%013X%07X", ms, i)
	cust := g.rnd.IntN(customers)
	custID := fmt.Sprintf("C%04d", cust)
	custDom := fmt.Sprintf("cust%d.example", cust)
	sender := fmt.Sprintf("user%d@%s", g.rnd.IntN(20), custDom)
	msgID := fmt.Sprintf("<%s.%d@%s>", id, g.rnd.Uint32(), custDom)
	isPending := i >= g.n-pending
	status, done := "delivered", any(ms+2000)
	if isPending {
		status, done = "deferred", nil
	}
	nr := 1
	switch r := g.rnd.IntN(10); {
	case r >= 9:
		nr = 3 + g.rnd.IntN(3)
	case r >= 7:
		nr = 2
	}
	type rc struct{ addr, dom, status, class string }
	rs := make([]rc, nr)
	bounced := 0
	for k := range rs {
		dom := g.domain()
		rs[k] = rc{addr: fmt.Sprintf("r%d@%s", g.rnd.IntN(addresses), dom), dom: dom, status: "delivered"}
		switch {
		case isPending && g.rnd.IntN(3) == 0:
			rs[k].status, rs[k].class = "deferred", "timeout"
		case isPending:
			rs[k].status = "queued"
		case g.rnd.IntN(100) < 4:
			rs[k].status = "bounced"
			rs[k].class = []string{bounce.BadMailbox, bounce.MailboxFull, bounce.Policy, bounce.Spam, bounce.Reputation}[g.rnd.IntN(5)]
			bounced++
		}
	}
	if bounced == nr && !isPending {
		status = "bounced"
	}
	if isPending {
		status = "queued"
		for _, r := range rs {
			if r.status == "deferred" {
				status = "deferred"
			}
		}
	}
	emit("messages", id, "node1", custID, sender, "User <"+sender+">", msgID, fmt.Sprintf("Invoice %d", i),
		2000+g.rnd.IntN(50000), "192.0.2.10", "mail."+custDom, "TLS1.3", status, ms, ms+120*3600*1000, done, custDom, "")
	for k, r := range rs {
		mx := "mx." + r.dom
		ip := fmt.Sprintf("198.51.100.%d", 1+g.rnd.IntN(8))
		attempts := 1
		if r.status == "deferred" || g.rnd.IntN(10) == 0 {
			attempts = 2
			emit("attempts", id, k, 1, ms+500, 900, "deferred", mx, "203.0.113.5", ip, "TLS1.3", 451, "4.7.1",
				"remote host "+mx+" said: 451 4.7.1 Greylisted, try again later", bounce.Policy)
		}
		code, enh, reply, outcome := 250, "2.0.0", "Delivered", "delivered"
		switch r.status {
		case "bounced":
			code, enh, reply, outcome = 550, "5.1.1", "remote host "+mx+" said: 550 5.1.1 <"+r.addr+">: User unknown", "bounced"
		case "deferred":
			code, enh, reply, outcome = 451, "4.4.1", "No answer from remote host "+mx+" to RCPT TO", "deferred"
		}
		if r.status != "queued" {
			emit("attempts", id, k, attempts, ms+1500, 350, outcome, mx, "203.0.113.5", ip, "TLS1.3", code, enh, reply, r.class)
		} else {
			attempts, code, enh, reply, mx, ip = 0, 0, "", "", "", ""
		}
		emit("recipients", id, k, r.addr, r.dom, r.status, attempts, ms+60000, code, enh, reply, mx, ip, r.class, ms+2000)
	}
	if i%sampleEvery == 0 {
		g.ids = append(g.ids, id)
		g.msgIDs = append(g.msgIDs, msgID)
		g.rcpts = append(g.rcpts, rs[0].addr)
		g.customers = append(g.customers, custID)
	}
}

var columns = map[string]string{
	"messages": `id, node_id, customer_id, sender, header_from, message_id, subject, size, client_ip, helo, tls, status,
		received_at, expires_at, done_at, from_domain, verdict`,
	"recipients": `message_id, idx, address, domain, status, attempts, next_attempt_at, last_code, last_enhanced, last_reply,
		remote_mx, outbound_ip, bounce_class, updated_at`,
	"attempts": `message_id, rcpt_idx, attempt, started_at, duration_ms, outcome, remote_mx, remote_ip, outbound_ip, tls, code,
		enhanced, reply, bounce_class`,
}

// batchRows is the rows per INSERT statement.
const batchRows = 200

// generate creates the database with Easymail's migrations, then bulk-loads the log.
func generate(ctx context.Context, path string, g *generator) error {
	start := time.Now()
	db, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)"+
		"&_pragma=cache_size(-1000000)&_pragma=temp_store(MEMORY)&_pragma=foreign_keys(0)")
	if err != nil {
		return err
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)

	// The secondary indexes are dropped and built again after the load.
	var indexes []string
	rows, err := raw.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
		AND tbl_name IN ('messages', 'recipients', 'attempts')`)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			rows.Close()
			return err
		}
		names, indexes = append(names, name), append(indexes, def)
	}
	rows.Close()
	for _, name := range names {
		if _, err := raw.ExecContext(ctx, `DROP INDEX `+name); err != nil {
			return err
		}
	}

	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	w := &bulk{tx: tx, pending: map[string][]any{}, stmts: map[string]*sql.Stmt{}, counts: map[string]int{}}
	// The rows are made in another goroutine while SQLite writes, a chunk of messages at a time.
	type row struct {
		table string
		v     []any
	}
	const chunk = 2000
	chunks := make(chan []row, 8)
	go func() {
		defer close(chunks)
		var rows []row
		for i := range g.n {
			g.message(i, func(t string, v ...any) { rows = append(rows, row{t, v}) })
			if (i+1)%chunk == 0 || i == g.n-1 {
				chunks <- rows
				rows = nil
			}
		}
	}()
	written := 0
	for rows := range chunks {
		for _, r := range rows {
			w.add(r.table, r.v...)
		}
		if w.err != nil {
			tx.Rollback()
			for range chunks {
			}
			return w.err
		}
		before := written
		written += chunk
		if written/500_000 != before/500_000 {
			fmt.Printf("  %d messages written (%s)\n", min(written, g.n), time.Since(start).Round(time.Second))
		}
	}
	for t := range columns {
		w.flush(t, len(w.pending[t])/strings.Count(columns[t]+",", ","))
	}
	if w.err != nil {
		tx.Rollback()
		return w.err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	loaded := time.Since(start)
	for _, def := range indexes {
		if _, err := raw.ExecContext(ctx, def); err != nil {
			return fmt.Errorf("%s: %w", def, err)
		}
	}
	if _, err := raw.ExecContext(ctx, `PRAGMA journal_mode = WAL`); err != nil {
		return err
	}
	fmt.Printf("generated %d messages, %d recipients, %d attempts: rows loaded in %s, %d indexes built in %s\n",
		w.counts["messages"], w.counts["recipients"], w.counts["attempts"], loaded.Round(time.Second), len(indexes),
		(time.Since(start) - loaded).Round(time.Second))
	return nil
}

// bulk buffers rows per table and writes them batchRows at a time with one multi-row INSERT.
type bulk struct {
	tx      *sql.Tx
	pending map[string][]any
	stmts   map[string]*sql.Stmt
	counts  map[string]int
	err     error
}

func (b *bulk) add(table string, v ...any) {
	b.pending[table] = append(b.pending[table], v...)
	b.counts[table]++
	if len(b.pending[table]) == batchRows*len(v) {
		b.flush(table, batchRows)
	}
}

func (b *bulk) flush(table string, n int) {
	if b.err != nil || n == 0 {
		return
	}
	cols := strings.Count(columns[table]+",", ",")
	var q string
	st := b.stmts[table]
	if n != batchRows || st == nil {
		row := "(?" + strings.Repeat(", ?", cols-1) + ")"
		q = "INSERT INTO " + table + " (" + columns[table] + ") VALUES " + row + strings.Repeat(", "+row, n-1)
	}
	var err error
	switch {
	case n == batchRows && st == nil:
		if st, err = b.tx.Prepare(q); err == nil {
			b.stmts[table] = st
			_, err = st.Exec(b.pending[table]...)
		}
	case n == batchRows:
		_, err = st.Exec(b.pending[table]...)
	default:
		_, err = b.tx.Exec(q, b.pending[table]...)
	}
	if err != nil {
		b.err = fmt.Errorf("insert into %s: %w", table, err)
	}
	b.pending[table] = b.pending[table][:0]
}

// measure times each kind of query over the samples and prints the median and 90th percentile.
func measure(ctx context.Context, db *store.DB, g *generator, samples int) error {
	pick := func(s []string, i int) string { return s[(i*7919)%len(s)] }
	last := g.start.Add(time.Duration(g.n) * g.step)
	subjects := &retention.Subjects{DB: db, Suppressions: bounce.NewList(bounce.ListOptions{DB: db, TTL: 720 * time.Hour})}
	collector := msglog.NewCollector(db, "node1")
	kinds := []struct {
		name string
		n    int
		fn   func(i int) (int, error)
	}{
		{"trace by Message-ID (search + trace)", samples, func(i int) (int, error) {
			l, err := msglog.Search(ctx, db, msglog.Filter{MessageID: pick(g.msgIDs, i)})
			if err != nil || len(l) != 1 {
				return 0, fmt.Errorf("message-id search: %d results, %v", len(l), err)
			}
			t, err := msglog.Trace(ctx, db, l[0].ID)
			if err != nil {
				return 0, err
			}
			return len(t.Attempts), nil
		}},
		{"search by recipient address (page of 100)", samples, func(i int) (int, error) {
			l, err := msglog.Search(ctx, db, msglog.Filter{Recipient: pick(g.rcpts, i)})
			if err == nil && len(l) == 0 {
				err = fmt.Errorf("recipient %s: nothing found", pick(g.rcpts, i))
			}
			return len(l), err
		}},
		{"search by recipient address, case-insensitive", samples, func(i int) (int, error) {
			l, err := msglog.Search(ctx, db, msglog.Filter{Recipient: strings.ToUpper(pick(g.rcpts, i))})
			return len(l), err
		}},
		{"search by common recipient domain (page of 100)", samples / 4, func(i int) (int, error) {
			l, err := msglog.Search(ctx, db, msglog.Filter{Domain: "gmail.example", Before: pick(g.ids, i)})
			return len(l), err
		}},
		{"search by rare recipient domain (page of 100)", samples / 4, func(i int) (int, error) {
			l, err := msglog.Search(ctx, db, msglog.Filter{Domain: fmt.Sprintf("d%d.example", (i*37)%smallDoms)})
			return len(l), err
		}},
		{"search by customer, last day (page of 100)", samples / 4, func(i int) (int, error) {
			l, err := msglog.Search(ctx, db, msglog.Filter{Customer: pick(g.customers, i), Since: last.Add(-24 * time.Hour)})
			return len(l), err
		}},
		{"search by sender address (page of 100)", samples / 4, func(i int) (int, error) {
			l, err := msglog.Search(ctx, db, msglog.Filter{Sender: fmt.Sprintf("user%d@cust%d.example", i%20, i%customers)})
			return len(l), err
		}},
		{"search by bounce class (page of 100)", samples / 4, func(i int) (int, error) {
			l, err := msglog.Search(ctx, db, msglog.Filter{BounceClass: bounce.BadMailbox})
			return len(l), err
		}},
		{"queue list (oldest 100 waiting)", samples / 4, func(i int) (int, error) {
			l, err := msglog.Queue(ctx, db, "", 100)
			return len(l), err
		}},
		{"queue metrics scrape", samples / 4, func(i int) (int, error) {
			ch := make(chan prometheus.Metric, 64)
			go func() { collector.Collect(ch); close(ch) }()
			k := 0
			for range ch {
				k++
			}
			return k, nil
		}},
		{"statistics: one customer, one day, hourly", samples / 10, func(i int) (int, error) {
			s, err := msglog.ComputeStats(ctx, db, msglog.StatsFilter{Customer: pick(g.customers, i), Since: last.Add(-24 * time.Hour), Until: last}, last)
			if err != nil {
				return 0, err
			}
			return int(s.Series[0].Total.Received), nil
		}},
		{"statistics: all customers, one day, by destination", 5, func(i int) (int, error) {
			s, err := msglog.ComputeStats(ctx, db, msglog.StatsFilter{Group: msglog.GroupDestination, Since: last.Add(-24 * time.Hour), Until: last}, last)
			if err != nil {
				return 0, err
			}
			return len(s.Series), nil
		}},
		{"CSV export, one customer, one day", 5, func(i int) (int, error) {
			return msglog.ExportCSV(ctx, db, msglog.Filter{Customer: pick(g.customers, i), Since: last.Add(-24 * time.Hour)}, io.Discard)
		}},
		{"data-subject export (scans header From)", 3, func(i int) (int, error) {
			var cw countingWriter
			err := subjects.WriteExport(ctx, pick(g.rcpts, i), "bench", &cw)
			return int(cw), err
		}},
	}
	fmt.Printf("%-52s %8s %10s %10s\n", "query", "samples", "median", "p90")
	for _, k := range kinds {
		if k.n < 1 {
			k.n = 1
		}
		// One untimed run warms the caches for this kind of query.
		if _, err := k.fn(k.n); err != nil {
			return fmt.Errorf("%s: %w", k.name, err)
		}
		var d []time.Duration
		for i := range k.n {
			t := time.Now()
			if _, err := k.fn(i); err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
			d = append(d, time.Since(t))
		}
		sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
		fmt.Printf("%-52s %8d %10s %10s\n", k.name, k.n, round(d[len(d)/2]), round(d[len(d)*9/10]))
	}
	return nil
}

func round(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

type countingWriter int64

func (c *countingWriter) Write(b []byte) (int, error) {
	*c += countingWriter(len(b))
	return len(b), nil
}
