// Package scan is the content scanning stage of ingress: it runs the antivirus (clamd, INSTREAM over TCP
// or a unix socket) and the antispam (rspamd, HTTP /checkv2) in parallel with the content rules of package
// contentrules, under one deadline, and turns their verdicts into one decision per the customer's policy:
// accept, tag (add headers), quarantine, reject (550 5.7.1 naming the verdict), or tempfail (451 4.7.1 when a
// scanner is down and the policy does not bypass it).
//
// A scanner failure is counted in a metric, logged, and raised once as an operator event (a notice e-mail
// through the relay itself when an operator address is configured); its recovery as well. Scans of
// concurrent sessions run concurrently: nothing here is serialised except the bounded connection slots of
// each scanner.
package scan

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/contentrules"
)

// Scanner results (Answer.Result, Verdict.Result).
const (
	ResultClean = "clean"
	ResultVirus = "virus"
	ResultSpam  = "spam"
	ResultError = "error"
)

// Decisions (Outcome.Action).
const (
	Accept     = "accept"
	Tag        = contentrules.ActionTag
	Quarantine = contentrules.ActionQuarantine
	Reject     = contentrules.ActionReject
	Tempfail   = "tempfail"
)

// Envelope is what a scanner is told besides the message.
type Envelope struct {
	QueueID    string
	CustomerID string
	From       string
	Rcpts      []string
	// IP is the SMTP client's address, Helo its HELO name.
	IP   string
	Helo string
	// User is passed to rspamd as the authenticated user: the customer id.
	User string
}

// Answer is one scanner's answer, before the policy judges it (Scanner.Judge).
type Answer struct {
	Result  string
	Name    string // virus name
	Score   float64
	Action  string
	Symbols []string
	// Reason is rspamd's SMTP message, when it gives one.
	Reason string
}

// Message is the content of a message to scan: size bytes readable at any offset (the spool file, in the
// relay), so that the scanners and the content rules read it at once, each with its own reader, and none
// holds it in memory.
type Message struct {
	r    io.ReaderAt
	size int64
}

// NewMessage returns the message of size bytes in r. r must allow concurrent ReadAt calls (an *os.File or
// a *bytes.Reader does).
func NewMessage(r io.ReaderAt, size int64) Message { return Message{r: r, size: size} }

// BytesMessage returns the message in b.
func BytesMessage(b []byte) Message { return NewMessage(bytes.NewReader(b), int64(len(b))) }

// Open returns a new reader of the whole message.
func (m Message) Open() *io.SectionReader { return io.NewSectionReader(m.r, 0, m.size) }

// Size returns the size of the message in bytes.
func (m Message) Size() int64 { return m.size }

// Scanner scans one message. *Clamd and *Rspamd implement it.
type Scanner interface {
	Name() string
	// Scan reads msg through its own reader (msg.Open) and returns the answer.
	Scan(ctx context.Context, env Envelope, msg Message) (Answer, error)
	// Judge says what pol makes of an answer this scanner gave (without an error).
	Judge(a Answer, pol *ResolvedPolicy) Judgement
}

// Judgement is what a policy makes of one scanner's answer.
type Judgement struct {
	// Action is Reject, Quarantine or Tag; "" when the answer calls for nothing.
	Action string
	// Verdict (ResultVirus, ResultSpam) and Reason (the reply text) name the finding; set with Action.
	Verdict, Reason string
	// Summary is the scanner's value in the X-Easymail-Scan field: "clean", "virus", a spam score.
	Summary string
	// Headers are header fields of this scanner's to add to an accepted message (CRLF-ended), or "".
	Headers string
}

// PolicySource gives the policy of a customer. *Policies implements it.
type PolicySource interface {
	For(customerID string) *ResolvedPolicy
}

// Outcome is the decision about one message.
type Outcome struct {
	// Action is accept, tag, quarantine, reject or tempfail.
	Action string
	// Reply is the reply text (without code) for reject and tempfail.
	Reply string
	// Budget is set when the message went over a budget of the content rules' walk (contentrules.Limits)
	// and that decided the outcome: its name (decompressed_bytes, ...). The relay then refuses with
	// 552 5.3.4 rather than 550 5.7.1.
	Budget string
	// Headers are header fields to add to the message (CRLF-ended), for every accepted outcome.
	Headers string
	Report  Report
}

