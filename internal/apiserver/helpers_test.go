package apiserver

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/config"
	"easymail/internal/incident"
	"easymail/internal/queue"
	"easymail/internal/sla"
	"easymail/internal/store"
)

// fakeQueue acts on the messages table as the real queue would, as far as the API can tell.
type fakeQueue struct {
	db    *store.DB
	mu    sync.Mutex
	calls []string
	fail  error // returned by every call when set
}

func (q *fakeQueue) op(ctx context.Context, name, id string, fn func(tx *sql.Tx) error) error {
	q.mu.Lock()
	q.calls = append(q.calls, name+" "+id)
	fail := q.fail
	q.mu.Unlock()
	if fail != nil {
		return fail
	}
	return q.db.Tx(ctx, func(tx *sql.Tx) error {
		var pending int
		err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM recipients r WHERE r.message_id = m.id
			AND r.status IN ('queued', 'deferred')) FROM messages m WHERE m.id = ?`, id).Scan(&pending)
		if err == sql.ErrNoRows {
			return fmt.Errorf("fake queue: %s: %w", id, queue.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if pending == 0 {
			return fmt.Errorf("fake queue: %s: %w", id, queue.ErrNotQueued)
		}
		return fn(tx)
	})
}

func (q *fakeQueue) Retry(ctx context.Context, id string) error {
	return q.op(ctx, "retry", id, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE recipients SET next_attempt_at = 0 WHERE message_id = ?`, id)
		return err
	})
}

func (q *fakeQueue) Hold(ctx context.Context, id string) error {
	return q.op(ctx, "hold", id, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE messages SET held = 1 WHERE id = ?`, id)
		return err
	})
}

func (q *fakeQueue) Release(ctx context.Context, id string) error {
	return q.op(ctx, "release", id, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE messages SET held = 0 WHERE id = ?`, id)
		return err
	})
}

func (q *fakeQueue) Delete(ctx context.Context, id string) error {
	return q.op(ctx, "delete", id, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE recipients SET status = 'bounced' WHERE message_id = ? AND status IN ('queued', 'deferred')`, id)
		if err == nil {
			_, err = tx.Exec(`UPDATE messages SET status = 'bounced', reason = 'deleted by an operator' WHERE id = ?`, id)
		}
		return err
	})
}

// testEnv is a running API with two customers, A and B, and a token per role.
type testEnv struct {
	db       *store.DB
	cfg      *config.Config
	srv      *httptest.Server
	queue    *fakeQueue
	changes  *atomic.Int32
	sick     *atomic.Bool // makes the health check fail
	logs     *bytes.Buffer
	op       *api.Client
	expert   *api.Client
	a, b     *api.Client // customer tokens
	tok      map[string]string
	custA    *api.Customer
	custB    *api.Customer
	onboardA string
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := config.Default()
	cfg.Hostname = "relay.example.net"
	cfg.DataDir = t.TempDir()
	cfg.SMTP.Listen = []string{"127.0.0.1:2525"}
	cfg.Pools = append(cfg.Pools, config.Pool{Name: "premium", IPs: []config.PoolAddr{{Address: "127.0.0.2", HELO: "p.example.net"}}})
	e := &testEnv{db: db, cfg: &cfg, queue: &fakeQueue{db: db}, changes: &atomic.Int32{}, sick: &atomic.Bool{}, logs: &bytes.Buffer{},
		tok: map[string]string{}}
	var logMu sync.Mutex
	incidents, err := incident.New(incident.Options{DB: db, DefaultSLA: "standard",
		SLATypes: map[string]incident.SLAType{"standard": {Window: sla.DefaultWindow(), Response: map[string]time.Duration{"api": 15 * time.Minute}}}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{
		DB: db, Config: &cfg, Queue: e.queue, Incidents: incidents,
		OnProvisioningChange: func() { e.changes.Add(1) },
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "easymail_test_metric 1\n")
		}),
		Health: func(ctx context.Context) error {
			if e.sick.Load() {
				return errors.New("spool disk full")
			}
			return db.R.PingContext(ctx)
		},
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, e.logs}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	cfg.API.PublicURL = e.srv.URL

	client := func(role, cust string) *api.Client {
		secret, _, err := authz.Create(ctx, db, role, cust, role+" "+cust)
		if err != nil {
			t.Fatal(err)
		}
		e.tok[role+cust] = secret
		return &api.Client{BaseURL: e.srv.URL, Token: secret, HTTP: e.srv.Client()}
	}
	e.op = client(authz.RoleOperator, "")
	e.expert = client(authz.RoleExpert, "")
	if e.custA, err = e.op.CreateCustomer(ctx, api.CustomerCreate{Name: "Acme", ContactEmail: "it@acme.example"}); err != nil {
		t.Fatal(err)
	}
	e.onboardA = e.custA.OnboardingURL
	if e.custB, err = e.op.CreateCustomer(ctx, api.CustomerCreate{Name: "Bolt", ContactEmail: "it@bolt.example"}); err != nil {
		t.Fatal(err)
	}
	e.a = client(authz.RoleCustomer, e.custA.ID)
	e.b = client(authz.RoleCustomer, e.custB.ID)
	e.tok["A"], e.tok["B"] = e.tok["customer"+e.custA.ID], e.tok["customer"+e.custB.ID]
	e.tok["operator"], e.tok["expert"] = e.tok[authz.RoleOperator], e.tok[authz.RoleExpert]
	return e
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// addMessage inserts a message of customer with one recipient per address (status rstatus).
func (e *testEnv) addMessage(t *testing.T, id, customer, sender, status, rstatus string, at time.Time, rcpts ...string) {
	t.Helper()
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO messages (id, node_id, customer_id, sender, message_id, subject, size, status,
			received_at, expires_at) VALUES (?, 'n1', ?, ?, ?, 'Hello', 1234, ?, ?, ?)`,
			id, customer, sender, "<"+id+"@test>", status, store.Millis(at), store.Millis(at.Add(time.Hour))); err != nil {
			return err
		}
		for i, r := range rcpts {
			if _, err := tx.Exec(`INSERT INTO recipients (message_id, idx, address, domain, status, next_attempt_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, id, i, r, r[strings.IndexByte(r, '@')+1:], rstatus, store.Millis(at), store.Millis(at)); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO attempts (message_id, rcpt_idx, attempt, started_at, outcome, remote_mx, code, reply)
				VALUES (?, ?, 1, ?, ?, 'mx.dest.example', 451, 'greylisted')`, id, i, store.Millis(at.Add(time.Second)), "deferred"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// call sends a raw request with the token named by who ("" for none) and returns the status and the
// decoded JSON error, if any.
func (e *testEnv) call(t *testing.T, who, method, path, body string) (int, api.Error, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if who != "" {
		tok, ok := e.tok[who]
		if !ok {
			tok = who
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var ae api.Error
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s %s: status %d with content type %q: %s", method, path, resp.StatusCode, ct, data)
		}
		if err := json.Unmarshal(data, &ae); err != nil || ae.Message == "" {
			t.Fatalf("%s %s: status %d, error body %q not {\"error\"}", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, ae, data
}
