package msglog

import (
	"strings"
	"time"

	"easymail/internal/scan"
)

// MessageSummary is one message in a search result or in the queue. Status is the message's status, or
// "held" while the message is held.
type MessageSummary struct {
	ID         string     `json:"id"`
	CustomerID string     `json:"customer_id"`
	Sender     string     `json:"sender"`
	HeaderFrom string     `json:"header_from"`
	MessageID  string     `json:"message_id"`
	Subject    string     `json:"subject"`
	Size       int64      `json:"size"`
	Status     string     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	ReceivedAt time.Time  `json:"received_at"`
	DoneAt     *time.Time `json:"done_at,omitempty"`
	Recipients []string   `json:"recipients"`
	// Pending counts the recipients still to be delivered (queued or deferred).
	Pending int `json:"pending"`
	// NextAttemptAt is the earliest next attempt among the pending recipients.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// Stage is, for a rejected message, the SMTP stage of the refusal: mail, rcpt or data.
	Stage string `json:"stage,omitempty"`
}

// Message is the whole record of one message.
type Message struct {
	ID            string     `json:"id"`
	NodeID        string     `json:"node_id"`
	CustomerID    string     `json:"customer_id"`
	Sender        string     `json:"sender"`
	HeaderFrom    string     `json:"header_from"`
	MessageID     string     `json:"message_id"`
	Subject       string     `json:"subject"`
	Size          int64      `json:"size"`
	ClientIP      string     `json:"client_ip"`
	HELO          string     `json:"helo"`
	TLS           string     `json:"tls"`
	Status        string     `json:"status"`
	Reason        string     `json:"reason"`
	Held          bool       `json:"held"`
	IsDSN         bool       `json:"is_dsn"`
	SMTPUTF8      bool       `json:"smtputf8"`
	BodyType      string     `json:"body_type"`
	ReceivedAt    time.Time  `json:"received_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	DelayNotified bool       `json:"delay_notified"`
	DoneAt        *time.Time `json:"done_at,omitempty"`
	// FromDomain is the header From's domain; DKIMDomain the d= of Easymail's DKIM signature ("" when it
	// did not sign) and DKIMSelectors its selectors, comma-separated.
	FromDomain    string `json:"from_domain"`
	DKIMDomain    string `json:"dkim_domain"`
	DKIMSelectors string `json:"dkim_selectors"`
	// DKIMAligned, SPFAligned and DMARCAligned are the DMARC identifier alignment of the DKIM domain and of
	// the envelope sender's domain with the header From (relaxed, RFC 7489 §3.1), and their disjunction.
	// Null for a message that was not analysed (refused, or logged before the check existed).
	DKIMAligned  *bool `json:"dkim_aligned"`
	SPFAligned   *bool `json:"spf_aligned"`
	DMARCAligned *bool `json:"dmarc_aligned"`
	// Bulk is set when the message looks like bulk mail (Precedence: bulk or list, List-Id or
	// List-Unsubscribe); ListUnsubscribe when it has a List-Unsubscribe field (RFC 2369); ListUnsubscribePost
	// when it offers one-click unsubscription ("List-Unsubscribe-Post: List-Unsubscribe=One-Click" and an
	// https URI in List-Unsubscribe, RFC 8058 §3.1).
	Bulk                bool `json:"bulk"`
	ListUnsubscribe     bool `json:"list_unsubscribe"`
	ListUnsubscribePost bool `json:"list_unsubscribe_post"`
	// Verdict is the content scan verdict ("" when the message was not scanned).
	Verdict string `json:"verdict"`
	// Scan is the content scan report: each scanner's verdict and the content rules that matched (null when
	// the message was not scanned).
	Scan *scan.Report `json:"scan,omitempty"`
	// Stage is, for a rejected message, the SMTP stage of the refusal: "mail" (the sender, the size
	// declared, the customer's status), "rcpt" (that recipient) or "data" (the content); empty otherwise.
	Stage string `json:"stage,omitempty"`
}

// Recipient is one envelope recipient of a message and where its delivery stands.
type Recipient struct {
	Index         int       `json:"idx"`
	Address       string    `json:"address"`
	Domain        string    `json:"domain"`
	Status        string    `json:"status"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastCode      int       `json:"last_code"`
	LastEnhanced  string    `json:"last_enhanced"`
	LastReply     string    `json:"last_reply"`
	RemoteMX      string    `json:"remote_mx"`
	OutboundIP    string    `json:"outbound_ip"`
	UpdatedAt     time.Time `json:"updated_at"`
	// BounceClass is the class of the last failure (bad-mailbox, policy, ...; see docs/analysis.md), "" when
	// the recipient was delivered or never failed.
	BounceClass string `json:"bounce_class"`
	// LastRemoteReply is the remote host's own reply to the last attempt (Attempt.RemoteReply).
	LastRemoteReply string `json:"last_remote_reply"`
}