// Options configure an Engine.
type Options struct {
	// Scanners run on every message; none is fine (only content rules apply).
	Scanners []Scanner
	// Policies gives each customer's policy; required.
	Policies PolicySource
	// Timeout bounds the scanners' work on one message. Default: 30s.
	Timeout time.Duration
	// Notify, if not nil, is called (in its own goroutine) with an operator notice when a scanner goes
	// down and when it is back.
	Notify func(ctx context.Context, subject, body string)
	// NoticeEvery is the least time between two "down" notices of one scanner. Default: 15m.
	NoticeEvery time.Duration
	// Limits bound the content rules' walk of one message; zero fields take contentrules' defaults.
	// OverLimits is what happens to a message over them: reject (the relay answers 552 5.3.4) or
	// quarantine. Default: reject.
	Limits     contentrules.Limits
	OverLimits string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Engine runs the scanners and applies the policy. It is safe for concurrent use.
type Engine struct {
	o   Options
	log *slog.Logger
	m   *metrics
	rm  *contentrules.Metrics

	mu     sync.Mutex
	health map[string]*health
}

type health struct {
	down       bool
	since      time.Time
	lastNotice time.Time
	lastErr    string
}

// New returns an engine.
func New(o Options) *Engine {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.NoticeEvery <= 0 {
		o.NoticeEvery = 15 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.OverLimits != Quarantine {
		o.OverLimits = Reject
	}
	e := &Engine{o: o, log: o.Logger, m: newMetrics(o.Registerer), rm: contentrules.NewMetrics(o.Registerer),
		health: map[string]*health{}}
	for _, s := range o.Scanners {
		e.health[s.Name()] = &health{}
		e.m.up.WithLabelValues(s.Name()).Set(1)
	}
	return e
}

// Active tells whether the engine has anything to do for the customer: a scanner, or content rules.
func (e *Engine) Active(customerID string) bool {
	return len(e.o.Scanners) > 0 || e.o.Policies.For(customerID).Rules.Len() > 0
}

// Check scans msg (the message as the customer sent it, after the relay's header clean-up) and decides.
func (e *Engine) Check(ctx context.Context, env Envelope, msg Message) Outcome {
	pol := e.o.Policies.For(env.CustomerID)
	ctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	type result struct {
		v   Verdict
		j   Judgement
		err error
	}
	results := make([]result, len(e.o.Scanners))
	var wg sync.WaitGroup
	for i, s := range e.o.Scanners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			v, err := s.Scan(ctx, env, msg)
			d := time.Since(start)
			e.m.duration.WithLabelValues(s.Name()).Observe(d.Seconds())
			results[i] = result{err: err, v: Verdict{Scanner: s.Name(), Result: v.Result, Name: v.Name,
				Score: v.Score, Action: v.Action, Symbols: v.Symbols, Millis: d.Milliseconds()}}
			if err != nil {
				results[i].v.Result = ResultError
				results[i].v.Error = err.Error()
			} else {
				results[i].j = s.Judge(v, pol)
			}
			e.observe(s.Name(), env, err)
		}()
	}
	res := pol.Rules.Check(msg.Open(), msg.Size(), e.o.Limits)
	wg.Wait()

	hits := res.Hits
	budgetWhy := ""
	if res.Budget != "" {
		e.rm.Exceeded(res.Budget)
		budgetWhy = "Message too complex to scan: " + e.o.Limits.Describe(res.Budget)
		hits = append(hits, contentrules.Hit{Rule: "limits", Type: "budget", Action: e.o.OverLimits, Reason: budgetWhy,
			Where: res.Budget})
		e.log.Info("scan: content rules over budget", "queue_id", env.QueueID, "budget", res.Budget,
			"parts", res.Stats.Parts, "archive_entries", res.Stats.Entries, "decompressed", res.Stats.Decompressed,
			"depth", res.Stats.Depth)
	}
	rep := Report{Verdict: ResultClean, Action: Accept, Verdicts: []Verdict{}, Rules: hits}
	var rejects, quarantines, tags, failures []string
	verdictOf := map[string]string{}
	if res.Err != nil {
		// The relay's own check could not run (the spool or a scratch file failed): never bypassed.
		e.log.Error("scan: content rules failed", "queue_id", env.QueueID, "err", res.Err)
		rep.Verdicts = append(rep.Verdicts, Verdict{Scanner: "contentrules", Result: ResultError, Error: res.Err.Error()})
	}
	for _, r := range results {
		rep.Verdicts = append(rep.Verdicts, r.v)
		if r.err != nil {
			failures = append(failures, r.v.Scanner)
			continue
		}
		switch r.j.Action {
		case Reject:
			rejects = append(rejects, r.j.Reason)
		case Quarantine:
			quarantines = append(quarantines, r.j.Reason)
		case Tag:
			tags = append(tags, r.j.Reason)
		default:
			continue
		}
		verdictOf[r.j.Reason] = r.j.Verdict
	}
	for _, h := range hits {
		why := "Content refused: " + h.Reason
		if h.Type == "budget" {
			why = h.Reason
		}
		switch h.Action {
		case Reject:
			rejects = append(rejects, why)
		case Quarantine:
			quarantines = append(quarantines, why)
		default:
			tags = append(tags, why)
		}
		verdictOf[why] = "rule"
		e.m.ruleHits.WithLabelValues(h.Type, h.Action).Inc()
	}
	var hdr strings.Builder
	switch {
	case len(rejects) > 0:
		rep.Action, rep.Reason, rep.Verdict = Reject, rejects[0], verdictOf[rejects[0]]
	case res.Err != nil:
		rep.Action, rep.Verdict = Tempfail, "error"
		rep.Reason = "Content rules could not be applied; try again later"
	case len(failures) > 0 && pol.OnFailure != FailBypass:
		rep.Action, rep.Verdict = Tempfail, "error"
		rep.Reason = "Content scanner unavailable (" + strings.Join(failures, ", ") + "); try again later"
	case len(quarantines) > 0:
		rep.Action, rep.Reason, rep.Verdict = Quarantine, quarantines[0], verdictOf[quarantines[0]]
	case len(tags) > 0:
		rep.Action, rep.Verdict = Tag, "tagged"
	}
	if rep.Action != Reject && rep.Action != Tempfail {
		status := rep.Verdict
		if len(failures) > 0 {
			status = "bypassed"
			if rep.Verdict == ResultClean {
				rep.Verdict = "bypassed"
			}
		}
		fmt.Fprintf(&hdr, "X-Easymail-Scan: %s", status)
		for _, r := range results {
			if r.err != nil {
				fmt.Fprintf(&hdr, "; %s=unavailable", r.v.Scanner)
			} else {
				fmt.Fprintf(&hdr, "; %s=%s", r.v.Scanner, r.j.Summary)
			}
		}
		hdr.WriteString("\r\n")
		for _, r := range results {
			if r.err == nil {
				hdr.WriteString(r.j.Headers)
			}
		}
		for _, h := range hits {
			if h.Action == Tag {
				fmt.Fprintf(&hdr, "X-Easymail-Rule: %s: %s\r\n", oneLine(h.Rule), oneLine(h.Reason))
			}
		}
	}
	e.m.outcomes.WithLabelValues(rep.Action, rep.Verdict).Inc()
	out := Outcome{Action: rep.Action, Reply: rep.Reason, Headers: hdr.String(), Report: rep}
	if budgetWhy != "" && rep.Reason == budgetWhy {
		out.Budget = res.Budget
	}
	return out
}

