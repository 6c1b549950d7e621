// Package tlsrpt is the sending side of SMTP TLS Reporting (RFC 8460): it counts delivery sessions under an
// MTA-STS or DANE policy per policy domain and UTC day (successes, and failures by result type), and once a
// day is over sends each domain that publishes an _smtp._tls record its report: JSON, gzipped, by mail
// (mailto:, through Easymail's own queue) or HTTPS POST (https:).
package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"easymail/internal/delivery"
	"easymail/internal/msgid"
	"easymail/internal/mtasts"
	"easymail/internal/resolver"
	"easymail/internal/store"
)

// Mailer queues a whole message (CRLF line endings) from from to to; *queue.Queue implements it.
type Mailer interface {
	SubmitRaw(ctx context.Context, from, to string, msg []byte) (string, error)
}

// Options configures a Reporter.
type Options struct {
	DB       *store.DB
	Resolver resolver.Resolver
	Mailer   Mailer
	// HTTP posts https: reports; nil means a client with a 30 s timeout.
	HTTP *http.Client
	// Organization and Contact fill the report's organization-name and contact-info; Contact is also the
	// sender of mailed reports. Submitter is the host name in mailed reports' headers.
	Organization, Contact, Submitter string
	// Interval is how often Run flushes the counts and looks for days to report. Default: 1h.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Reporter counts sessions and sends the reports. It is safe for concurrent use.
type Reporter struct {
	o Options

	mu     sync.Mutex
	counts map[key]int64
}

// key is one row of tlsrpt_counts.
type key struct {
	day, domain, policyType, policy, mx, sending, receiving, result string
}

// New returns a Reporter.
func New(o Options) *Reporter {
	if o.Interval <= 0 {
		o.Interval = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Reporter{o: o, counts: map[key]int64{}}
}

// ReportTLS counts one session (delivery.TLSReporter). Counts are kept in memory until Flush.
func (r *Reporter) ReportTLS(s delivery.TLSSession) {
	k := key{day: r.o.Now().UTC().Format(time.DateOnly), domain: s.Domain, policyType: s.PolicyType,
		policy: strings.Join(s.Policy, "\n"), mx: s.MXHost, sending: s.SendingIP, receiving: s.ReceivingIP, result: s.Result}
	r.mu.Lock()
	r.counts[k]++
	r.mu.Unlock()
}

// Flush adds the counts kept in memory to the database.
func (r *Reporter) Flush(ctx context.Context) error {
	r.mu.Lock()
	counts := r.counts
	r.counts = map[key]int64{}
	r.mu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	err := r.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		for k, n := range counts {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tlsrpt_counts (day, policy_domain, policy_type, policy_string,
				mx_host, sending_ip, receiving_ip, result_type, sessions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (day, policy_domain, policy_type, policy_string, mx_host, sending_ip, receiving_ip, result_type)
				DO UPDATE SET sessions = sessions + excluded.sessions`,
				k.day, k.domain, k.policyType, k.policy, k.mx, k.sending, k.receiving, k.result, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Put them back for the next flush.
		r.mu.Lock()
		for k, n := range counts {
			r.counts[k] += n
		}
		r.mu.Unlock()
	}
	return err
}

// Run flushes and sends the finished days' reports every Interval until ctx ends, then flushes once more.
func (r *Reporter) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := r.Flush(context.WithoutCancel(ctx)); err != nil {
				r.o.Logger.Error("tls-rpt: flushing the counts failed", "err", err)
			}
			return
		case <-t.C:
		}
		if err := r.Flush(ctx); err != nil {
			r.o.Logger.Error("tls-rpt: flushing the counts failed", "err", err)
		}
		if _, err := r.SendDue(ctx); err != nil {
			r.o.Logger.Error("tls-rpt: sending reports failed", "err", err)
		}
	}
}

// Report is a TLS report (RFC 8460 §4).
type Report struct {
	OrganizationName string         `json:"organization-name"`
	DateRange        DateRange      `json:"date-range"`
	ContactInfo      string         `json:"contact-info"`
	ReportID         string         `json:"report-id"`
	Policies         []PolicyResult `json:"policies"`
}

// DateRange is the day a report covers.
type DateRange struct {
	Start time.Time `json:"start-datetime"`
	End   time.Time `json:"end-datetime"`
}

// PolicyResult is the sessions under one policy.
type PolicyResult struct {
	Policy         PolicyDesc      `json:"policy"`
	Summary        Summary         `json:"summary"`
	FailureDetails []FailureDetail `json:"failure-details,omitempty"`
}

// PolicyDesc describes the policy (RFC 8460 §4.4).
type PolicyDesc struct {
	Type         string   `json:"policy-type"`
	String       []string `json:"policy-string,omitempty"`
	PolicyDomain string   `json:"policy-domain"`
	MXHost       []string `json:"mx-host,omitempty"`
}

// Summary counts the sessions.
type Summary struct {
	Successful int64 `json:"total-successful-session-count"`
	Failure    int64 `json:"total-failure-session-count"`
}

// FailureDetail counts the failures of one kind with one host.
type FailureDetail struct {
	ResultType      string `json:"result-type"`
	SendingMTAIP    string `json:"sending-mta-ip,omitempty"`
	ReceivingMXHost string `json:"receiving-mx-hostname,omitempty"`
	ReceivingIP     string `json:"receiving-ip,omitempty"`
	Sessions        int64  `json:"failed-session-count"`
}

// Build makes the report of day (YYYY-MM-DD) for domain from the counts in the database.
func (r *Reporter) Build(ctx context.Context, day, domain string) (*Report, error) {
	start, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return nil, err
	}
	rows, err := r.o.DB.R.QueryContext(ctx, `SELECT policy_type, policy_string, mx_host, sending_ip, receiving_ip,
		result_type, sessions FROM tlsrpt_counts WHERE day = ? AND policy_domain = ?
		ORDER BY policy_type, policy_string, mx_host, result_type, sending_ip, receiving_ip`, day, domain)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	rep := &Report{OrganizationName: r.o.Organization, ContactInfo: r.o.Contact,
		DateRange: DateRange{Start: start.UTC(), End: start.Add(24*time.Hour - time.Second).UTC()},
		ReportID:  day + "." + domain + "@" + r.o.Submitter, Policies: []PolicyResult{}}
	byPolicy := map[string]*PolicyResult{}
	var order []string
	for rows.Next() {
		var ptype, pstr, mx, sending, receiving, result string
		var n int64
		if err := rows.Scan(&ptype, &pstr, &mx, &sending, &receiving, &result, &n); err != nil {
			return nil, err
		}
		pk := ptype + "\x00" + pstr
		p := byPolicy[pk]
		if p == nil {
			p = &PolicyResult{Policy: PolicyDesc{Type: ptype, PolicyDomain: domain}}
			if pstr != "" {
				p.Policy.String = strings.Split(pstr, "\n")
			}
			switch ptype {
			case "sts":
				if pol, err := mtasts.Parse(pstr); err == nil {
					p.Policy.MXHost = pol.MX
				}
			case "tlsa":
				p.Policy.MXHost = []string{mx}
			}
			byPolicy[pk] = p
			order = append(order, pk)
		}
		if result == "" {
			p.Summary.Successful += n
			continue
		}
		p.Summary.Failure += n
		p.FailureDetails = append(p.FailureDetails, FailureDetail{ResultType: result, SendingMTAIP: sending,
			ReceivingMXHost: mx, ReceivingIP: receiving, Sessions: n})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, pk := range order {
		rep.Policies = append(rep.Policies, *byPolicy[pk])
	}
	return rep, nil
}

// SendDue sends the report of every finished day and domain not yet reported, and returns how many were
// handled. A domain without an _smtp._tls record is recorded as such and its counts dropped.
func (r *Reporter) SendDue(ctx context.Context) (int, error) {
	today := r.o.Now().UTC().Format(time.DateOnly)
	rows, err := r.o.DB.R.QueryContext(ctx, `SELECT DISTINCT c.day, c.policy_domain FROM tlsrpt_counts c
		WHERE c.day < ? AND NOT EXISTS (SELECT 1 FROM tlsrpt_reports t WHERE t.day = c.day AND t.policy_domain = c.policy_domain)
		ORDER BY c.day, c.policy_domain`, today)
	if err != nil {
		return 0, err
	}
	type due struct{ day, domain string }
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.day, &d.domain); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, d := range list {
		if err := r.send(ctx, d.day, d.domain); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

// send reports one day of one domain to its rua addresses and records the outcome.
func (r *Reporter) send(ctx context.Context, day, domain string) error {
	rep, err := r.Build(ctx, day, domain)
	if err != nil {
		return err
	}
	ruas, lerr := r.lookupRUA(ctx, domain)
	var outcomes []string
	if lerr != nil {
		outcomes = append(outcomes, "no report address: "+lerr.Error())
	} else {
		body, err := encode(rep)
		if err != nil {
			return err
		}
		for _, rua := range ruas {
			if err := r.deliver(ctx, rua, domain, day, rep.ReportID, body); err != nil {
				r.o.Logger.Warn("tls-rpt: sending a report failed", "domain", domain, "day", day, "rua", rua, "err", err)
				outcomes = append(outcomes, rua+": "+err.Error())
			} else {
				r.o.Logger.Info("tls-rpt: report sent", "domain", domain, "day", day, "rua", rua)
				outcomes = append(outcomes, rua+": sent")
			}
		}
	}
	return r.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tlsrpt_reports (day, policy_domain, report_id, rua, outcome, sent_at)
			VALUES (?, ?, ?, ?, ?, ?)`, day, domain, rep.ReportID, strings.Join(ruas, ","), strings.Join(outcomes, "; "),
			store.Millis(r.o.Now())); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM tlsrpt_counts WHERE day = ? AND policy_domain = ?`, day, domain)
		return err
	})
}

// lookupRUA reads _smtp._tls.DOMAIN (RFC 8460 §3): "v=TLSRPTv1; rua=mailto:a@example.com,https://...".
func (r *Reporter) lookupRUA(ctx context.Context, domain string) ([]string, error) {
	txts, err := r.o.Resolver.LookupTXT(ctx, "_smtp._tls."+domain)
	if err != nil {
		return nil, err
	}
	var found []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=TLSRPTv1;") {
			found = append(found, t)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%d v=TLSRPTv1 records at _smtp._tls.%s", len(found), domain)
	}
	var ruas []string
	for _, f := range strings.Split(found[0], ";")[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		if k != "rua" {
			continue
		}
		for _, u := range strings.Split(v, ",") {
			u = strings.TrimSpace(u)
			if strings.HasPrefix(u, "mailto:") || strings.HasPrefix(u, "https://") {
				ruas = append(ruas, u)
			}
		}
	}
	if len(ruas) == 0 {
		return nil, fmt.Errorf("no mailto: or https: rua at _smtp._tls.%s", domain)
	}
	return ruas, nil
}

// encode returns the report as gzipped JSON.
func encode(rep *Report) ([]byte, error) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if err := json.NewEncoder(zw).Encode(rep); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// deliver sends one report to rua.
func (r *Reporter) deliver(ctx context.Context, rua, domain, day, id string, gz []byte) error {
	if u, ok := strings.CutPrefix(rua, "https://"); ok {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+u, bytes.NewReader(gz))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/tlsrpt+gzip") // RFC 8460 §5.4
		resp, err := r.o.HTTP.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s answered %s", rua, resp.Status)
		}
		return nil
	}
	to, err := url.PathUnescape(strings.TrimPrefix(rua, "mailto:"))
	if err != nil {
		return err
	}
	to, _, _ = strings.Cut(to, "?")
	msg, err := r.mail(to, domain, day, id, gz)
	if err != nil {
		return err
	}
	_, err = r.o.Mailer.SubmitRaw(ctx, r.o.Contact, to, msg)
	return err
}

// mail writes the report message (RFC 8460 §5.3): multipart/report of type tlsrpt, a text part and the
// gzipped JSON as application/tlsrpt+gzip.
func (r *Reporter) mail(to, domain, day, id string, gz []byte) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	text, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(text, "This is the SMTP TLS report (RFC 8460) of %s for %s, from %s.\r\n", domain, day, r.o.Submitter)
	start, _ := time.Parse(time.DateOnly, day)
	name := fmt.Sprintf("%s!%s!%d!%d!%s.json.gz", r.o.Submitter, domain, start.Unix(), start.Add(24*time.Hour-time.Second).Unix(), msgid.New())
	att, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {`application/tlsrpt+gzip; name="` + name + `"`},
		"Content-Transfer-Encoding": {"base64"},
		"Content-Disposition":       {`attachment; filename="` + name + `"`},
	})
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString(gz)
	for len(enc) > 76 {
		fmt.Fprintf(att, "%s\r\n", enc[:76])
		enc = enc[76:]
	}
	fmt.Fprintf(att, "%s\r\n", enc)
	if err := mw.Close(); err != nil {
		return nil, err
	}
	var m bytes.Buffer
	h := func(k, v string) { m.WriteString(k + ": " + v + "\r\n") }
	h("Date", r.o.Now().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	h("Message-ID", "<"+msgid.New()+"@"+r.o.Submitter+">")
	h("From", r.o.Contact)
	h("To", to)
	h("Subject", "Report Domain: "+domain+" Submitter: "+r.o.Submitter+" Report-ID: <"+id+">")
	h("TLS-Report-Domain", domain)
	h("TLS-Report-Submitter", r.o.Submitter)
	h("MIME-Version", "1.0")
	h("Content-Type", `multipart/report; report-type="tlsrpt"; boundary="`+mw.Boundary()+`"`)
	h("Auto-Submitted", "auto-generated")
	m.WriteString("\r\n")
	m.Write(body.Bytes())
	return m.Bytes(), nil
}

// Decode reads a gzipped JSON report, for tests and tools.
func Decode(gz []byte) (*Report, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.NewDecoder(io.LimitReader(zr, 16<<20)).Decode(&rep); err != nil {
		return nil, err
	}
	if rep.Policies == nil {
		return nil, errors.New("report without policies")
	}
	sort.SliceStable(rep.Policies, func(i, j int) bool { return rep.Policies[i].Policy.Type < rep.Policies[j].Policy.Type })
	return &rep, nil
}

// Sent returns the reports sent (or given up on), newest day first, at most limit; domain, when not "",
// keeps that policy domain's only.
func Sent(ctx context.Context, db *store.DB, domain string, limit int) ([]SentReport, error) {
	rows, err := db.R.QueryContext(ctx, `SELECT day, policy_domain, report_id, rua, outcome, sent_at FROM tlsrpt_reports
		WHERE ? = '' OR policy_domain = ? ORDER BY day DESC, policy_domain LIMIT ?`, domain, domain, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []SentReport{}
	for rows.Next() {
		var r SentReport
		var sent int64
		if err := rows.Scan(&r.Day, &r.Domain, &r.ReportID, &r.RUA, &r.Outcome, &sent); err != nil {
			return nil, err
		}
		r.SentAt = store.Time(sent)
		out = append(out, r)
	}
	return out, rows.Err()
}
