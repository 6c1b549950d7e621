package scan

import (
	"time"

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

// The quarantine's wire types are defined here rather than in package quarantine, which imports the
// queue: the queue still imports package api, which has aliases of these, so api cannot import quarantine.

// QuarantineEntry is a quarantined message.
type QuarantineEntry struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id"`
	Sender     string    `json:"sender"`
	Recipients []string  `json:"recipients"`
	Subject    string    `json:"subject"`
	HeaderFrom string    `json:"header_from"`
	Size       int64     `json:"size"`
	Reason     string    `json:"reason"`
	Verdict    string    `json:"verdict"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// QuarantineMessage is a quarantined message with its header, verdicts and a safe text preview.
type QuarantineMessage struct {
	QuarantineEntry
	// Header is the message's header section as received (after the relay's clean-up).
	Header string `json:"header"`
	// Preview is the start of the first text part, decoded, with control characters and HTML markup
	// removed; never more than 2 KiB.
	Preview string  `json:"preview"`
	Scan    *Report `json:"scan"`
}

// QuarantineAction is the answer to a release or delete.
type QuarantineAction struct {
	ID     string `json:"id"`
	Action string `json:"action"`
}

// Infected reports whether a quarantined message was found to carry a virus: its verdict, or any scanner's
// (a message quarantined first for a content rule may carry a virus too).
func Infected(m *QuarantineMessage) bool {
	if m.Verdict == ResultVirus {
		return true
	}
	if m.Scan != nil {
		for _, v := range m.Scan.Verdicts {
			if v.Result == ResultVirus {
				return true
			}
		}
	}
	return false
}