// oneLine keeps a reply or header text on one line of printable characters, at most 200 of them.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "")
	}
	return s
}

// observe records a scanner's health, raising an operator event when it goes down or comes back.
func (e *Engine) observe(name string, env Envelope, err error) {
	now := time.Now()
	e.mu.Lock()
	h := e.health[name]
	var subject, body string
	switch {
	case err != nil:
		e.m.failures.WithLabelValues(name).Inc()
		h.lastErr = err.Error()
		if !h.down {
			h.down, h.since = true, now
			e.m.up.WithLabelValues(name).Set(0)
			e.log.Error("scan: scanner down", "event", "scanner_down", "scanner", name, "queue_id", env.QueueID, "err", err)
		} else {
			e.log.Warn("scan: scanner failed", "scanner", name, "queue_id", env.QueueID, "err", err)
		}
		if now.Sub(h.lastNotice) >= e.o.NoticeEvery {
			h.lastNotice = now
			subject = fmt.Sprintf("Scanner %s unavailable", name)
			body = fmt.Sprintf("The %s scanner has been failing since %s.\n\nLast error: %s\n\nMessages are answered per the "+
				"customers' failure mode: 451 4.7.1 (tempfail) or accepted and tagged X-Easymail-Scan: bypassed.\n",
				name, h.since.UTC().Format(time.RFC3339), err)
		}
	case h.down:
		h.down = false
		e.m.up.WithLabelValues(name).Set(1)
		e.log.Info("scan: scanner back", "event", "scanner_up", "scanner", name, "down_for", now.Sub(h.since).Round(time.Second))
		if !h.lastNotice.IsZero() {
			subject = fmt.Sprintf("Scanner %s back", name)
			body = fmt.Sprintf("The %s scanner answers again, after %s.\n", name, now.Sub(h.since).Round(time.Second))
		}
		h.lastNotice = time.Time{}
	}
	e.mu.Unlock()
	if subject != "" && e.o.Notify != nil {
		go e.o.Notify(context.Background(), "[easymail] "+subject, body)
	}
}

// Status returns the scanners' state: name → "" when up, or the last error.
func (e *Engine) Status() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{}
	names := make([]string, 0, len(e.health))
	for n := range e.health {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if e.health[n].down {
			out[n] = e.health[n].lastErr
		} else {
			out[n] = ""
		}
	}
	return out
}
