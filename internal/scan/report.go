package scan

import (
	"easymail/internal/contentrules"
)

// Verdict is what one scanner said about a message, as the scan report keeps it.
type Verdict struct {
	// Scanner is clamd or rspamd.
	Scanner string `json:"scanner"`
	// Result is clean, virus, spam or error.
	Result string `json:"result"`
	// Name is the virus name (clamd).
	Name string `json:"name,omitempty"`
	// Score and Action are rspamd's score and action; Symbols its symbols, by name.
	Score   float64  `json:"score,omitempty"`
	Action  string   `json:"action,omitempty"`
	Symbols []string `json:"symbols,omitempty"`
	// Error is the failure of a scanner that gave no verdict.
	Error string `json:"error,omitempty"`
	// Millis is how long the scan took.
	Millis int64 `json:"ms"`
}

// Report is the result of scanning one message, kept in the message log.
type Report struct {
	// Verdict sums it up: clean, tagged, spam, virus, rule, bypassed.
	Verdict string `json:"verdict"`
	// Action is what was done: accept, tag, quarantine, reject or tempfail.
	Action string `json:"action"`
	// Reason is the text given to the client (with reject, quarantine and tempfail).
	Reason   string             `json:"reason,omitempty"`
	Verdicts []Verdict          `json:"verdicts"`
	Rules    []contentrules.Hit `json:"rules,omitempty"`
}
