package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Rspamd is an rspamd client: POST /checkv2 with the envelope in HTTP headers. Connections are kept alive
// and reused, at most MaxConns at once.
type Rspamd struct {
	url    string
	client *http.Client
}

// NewRspamd returns a client for the rspamd worker at base ("http://127.0.0.1:11333").
func NewRspamd(base string, maxConns int, dialTimeout time.Duration) (*Rspamd, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rspamd address %q: want http://host:port", base)
	}
	if maxConns <= 0 {
		maxConns = 1
	}
	if dialTimeout <= 0 {
		dialTimeout = 5 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxConnsPerHost = maxConns
	tr.MaxIdleConnsPerHost = maxConns
	tr.Proxy = nil
	tr.DialContext = (&netDialer{timeout: dialTimeout}).DialContext
	return &Rspamd{url: strings.TrimRight(base, "/") + "/checkv2", client: &http.Client{Transport: tr}}, nil
}

// Name returns "rspamd".
func (r *Rspamd) Name() string { return "rspamd" }

type rspamdReply struct {
	Score    float64                    `json:"score"`
	Action   string                     `json:"action"`
	Symbols  map[string]json.RawMessage `json:"symbols"`
	Messages struct {
		SMTP string `json:"smtp_message"`
	} `json:"messages"`
}

// Scan posts msg to /checkv2 and returns rspamd's score, action and symbols. Result is spam when rspamd's
// action is anything but "no action" (the policy decides with the score).
func (r *Rspamd) Scan(ctx context.Context, env Envelope, msg Message) (Answer, error) {
	// The body is read from the message as it is sent: nothing is copied in memory.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, msg.Open())
	if err != nil {
		return Answer{}, err
	}
	req.ContentLength = msg.Size()
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(msg.Open()), nil }
	h := req.Header
	if env.IP != "" {
		h.Set("IP", env.IP)
	}
	if env.Helo != "" {
		h.Set("Helo", headerSafe(env.Helo))
	}
	h.Set("From", headerSafe(env.From))
	for _, rc := range env.Rcpts {
		h.Add("Rcpt", headerSafe(rc))
	}
	if env.User != "" {
		h.Set("User", headerSafe(env.User))
	}
	if env.QueueID != "" {
		h.Set("Queue-Id", env.QueueID)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("rspamd: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return Answer{}, fmt.Errorf("rspamd: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Answer{}, fmt.Errorf("rspamd: HTTP %d: %.200s", resp.StatusCode, body)
	}
	var rep rspamdReply
	if err := json.Unmarshal(body, &rep); err != nil {
		return Answer{}, fmt.Errorf("rspamd: bad reply: %w", err)
	}
	v := Answer{Result: ResultClean, Score: rep.Score, Action: rep.Action, Reason: rep.Messages.SMTP}
	if rep.Action != "" && rep.Action != "no action" {
		v.Result = ResultSpam
	}
	for s := range rep.Symbols {
		v.Symbols = append(v.Symbols, s)
	}
	sort.Strings(v.Symbols)
	return v, nil
}

// Judge weighs rspamd's score against the policy's spam thresholds, the highest first: at least SpamReject
// rejects, SpamQuarantine quarantines, SpamTag tags (and adds X-Spam-Flag and X-Spam-Score); 0 turns one
// off. Its summary in X-Easymail-Scan is the score.
func (r *Rspamd) Judge(a Answer, pol *ResolvedPolicy) Judgement {
	j := Judgement{Summary: fmt.Sprintf("%.2f", a.Score)}
	if pol.SpamTag > 0 && a.Score >= pol.SpamTag {
		j.Headers = fmt.Sprintf("X-Spam-Flag: YES\r\nX-Spam-Score: %.2f\r\n", a.Score)
	}
	switch {
	case pol.SpamReject > 0 && a.Score >= pol.SpamReject:
		j.Action = Reject
	case pol.SpamQuarantine > 0 && a.Score >= pol.SpamQuarantine:
		j.Action = Quarantine
	case pol.SpamTag > 0 && a.Score >= pol.SpamTag:
		j.Action = Tag
	default:
		return j
	}
	j.Verdict, j.Reason = ResultSpam, spamReason(a)
	return j
}

// spamReason names an rspamd verdict for the reply: rspamd's own SMTP message, or its strongest symbols.
func spamReason(v Answer) string {
	what := v.Reason
	if what == "" {
		syms := v.Symbols
		if len(syms) > 3 {
			syms = syms[:3]
		}
		what = strings.Join(syms, ", ")
	}
	s := fmt.Sprintf("Spam message (score %.1f)", v.Score)
	if what != "" {
		s += ": " + oneLine(what)
	}
	return s
}

// headerSafe keeps client-supplied text from breaking an HTTP header.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}
