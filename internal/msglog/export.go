package msglog

import (
	"context"
	"database/sql"
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"

	"easymail/internal/store"
)

// CSVHeader are the columns of ExportCSV: the message's fields, then one recipient's.
var CSVHeader = []string{"queue_id", "received_at", "customer_id", "sender", "header_from", "message_id", "subject",
	"size", "status", "verdict", "done_at", "recipient", "recipient_status", "attempts", "last_code", "last_enhanced",
	"last_reply", "bounce_class", "remote_mx", "outbound_ip", "recipient_updated_at"}

// exportPage is the number of messages read per query while exporting.
const exportPage = 500

const exportColumns = `m.id, m.received_at, m.customer_id, m.sender, m.header_from, m.message_id, m.subject, m.size,
	CASE WHEN m.held = 1 THEN 'held' ELSE m.status END, m.verdict, m.done_at`

// Flusher is a writer whose buffered output can be pushed to its reader, such as an HTTP response.
type Flusher interface {
	Flush() error
}

// ExportCSV writes the messages matching f as CSV to w, newest first, one row per recipient (only the
// recipients meeting f's recipient conditions, when it has any; one row with empty recipient columns for a
// message without recipients), after the CSVHeader row. f.Limit bounds the messages written; 0 writes them
// all. The log is read a page at a time, so any size streams in bounded memory; after each page, w is flushed
// if it is a Flusher. Text cells starting with = + - @ or a tab get a leading apostrophe, so that a
// spreadsheet never runs them as formulas. It returns the number of messages written.
func ExportCSV(ctx context.Context, db *store.DB, f Filter, w io.Writer) (int, error) {
	if _, err := f.plan(); err != nil {
		return 0, err
	}
	total := f.Limit
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return 0, err
	}
	written := 0
	for total <= 0 || written < total {
		n := exportPage
		if total > 0 {
			n = min(n, total-written)
		}
		p, err := f.plan()
		if err != nil {
			return written, err
		}
		msgs, err := exportPageOf(ctx, db, p, n)
		if err != nil {
			return written, err
		}
		for _, m := range msgs {
			if len(m.rcpts) == 0 {
				m.rcpts = [][]string{make([]string, len(CSVHeader)-len(m.cells))}
			}
			for _, r := range m.rcpts {
				if err := cw.Write(SafeCSV(append(append([]string{}, m.cells...), r...))); err != nil {
					return written, err
				}
			}
		}
		written += len(msgs)
		cw.Flush()
		if err := cw.Error(); err != nil {
			return written, err
		}
		if fl, ok := w.(Flusher); ok {
			if err := fl.Flush(); err != nil {
				return written, err
			}
		}
		if len(msgs) < n {
			break
		}
		// The next page starts after the last message of this one.
		f.Before = msgs[len(msgs)-1].cells[0]
	}
	return written, nil
}

type exportMsg struct {
	cells []string
	rcpts [][]string
}

// exportPageOf reads up to n messages of p with their recipients.
func exportPageOf(ctx context.Context, db *store.DB, p *plan, n int) ([]exportMsg, error) {
	q, args, err := p.query(ctx, db, exportColumns, n)
	if err != nil {
		return nil, err
	}
	rows, err := db.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var msgs []exportMsg
	byID := map[string]int{}
	var ids []any
	for rows.Next() {
		var id, cust, sender, from, msgID, subject, status, verdict string
		var received, size int64
		var done sql.NullInt64
		if err := rows.Scan(&id, &received, &cust, &sender, &from, &msgID, &subject, &size, &status, &verdict, &done); err != nil {
			rows.Close()
			return nil, err
		}
		doneText := ""
		if done.Valid {
			doneText = csvTime(done.Int64)
		}
		byID[id] = len(msgs)
		ids = append(ids, id)
		msgs = append(msgs, exportMsg{cells: []string{id, csvTime(received), cust, sender, from, msgID, subject,
			strconv.FormatInt(size, 10), status, verdict, doneText}})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	rq := `SELECT r.message_id, r.address, r.status, r.attempts, r.last_code, r.last_enhanced, r.last_reply, r.bounce_class,
		r.remote_mx, r.outbound_ip, r.updated_at FROM recipients r WHERE r.message_id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
	rargs := ids
	if len(p.rcond) > 0 {
		rq += " AND " + strings.Join(p.rcond, " AND ")
		rargs = append(append([]any{}, ids...), p.rargs...)
	}
	rows, err = db.R.QueryContext(ctx, rq+" ORDER BY r.message_id, r.idx", rargs...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, addr, status, enh, reply, class, mx, ip string
		var attempts, code int
		var updated int64
		if err := rows.Scan(&id, &addr, &status, &attempts, &code, &enh, &reply, &class, &mx, &ip, &updated); err != nil {
			return nil, err
		}
		codeText := ""
		if code != 0 {
			codeText = strconv.Itoa(code)
		}
		i := byID[id]
		msgs[i].rcpts = append(msgs[i].rcpts, []string{addr, status, strconv.Itoa(attempts), codeText, enh, reply, class,
			mx, ip, csvTime(updated)})
	}
	return msgs, rows.Err()
}

func csvTime(ms int64) string { return store.Time(ms).Format(time.RFC3339) }
