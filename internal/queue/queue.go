package queue

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/delivery"
	"easymail/internal/events"
	"easymail/internal/msgid"
	"easymail/internal/spool"
	"easymail/internal/store"
)

// Message statuses, as stored in messages.status and shown by the API.
const (
	StatusQueued      = "queued"
	StatusDeferred    = "deferred"
	StatusDelivered   = "delivered"
	StatusBounced     = "bounced"
	StatusRejected    = "rejected"
	StatusQuarantined = "quarantined"
	StatusHeld        = "held"
	// StatusDeleted is a recipient (and a message) closed by an operator's `queue delete`, without a DSN.
	StatusDeleted = "deleted"
	// StatusLost is a recipient (and a message) whose content was gone from the spool when it was due: its
	// sender gets a DSN (lost.go). Neither is a bounce: the receiving side refused nothing.
	StatusLost = "lost"
)

// Deliverer carries one job to its destination. *delivery.Deliverer implements it.
type Deliverer interface {
	Deliver(ctx context.Context, j delivery.Job) delivery.Result
}

// PickRequest says what an outbound IP is wanted for: a message of a customer served by Pool ("" for the
// default pool: operator mail, or a message whose customer is gone) with its FallbackPool ("" for none), to
// the destination Domain.
type PickRequest struct {
	Pool         string
	FallbackPool string
	Domain       string
}

// SourcePicker chooses the outbound IP of a delivery. *ippool.Pools implements it. An error means no IP is
// usable now: the attempt is a temporary failure with the error's text, and is retried.
type SourcePicker interface {
	Pick(ctx context.Context, req PickRequest) (delivery.Source, error)
}

// OutcomeObserver learns the outcome of every delivery attempt made from an outbound IP, for the IP's
// supervision (counters, receivers' block replies). *ippool.Pools implements it. Observe must not block.
type OutcomeObserver interface {
	Observe(src delivery.Source, domain string, res delivery.Result)
}

// EventSink records delivery events. *events.Bus implements it: Emit writes the event to the webhooks'
// outbox in the transaction that records the outcome (filling its id and time), Published tells the live
// stream once that transaction is committed.
type EventSink interface {
	Emit(tx *sql.Tx, e *events.Event) error
	Published(es ...events.Event)
}

// Options configure a Queue.
type Options struct {
	DB        *store.DB
	Spool     *spool.Spool
	Deliverer Deliverer
	Sources   SourcePicker
	// Observer, if not nil, is told the outcome of each attempt that had an outbound IP.
	Observer OutcomeObserver
	// Events, if not nil, records an event for every recipient's outcome, suppression and quarantine.
	Events EventSink
	// NodeID scopes the queue rows this node owns (its spool holds their content).
	NodeID string
	// Hostname is the reporting MTA in DSNs.
	Hostname string
	// Retry is the backoff schedule; the last step repeats.
	Retry []time.Duration
	// MaxLifetime is how long a message is retried before it bounces.
	MaxLifetime time.Duration
	// DelayNotice is the age at which a delay DSN is sent; 0 disables.
	DelayNotice time.Duration
	// Workers is the most deliveries in progress at once.
	Workers int
	// PollInterval is how often the database is scanned for due work besides kicks. Default: 1s.
	PollInterval time.Duration
	// ShutdownGrace is how long deliveries in progress may finish after Run's context ends. Default: 20s.
	ShutdownGrace time.Duration
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
}

// Queue is the delivery queue of one node. It is safe for concurrent use.
type Queue struct {
	o   Options
	log *slog.Logger
	m   *metrics

	kick chan struct{}

	// instance names this process in the claims it makes (recipients.claimed_by), so that the next start can
	// tell the claims of a dead process from its own.
	instance string

	mu       sync.Mutex
	inflight map[string]bool // message id + "\x00" + domain
	wg       sync.WaitGroup
}

