package quarantine

import (
	"time"

	"easymail/internal/scan"
)

// Entry is a quarantined message.
type Entry struct {
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

// Message is a quarantined message with its header, verdicts and a safe text preview.
type Message struct {
	Entry
	// Header is the message's header section as received (after the relay's clean-up).
	Header string `json:"header"`
	// Preview is the start of the first text part, decoded, with control characters and HTML markup
	// removed; never more than 2 KiB.
	Preview string       `json:"preview"`
	Scan    *scan.Report `json:"scan"`
}

// Action is the answer to a release or delete.
type Action struct {
	ID     string `json:"id"`
	Action string `json:"action"`
}

// Infected reports whether a quarantined message was found to carry a virus: its verdict, or any scanner's
// (a message quarantined first for a content rule may carry a virus too).
func Infected(m *Message) bool {
	if m.Verdict == scan.ResultVirus {
		return true
	}
	if m.Scan != nil {
		for _, v := range m.Scan.Verdicts {
			if v.Result == scan.ResultVirus {
				return true
			}
		}
	}
	return false
}
