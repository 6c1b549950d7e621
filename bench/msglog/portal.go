package main

// This file measures the portal's pages on the generated log: the server time of each page (the portal's
// handler, from the request to the last byte of the rendered page, in-process), for an operator's session
// and for a customer user's session, with the same samples as the API's queries.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"easymail/internal/config"
	"easymail/internal/customer"
	"easymail/internal/portal"
	"easymail/internal/portal/account"
	"easymail/internal/store"
)

// noQueue is the portal's Queue: the pages measured are all GETs, which change nothing.
type noQueue struct{}

func (noQueue) Retry(context.Context, string) error   { return errors.New("bench: no queue") }
func (noQueue) Hold(context.Context, string) error    { return errors.New("bench: no queue") }
func (noQueue) Release(context.Context, string) error { return errors.New("bench: no queue") }
func (noQueue) Delete(context.Context, string) error  { return errors.New("bench: no queue") }

// benchPassword is the password of the portal users the benchmark makes.
const benchPassword = "bench portal password"

// portalBench drives the portal's handler.
type portalBench struct {
	h     http.Handler
	acc   *account.Store
	staff string            // the operator's session cookie
	cust  map[string]string // customer id → its user's session cookie
}

// newPortalBench builds the portal on db with the clock at the end of the log (so that its dashboard's "last
// hour/day/week" are the log's), adds the customers the log names (portal enabled), an operator and one
// user per customer as needed.
func newPortalBench(ctx context.Context, db *store.DB, now time.Time) (*portalBench, error) {
	clock := func() time.Time { return now }
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		for c := range customers {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO customers (id, name, contact_email, pool, status,
				created_at, updated_at, portal_enabled) VALUES (?, ?, ?, 'default', 'active', ?, ?, 1)`,
				fmt.Sprintf("C%04d", c), fmt.Sprintf("Customer %d", c), fmt.Sprintf("ops@cust%d.example", c),
				store.Millis(now), store.Millis(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("customers: %w", err)
	}
	cfg := config.Default()
	cfg.Portal.SecureCookies = false
	h, err := portal.New(portal.Options{DB: db, Config: &cfg, Queue: noQueue{}, Now: clock, PasswordCost: bcrypt.MinCost,
		Customers: &customer.Service{DB: db, Pools: []string{"default"}, Now: clock}})
	if err != nil {
		return nil, err
	}
	p := &portalBench{h: h, acc: &account.Store{DB: db, Cost: bcrypt.MinCost, Now: clock}, cust: map[string]string{}}
	if p.staff, err = p.session(ctx, "operator@bench.test", "operator", ""); err != nil {
		return nil, err
	}
	return p, nil
}

// session logs the user in (creating it on first use) and returns its session's cookie.
func (p *portalBench) session(ctx context.Context, email, role, cust string) (string, error) {
	u, err := p.acc.Login(ctx, email, benchPassword, "")
	if errors.Is(err, account.ErrBadCredentials) {
		if _, err = p.acc.Create(ctx, account.NewUser{Email: email, Role: role, CustomerID: cust, Password: benchPassword}); err != nil {
			return "", fmt.Errorf("portal user %s: %w", email, err)
		}
		u, err = p.acc.Login(ctx, email, benchPassword, "")
	}
	if err != nil {
		return "", fmt.Errorf("portal login %s: %w", email, err)
	}
	secret, _, err := p.acc.NewSession(ctx, u, 12*time.Hour)
	return secret, err
}

// customerSession returns the session cookie of customer id's user.
func (p *portalBench) customerSession(ctx context.Context, id string) (string, error) {
	if s, ok := p.cust[id]; ok {
		return s, nil
	}
	s, err := p.session(ctx, strings.ToLower(id)+"@customer.bench.test", "customer", id)
	if err == nil {
		p.cust[id] = s
	}
	return s, err
}

// get serves path with the session cookie and returns the server time; the page must answer 200 and
// contain want (when not empty).
func (p *portalBench) get(ctx context.Context, cookie, path, want string) (time.Duration, error) {
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "http://portal.bench.test"+path, nil)
	req.AddCookie(&http.Cookie{Name: "easymail_session", Value: cookie})
	rec := httptest.NewRecorder()
	t := time.Now()
	p.h.ServeHTTP(rec, req)
	d := time.Since(t)
	if rec.Code != http.StatusOK {
		return d, fmt.Errorf("GET %s: %d %s", path, rec.Code, firstLine(rec.Body.String()))
	}
	if want != "" && !strings.Contains(rec.Body.String(), want) {
		return d, fmt.Errorf("GET %s: the page does not show %q", path, want)
	}
	return d, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// portalPage is one page measured: path gives the URL of sample i and what it must show, for the customer
// cust (the session's customer for a customer user; a staff search may name it).
type portalPage struct {
	name string
	path func(i int, cust string) (path, want string)
}

// measurePortal times each page n times (at most budget per page and session) with the operator's session
// and with a customer user's, and prints p50 and p99 (with fewer than 100 samples, p99 is the slowest).
func measurePortal(ctx context.Context, db *store.DB, g *generator, n int, budget time.Duration) error {
	last := g.start.Add(time.Duration(g.n) * g.step)
	p, err := newPortalBench(ctx, db, last)
	if err != nil {
		return err
	}
	// Sample k's message: its queue id, Message-ID, first recipient and customer.
	k := func(i int) int { return (i * 7919) % len(g.ids) }
	hourAt := func(i int) time.Time {
		return g.start.Add(time.Duration(1+(i*37)%179) * 24 * time.Hour).Add(time.Duration(i%24) * time.Hour)
	}
	q := func(kv ...string) string {
		v := url.Values{}
		for j := 0; j < len(kv); j += 2 {
			v.Set(kv[j], kv[j+1])
		}
		return "/messages?" + v.Encode()
	}
	const minute = "2006-01-02T15:04"
	pages := []portalPage{
		{"dashboard", func(int, string) (string, string) { return "/", "" }},
		{"queue", func(int, string) (string, string) { return "/queue", "" }},
		{"messages (newest, no search)", func(int, string) (string, string) { return "/messages", "" }},
		{"messages: next page (before=)", func(i int, _ string) (string, string) { return q("before", g.ids[k(i)]), "" }},
		{"search by customer", func(i int, c string) (string, string) { return q("customer", c), "" }},
		{"search by queue id", func(i int, _ string) (string, string) { return q("queue_id", g.ids[k(i)]), g.ids[k(i)] }},
		{"search by Message-ID", func(i int, _ string) (string, string) {
			return q("message_id", g.msgIDs[k(i)]), g.ids[k(i)]
		}},
		{"search by recipient address", func(i int, _ string) (string, string) { return q("recipient", g.rcpts[k(i)]), g.ids[k(i)] }},
		{"search by recipient domain (rare)", func(i int, _ string) (string, string) {
			return q("domain", fmt.Sprintf("d%d.example", (i*37)%smallDoms)), ""
		}},
		{"search by recipient domain (common)", func(int, string) (string, string) { return q("domain", "gmail.example"), "" }},
		{"search by sender address", func(i int, c string) (string, string) {
			var cn int
			fmt.Sscanf(c, "C%d", &cn)
			return q("sender", fmt.Sprintf("user%d@cust%d.example", i%20, cn)), ""
		}},
		{"search by status bounced", func(int, string) (string, string) { return q("status", "bounced"), "" }},
		{"search by status deferred", func(int, string) (string, string) { return q("status", "deferred"), "" }},
		{"search by bounce class", func(int, string) (string, string) { return q("bounce_class", "bad-mailbox"), "" }},
		{"search by time range (1 hour)", func(i int, _ string) (string, string) {
			t := hourAt(i)
			return q("since", t.Format(minute), "until", t.Add(time.Hour).Format(minute)), ""
		}},
		{"search by time range (1 day) + status bounced", func(i int, _ string) (string, string) {
			t := hourAt(i).Truncate(24 * time.Hour)
			return q("since", t.Format(minute), "until", t.Add(24*time.Hour).Format(minute), "status", "bounced"), ""
		}},
		{"message timeline", func(i int, _ string) (string, string) { return "/messages/" + g.ids[k(i)], g.ids[k(i)] }},
	}
	type row struct {
		page, who string
		n         int
		p50, p99  time.Duration
	}
	var rows []row
	for _, pg := range pages {
		for _, who := range []string{"operator", "customer"} {
			var ds []time.Duration
			start := time.Now()
			for i := -1; i < n && (i < 1 || time.Since(start) < budget); i++ {
				s := max(i, 0) // sample -1 is an untimed warm-up of sample 0
				cust := g.customers[k(s)]
				cookie := p.staff
				if who == "customer" {
					if cookie, err = p.customerSession(ctx, cust); err != nil {
						return err
					}
				} else if pg.name == "search by sender address" {
					cust = fmt.Sprintf("C%04d", s%customers)
				}
				path, want := pg.path(s, cust)
				d, err := p.get(ctx, cookie, path, want)
				if err != nil {
					return fmt.Errorf("%s (%s): %w", pg.name, who, err)
				}
				if i >= 0 {
					ds = append(ds, d)
				}
			}
			sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
			rows = append(rows, row{pg.name, who, len(ds), ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)]})
		}
	}
	fmt.Printf("\nportal pages, server time (the handler in-process, page rendered); operator and customer user\n")
	fmt.Printf("%-46s %-9s %7s %10s %10s\n", "page", "session", "samples", "p50", "p99")
	for _, r := range rows {
		flag := ""
		if r.p99 > 200*time.Millisecond {
			flag = "  over 200 ms"
		}
		fmt.Printf("%-46s %-9s %7d %10s %10s%s\n", r.page, r.who, r.n, round(r.p50), round(r.p99), flag)
	}
	return nil
}