// New returns a queue; Run starts its scheduler.
func New(o Options) *Queue {
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 20 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	return &Queue{o: o, log: o.Logger, m: newMetrics(o.Registerer), kick: make(chan struct{}, 1), inflight: map[string]bool{},
		instance: msgid.New()}
}

// Kick wakes the scheduler to look for due work now.
func (q *Queue) Kick() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// Recipient is one envelope recipient with its DSN parameters (RFC 3461).
type Recipient struct {
	Address string
	// Notify is the NOTIFY parameter, comma-separated ("FAILURE,DELAY", "NEVER"); "" means the default
	// (FAILURE and DELAY).
	Notify string
	// ORCPT is the original recipient parameter, "" when absent.
	ORCPT string
}

// Envelope describes an accepted (or refused) message for the queue and the message log.
type Envelope struct {
	ID         string
	CustomerID string
	Sender     string
	Recipients []Recipient
	Size       int64
	MessageID  string
	HeaderFrom string
	Subject    string
	ClientIP   string
	HELO       string
	TLS        string
	SMTPUTF8   bool
	EightBit   bool
	DSNRet     string // FULL or HDRS, "" when absent
	EnvID      string
	IsDSN      bool
	// DSNFor is, for a DSN, the queue id of the message it reports on.
	DSNFor   string
	Received time.Time
	// Prefix is header fields to send in front of the spooled content (Received, DKIM-Signature), CRLF-ended.
	Prefix string
	// Held queues the message held (status "held"): accepted and kept, not delivered until released. Set for
	// every message of a customer held by compromise detection or by an operator.
	Held bool
	// Verdict sums up the content scan (clean, spam, virus, rule, tagged, bypassed; "" when not scanned) and
	// Scan is its report (JSON scan.Report), for the message log.
	Verdict string
	Scan    string
	// Stage is, for a refused message, the SMTP stage of the refusal: StageMail, StageRcpt or StageData.
	Stage string
	// Auth is the message's authentication result, written with its row; nil when it was not analysed
	// (refused messages, mail Easymail writes itself).
	Auth *Authentication
}

// Authentication is what the message log keeps of a message's DKIM signing and DMARC alignment
// (dkimsign.Result).
type Authentication struct {
	// FromDomain is the header From's domain; DKIMDomain the d= of Easymail's signatures ("" when unsigned)
	// and DKIMSelectors their s=.
	FromDomain, DKIMDomain string
	DKIMSelectors          []string
	// DKIMAligned, SPFAligned and DMARCAligned are the relaxed alignments with FromDomain (RFC 7489 §3.1).
	DKIMAligned, SPFAligned, DMARCAligned bool
	// Bulk, ListUnsubscribe and OneClick are the bulk markers: a bulk message, a List-Unsubscribe field,
	// and RFC 8058 one-click unsubscription.
	Bulk, ListUnsubscribe, OneClick bool
}

// columns returns the authentication's values for the messages columns from_domain, dkim_domain,
// dkim_selectors, dkim_aligned, spf_aligned, dmarc_aligned, bulk, list_unsubscribe and
// list_unsubscribe_post: the alignments NULL when a is nil.
func (a *Authentication) columns() []any {
	if a == nil {
		return []any{"", "", "", nil, nil, nil, false, false, false}
	}
	return []any{a.FromDomain, a.DKIMDomain, strings.Join(a.DKIMSelectors, ","), a.DKIMAligned, a.SPFAligned,
		a.DMARCAligned, a.Bulk, a.ListUnsubscribe, a.OneClick}
}

// Stages of the SMTP session at which a message is refused (Envelope.Stage, the message log's stage).
const (
	StageMail = "mail" // the MAIL command: sender, size, customer status
	StageRcpt = "rcpt" // a RCPT command: that recipient only
	StageData = "data" // the content, at or after the end of DATA
)

