package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"easymail/internal/resolver"
	"easymail/internal/store"
)

// Defaults for the zero values of Options.
const (
	// DefaultFetchTimeout bounds the HTTPS fetch of a policy.
	DefaultFetchTimeout = 30 * time.Second
	// DefaultRefresh is how often a domain's TXT record is looked up again to see whether its policy changed.
	DefaultRefresh = time.Hour
	// maxPolicySize is the largest policy body read (RFC 8461 §3.3 suggests 64 KB).
	maxPolicySize = 64 << 10
	// failureRetry is how long a failed lookup or fetch is remembered before it is tried again.
	failureRetry = 5 * time.Minute
)

// FetchError is a domain that publishes an _mta-sts record whose policy could not be had. Delivery goes on as
// without a policy (RFC 8461 §3.3), and the failure is reported (TLS-RPT): Result is its result type
// (sts-policy-fetch-error, sts-policy-invalid or sts-webpki-invalid, RFC 8460 §4.3.2.1).
type FetchError struct {
	Domain string
	Result string
	Err    error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("MTA-STS policy of %s: %s: %v", e.Domain, e.Result, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// Options configures a Cache.
type Options struct {
	// DB keeps the policies across restarts. Required.
	DB *store.DB
	// Resolver looks up the _mta-sts TXT records. Required.
	Resolver resolver.Resolver
	// RootCAs verify the policy servers' certificates; nil means the system's roots.
	RootCAs *x509.CertPool
	// Dial opens the TCP connection to a policy server ("mta-sts.example.com:443"); nil means a net.Dialer.
	// Tests point it at a loopback server.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// FetchTimeout bounds one fetch; 0 means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// Refresh is how often a domain's TXT record is checked for a new policy id; 0 means DefaultRefresh.
	Refresh time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives a record per fetch; nil discards.
	Logger *slog.Logger
}

// Cache gives the MTA-STS policy of destination domains, fetching and refreshing them as needed. It is safe
// for concurrent use; a domain's policy is fetched by one caller at a time.
type Cache struct {
	o      Options
	client *http.Client
	group  singleflight.Group

	mu      sync.Mutex
	entries map[string]*entry
}

// entry is what the cache knows of one domain.
type entry struct {
	policy  *Policy   // nil: none
	fail    error     // the last lookup's *FetchError, when policy is nil
	checked time.Time // when the TXT record was last looked up; zero: at the next use
}

// New returns a Cache configured by o.
func New(o Options) *Cache {
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         dial,
		TLSClientConfig:     &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: o.FetchTimeout,
		MaxIdleConns:        10,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Cache{
		o: o,
		client: &http.Client{
			Transport: tr,
			Timeout:   o.FetchTimeout,
			// RFC 8461 §3.3: redirects must not be followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		entries: map[string]*entry{},
	}
}

// Policy returns the policy in force for domain: nil when the domain has none (or its mode is none). A
// domain that publishes a record whose policy cannot be had gives nil and a *FetchError; delivery goes on
// as without a policy and reports the failure. A cached policy whose time is not up is returned without any
// lookup; its TXT record is checked once per Options.Refresh.
func (c *Cache) Policy(ctx context.Context, domain string) (*Policy, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	now := c.o.Now()
	c.mu.Lock()
	e := c.entries[domain]
	if e != nil && fresh(e, now, c.o.Refresh) {
		p, err := e.policy, e.fail
		c.mu.Unlock()
		return active(p), err
	}
	c.mu.Unlock()

	v, _, _ := c.group.Do(domain, func() (any, error) {
		return c.refresh(context.WithoutCancel(ctx), domain, e), nil
	})
	ne := v.(*entry)
	return active(ne.policy), ne.fail
}

// fresh reports whether e can be used without a lookup.
func fresh(e *entry, now time.Time, refresh time.Duration) bool {
	if e.checked.IsZero() {
		return false
	}
	if e.policy != nil && !now.Before(e.policy.Expires()) {
		return false
	}
	if e.fail != nil {
		return now.Sub(e.checked) < min(refresh, failureRetry)
	}
	return now.Sub(e.checked) < refresh
}

// active returns p unless its mode is none.
func active(p *Policy) *Policy {
	if p == nil || p.Mode == ModeNone {
		return nil
	}
	return p
}

// refresh looks the domain's TXT record up and fetches its policy when the id is new, keeping what is cached
// when the lookup or the fetch fails (RFC 8461 §5.1).
func (c *Cache) refresh(ctx context.Context, domain string, old *entry) *entry {
	now := c.o.Now()
	cached := (*Policy)(nil)
	if old != nil {
		cached = old.policy
	} else {
		cached = c.load(ctx, domain)
	}
	if cached != nil && !now.Before(cached.Expires()) {
		cached = nil
	}
	ne := &entry{policy: cached, checked: now}
	id, err := c.lookupID(ctx, domain)
	switch {
	case errors.Is(err, resolver.ErrNotFound):
		// RFC 8461 §3.2: without a record, a cached policy stays in force until it expires.
		return c.store(domain, ne)
	case err != nil:
		if cached == nil {
			ne.fail = &FetchError{Domain: domain, Result: "sts-policy-invalid", Err: err}
		}
		return c.store(domain, ne)
	}
	if cached != nil && cached.ID == id && now.Sub(cached.Fetched) < cached.MaxAge/2 {
		return c.store(domain, ne)
	}
	p, ferr := c.fetch(ctx, domain)
	if ferr != nil {
		c.o.Logger.Warn("mta-sts: policy fetch failed", "domain", domain, "result", ferr.Result, "err", ferr.Err)
		if cached == nil {
			ne.fail = ferr
		}
		return c.store(domain, ne)
	}
	p.ID, p.Fetched = id, now
	c.o.Logger.Info("mta-sts: policy fetched", "domain", domain, "id", id, "mode", p.Mode, "max_age", p.MaxAge)
	if err := c.save(ctx, p); err != nil {
		c.o.Logger.Error("mta-sts: keeping the policy in the database failed", "domain", domain, "err", err)
	}
	ne.policy = p
	return c.store(domain, ne)
}

func (c *Cache) store(domain string, e *entry) *entry {
	c.mu.Lock()
	c.entries[domain] = e
	c.mu.Unlock()
	return e
}

// lookupID returns the id of the domain's _mta-sts record. Records that do not start with v=STSv1 are
// ignored; more than one that does, or one that is malformed, is an error (RFC 8461 §3.1).
func (c *Cache) lookupID(ctx context.Context, domain string) (string, error) {
	txts, err := c.o.Resolver.LookupTXT(ctx, "_mta-sts."+domain)
	if err != nil {
		return "", err
	}
	var recs []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=STSv1;") || t == "v=STSv1" {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return "", fmt.Errorf("%w: no v=STSv1 record at _mta-sts.%s", resolver.ErrNotFound, domain)
	case 1:
		return ParseTXT(recs[0])
	default:
		return "", fmt.Errorf("%d v=STSv1 records at _mta-sts.%s", len(recs), domain)
	}
}

// fetch gets and parses https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461 §3.3).
func (c *Cache) fetch(ctx context.Context, domain string) (*Policy, *FetchError) {
	fail := func(result string, err error) (*Policy, *FetchError) {
		return nil, &FetchError{Domain: domain, Result: result, Err: err}
	}
	url := "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail("sts-policy-fetch-error", err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return fail("sts-webpki-invalid", err)
		}
		return fail("sts-policy-fetch-error", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail("sts-policy-fetch-error", fmt.Errorf("%s answered %s", url, resp.Status))
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return fail("sts-policy-invalid", fmt.Errorf("%s: content type %q is not text/plain", url, resp.Header.Get("Content-Type")))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicySize+1))
	if err != nil {
		return fail("sts-policy-fetch-error", err)
	}
	if len(body) > maxPolicySize {
		return fail("sts-policy-invalid", fmt.Errorf("%s: policy larger than %d bytes", url, maxPolicySize))
	}
	p, err := Parse(string(body))
	if err != nil {
		return fail("sts-policy-invalid", err)
	}
	p.Domain = domain
	return p, nil
}