// Attempt is one delivery attempt for one recipient.
type Attempt struct {
	RcptIndex  int       `json:"rcpt_idx"`
	Recipient  string    `json:"recipient"`
	Attempt    int       `json:"attempt"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	Outcome    string    `json:"outcome"`
	RemoteMX   string    `json:"remote_mx"`
	RemoteIP   string    `json:"remote_ip"`
	OutboundIP string    `json:"outbound_ip"`
	TLS        string    `json:"tls"`
	Code       int       `json:"code"`
	Enhanced   string    `json:"enhanced"`
	Reply      string    `json:"reply"`
	// BounceClass is the class of the failure, "" for a delivery.
	BounceClass string `json:"bounce_class"`
	// RemoteReply is the remote host's own reply the outcome rests on, as it wrote it ("250 2.0.0 Ok: queued
	// as 4BX3"; lines joined by spaces, control characters removed, at most 1000 bytes); "" when no reply of
	// a remote host decided (no connection, DNS, a connection lost, a local error).
	RemoteReply string `json:"remote_reply"`
	// TLSVersion ("TLS1.3") and TLSCipher ("TLS_AES_128_GCM_SHA256") are the connection's, "" in plain text.
	TLSVersion string `json:"tls_version"`
	TLSCipher  string `json:"tls_cipher"`
	// TLSVerify is how the certificate was checked: none (plain text), unverified, verified (WebPKI), dane,
	// or the TLS-RPT result type of the failure that stopped the session (certificate-expired, ...).
	TLSVerify string `json:"tls_verify"`
	// TLSPolicy is the source of the TLS requirement: none, customer, destination, mta-sts or dane.
	TLSPolicy string `json:"tls_policy"`
}

// MessageTrace is the whole history of a message: the message's own fields (flattened into the object), its
// recipients and every attempt in time order.
type MessageTrace struct {
	Message
	Recipients []Recipient `json:"recipients"`
	Attempts   []Attempt   `json:"attempts"`
	// DSNFor is, for a DSN, the queue id of the message it reports on; DSNs the queue ids of the DSNs sent
	// about this message (failure and delay notices), oldest first.
	DSNFor string   `json:"dsn_for,omitempty"`
	DSNs   []string `json:"dsns"`
	// Timeline is the message's history in time order, for people: received, scanned, signed, each
	// attempt, each DSN, the outcome.
	Timeline []TimelineEvent `json:"timeline"`
}

// TimelineEvent is one step of a message's history.
type TimelineEvent struct {
	At time.Time `json:"at"`
	// Event is received, rejected, quarantined, scanned, signed, attempt, dsn or one of the final statuses
	// (delivered, bounced, expired, deleted, lost...).
	Event  string `json:"event"`
	Detail string `json:"detail"`
}

// Page is one page of GET /queue: the messages, oldest first, and the totals of every message the
// filter matches (all pages).
type Page struct {
	Messages []MessageSummary `json:"messages"`
	// Next, when more messages match, is the cursor of the next page: pass it as after.
	Next string `json:"next,omitempty"`
	// Total counts the matching messages and their size in bytes, every page included.
	Total QueueTotal `json:"total"`
}

// QueueTotal is the count and size of the messages a queue filter matches.
type QueueTotal struct {
	Messages int   `json:"messages"`
	Size     int64 `json:"size"`
}

// SafeCSV neutralises the CSV cells a spreadsheet would take for a formula (OWASP "CSV injection"): those
// starting with = + - @, a tab or a carriage return get a leading apostrophe. It changes cells in place and
// returns them.
func SafeCSV(cells []string) []string {
	for i, c := range cells {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			cells[i] = "'" + c
		}
	}
	return cells
}

// Stats is the answer of GET /stats: the buckets of each group, oldest first. Messages are counted in the
// bucket of their reception (a cohort): a message received at 10:59 and delivered at 11:02 is in the 10:00
// bucket.
type Stats struct {
	Bucket string       `json:"bucket"`
	Since  time.Time    `json:"since"`
	Until  time.Time    `json:"until"`
	Group  string       `json:"group,omitempty"`
	Series []StatSeries `json:"series"`
}

// StatSeries is the buckets of one group (Key is "" when there is no grouping).
type StatSeries struct {
	Key     string       `json:"key"`
	Buckets []StatBucket `json:"buckets"`
	Total   StatCounts   `json:"total"`
}

// StatBucket is one time bucket of a series.
type StatBucket struct {
	Start time.Time `json:"start"`
	StatCounts
}

// StatCounts are the figures of a bucket (or of a whole series).
type StatCounts struct {
	// Received counts the messages accepted (not rejected); Recipients their recipients.
	Received   int64 `json:"received"`
	Recipients int64 `json:"recipients"`
	// Delivered and Bounced count recipients by final outcome; Pending those still queued or deferred.
	Delivered int64 `json:"delivered"`
	Bounced   int64 `json:"bounced"`
	Pending   int64 `json:"pending"`
	// Deleted counts the recipients an operator deleted from the queue, Lost those whose content was missing
	// from the spool (their sender got a DSN): final, but not bounces.
	Deleted int64 `json:"deleted"`
	Lost    int64 `json:"lost"`
	// Deferred counts temporary failures: the attempts that were deferred.
	Deferred int64 `json:"deferred"`
	// BouncedByClass splits Bounced by bounce class (absent when nothing bounced).
	BouncedByClass map[string]int64 `json:"bounced_by_class,omitempty"`
	// Rejected counts the messages refused during the SMTP session; Quarantined those quarantined.
	Rejected    int64 `json:"rejected"`
	Quarantined int64 `json:"quarantined"`
	// Latency is the time from reception to delivery of the delivered recipients.
	Latency Latency `json:"latency"`
}

// Latency are percentiles of delivery latency, in seconds (0 when nothing was delivered).
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}