// Enqueue records an accepted message whose content is already committed to the spool, in a transaction
// shared with concurrent callers. When it returns nil the message is durably queued and 250 may be sent.
func (q *Queue) Enqueue(ctx context.Context, env Envelope) error {
	err := q.o.DB.Batch(ctx, func(tx *sql.Tx) error { return q.insert(tx, env, StatusQueued, "") })
	if err != nil {
		return err
	}
	q.m.enqueued.Inc()
	q.Kick()
	return nil
}

// LogRejected records a message refused during the SMTP session, for the message log. Its content is not kept.
func (q *Queue) LogRejected(ctx context.Context, env Envelope, reason string) error {
	return q.o.DB.BatchLazy(ctx, func(tx *sql.Tx) error { return q.insert(tx, env, StatusRejected, reason) })
}

func (q *Queue) insert(tx *sql.Tx, env Envelope, status, reason string) error {
	received := env.Received
	if received.IsZero() {
		received = time.Now()
	}
	body := "7BIT"
	if env.EightBit {
		body = "8BITMIME"
	}
	var done any
	if status == StatusRejected {
		done = store.Millis(received)
	}
	held := env.Held && status == StatusQueued
	if held {
		status = StatusHeld
	}
	args := append([]any{env.ID, q.o.NodeID, env.CustomerID, env.Sender, env.HeaderFrom, env.MessageID, env.Subject, env.Size,
		env.ClientIP, env.HELO, env.TLS, status, reason, env.IsDSN, env.SMTPUTF8, body, env.DSNRet, env.EnvID,
		store.Millis(received), store.Millis(received.Add(q.o.MaxLifetime)), done, env.Prefix, held, env.Verdict, env.Scan,
		stage(status, env.Stage), env.DSNFor}, env.Auth.columns()...)
	_, err := tx.Exec(`INSERT INTO messages (id, node_id, customer_id, sender, header_from, message_id, subject, size,
		client_ip, helo, tls, status, reason, is_dsn, smtputf8, body_type, dsn_ret, dsn_envid, received_at, expires_at, done_at, prefix, held,
		verdict, scan, stage, dsn_for,
		from_domain, dkim_domain, dkim_selectors, dkim_aligned, spf_aligned, dmarc_aligned, bulk, list_unsubscribe, list_unsubscribe_post)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	if err != nil {
		return err
	}
	rstatus := StatusQueued
	if status == StatusRejected || status == StatusQuarantined {
		rstatus = status
	}
	for i, r := range env.Recipients {
		_, err := tx.Exec(`INSERT INTO recipients (message_id, idx, address, domain, status, next_attempt_at, notify, orcpt, updated_at, last_reply)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			env.ID, i, r.Address, domainOf(r.Address), rstatus, store.Millis(received), r.Notify, r.ORCPT,
			store.Millis(received), reason)
		if err != nil {
			return err
		}
	}
	return nil
}

// stage is the stage recorded for a message of status: a refused message's, empty for any other.
func stage(status, s string) string {
	if status != StatusRejected {
		return ""
	}
	return s
}

// domainOf returns the lower-cased domain of an address.
func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return ""
}

// backoff returns the wait after the given attempt number (1 for the first attempt), with ±10% jitter so
// that retries of a burst spread out.
func (q *Queue) backoff(attempt int) time.Duration {
	i := attempt - 1
	if i >= len(q.o.Retry) {
		i = len(q.o.Retry) - 1
	}
	if i < 0 {
		i = 0
	}
	d := q.o.Retry[i]
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}

// openContent returns the message as sent: the stored prefix, then the spooled content.
func (q *Queue) openContent(id, prefix string) (io.ReadCloser, error) {
	f, err := q.o.Spool.Open(id)
	if err != nil {
		return nil, err
	}
	if prefix == "" {
		return f, nil
	}
	return prefixed{Reader: io.MultiReader(strings.NewReader(prefix), f), Closer: f}, nil
}

type prefixed struct {
	io.Reader
	io.Closer
}