// load reads the domain's policy from the database, nil when there is none (or on a read error, logged).
func (c *Cache) load(ctx context.Context, domain string) *Policy {
	p := &Policy{Domain: domain}
	var mode, mx string
	var maxAge, fetched int64
	err := c.o.DB.R.QueryRowContext(ctx, `SELECT policy_id, mode, max_age, mx, body, fetched_at FROM mta_sts_policies
		WHERE domain = ?`, domain).Scan(&p.ID, &mode, &maxAge, &mx, &p.Text, &fetched)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal([]byte(mx), &p.MX)
	}
	if err != nil {
		c.o.Logger.Error("mta-sts: reading the cached policy failed", "domain", domain, "err", err)
		return nil
	}
	p.Mode, p.MaxAge, p.Fetched = Mode(mode), time.Duration(maxAge)*time.Second, store.Time(fetched)
	p.lines = lines(p.Text)
	return p
}

// save keeps p in the database.
func (c *Cache) save(ctx context.Context, p *Policy) error {
	mx, err := json.Marshal(p.MX)
	if err != nil {
		return err
	}
	return c.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO mta_sts_policies (domain, policy_id, mode, max_age, mx, body, fetched_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (domain) DO UPDATE SET policy_id = excluded.policy_id, mode = excluded.mode,
				max_age = excluded.max_age, mx = excluded.mx, body = excluded.body, fetched_at = excluded.fetched_at,
				expires_at = excluded.expires_at`,
			p.Domain, p.ID, string(p.Mode), int64(p.MaxAge/time.Second), string(mx), p.Text,
			store.Millis(p.Fetched), store.Millis(p.Expires()))
		return err
	})
}

// Cached returns the policies kept in the database, by domain, for the API and the CLI; now tells which have
// expired.
func Cached(ctx context.Context, db *store.DB, now time.Time) ([]CachedPolicy, error) {
	rows, err := db.R.QueryContext(ctx, `SELECT domain, policy_id, mode, max_age, mx, fetched_at, expires_at
		FROM mta_sts_policies ORDER BY domain`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []CachedPolicy{}
	for rows.Next() {
		var p CachedPolicy
		var mx string
		var fetched, expires int64
		if err := rows.Scan(&p.Domain, &p.ID, &p.Mode, &p.MaxAge, &mx, &fetched, &expires); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(mx), &p.MX); err != nil {
			return nil, fmt.Errorf("mta-sts: the mx of %s's cached policy: %w", p.Domain, err)
		}
		p.FetchedAt, p.ExpiresAt = store.Time(fetched), store.Time(expires)
		p.Expired = !now.Before(p.ExpiresAt)
		out = append(out, p)
	}
	return out, rows.Err()
}
