// Package testnode starts a whole Easymail node in-process for tests, on loopback ports the kernel picks, with a
// temporary data directory and the fake DNS of package testkit, and provisions customers through its API.
// It is used only from tests.
package testnode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"easymail/internal/config"
	"easymail/internal/node"
	"easymail/internal/testkit"
)

// Node is a running Easymail node.
type Node struct {
	Config   config.Config
	SMTPAddr string
	APIURL   string
	// FeedbackAddr is the feedback listener's address, when the configuration sets complaints.address.
	FeedbackAddr string
	// MetricsURL is the base URL of /metrics: APIURL, or the metrics listener's when metrics.listen is set.
	MetricsURL string
	Token      string
	DNS        *testkit.DNS

	cancel context.CancelFunc
	done   chan error
}

// Listen opens a TCP listener on a port of 127.0.0.1 the kernel picks; it is closed when the test ends if the
// node has not closed it before. Tests that call node.RunWith themselves pass such listeners in node.Hooks.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Options adjust the node's configuration before it starts.
type Options struct {
	// DeliveryPort is the port of the fake MX hosts (config delivery.port), e.g. testkit.ReserveMXPort's.
	DeliveryPort int
	// DNS is the fake DNS to use; a new one is started when nil.
	DNS *testkit.DNS
	// DataDir reuses a data directory (to test restarts); a temporary one when "".
	DataDir string
	// Configure may change anything else.
	Configure func(*config.Config)
	// Now is the clock of the customer lifecycle (node.Hooks); nil means time.Now.
	Now func() time.Time
	// Log, when not nil, also receives the node's log (text lines), for tests that check what it logs. It
	// must be safe for concurrent writes.
	Log io.Writer
	// AdminToken is the node's EASYMAIL_ADMIN_TOKEN; "" means AdminToken.
	AdminToken string
	// MTASTSDial routes MTA-STS policy fetches (node.Hooks), e.g. testkit.STS.Dial; nil dials for real.
	MTASTSDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSRPTNow is the clock of TLS-RPT (node.Hooks); nil means time.Now.
	TLSRPTNow func() time.Time
}

// AdminToken is the operator token of test nodes (EASYMAIL_ADMIN_TOKEN), a fixed value strong enough for
// the node's check.
const AdminToken = "test-N4q7Vx2kR9mZ3wLc8pHt5Yb6Jd1Fg0s"

// Start starts a node and stops it at the end of the test.
func Start(t testing.TB, o Options) *Node {
	t.Helper()
	n, err := StartErr(t, o)
	if err != nil {
		t.Fatalf("node did not start: %v", err)
	}
	return n
}

// StartErr is Start for a node that may refuse to start: it returns the node's error instead of failing the
// test.
func StartErr(t testing.TB, o Options) (*Node, error) {
	t.Helper()
	if o.DNS == nil {
		o.DNS = testkit.NewDNS(t)
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	cfg := config.Default()
	cfg.Hostname = "relay.easymail.test"
	cfg.DataDir = o.DataDir
	// The listeners are bound here, on port 0, and handed to the node: no port is picked and bound later.
	smtpLn, apiLn := Listen(t), Listen(t)
	cfg.SMTP.Listen = []string{smtpLn.Addr().String()}
	cfg.API.Listen = apiLn.Addr().String()
	cfg.API.PublicURL = "http://" + cfg.API.Listen // as config.Load derives it
	cfg.DNS.Servers = []string{o.DNS.Addr()}
	cfg.DNS.Timeout = 2 * time.Second
	cfg.Delivery.Port = o.DeliveryPort
	if cfg.Delivery.Port == 0 {
		cfg.Delivery.Port = 25
	}
	cfg.Delivery.Retry = []time.Duration{time.Second}
	cfg.Delivery.ConnectTimeout = 3 * time.Second
	cfg.Delivery.CommandTimeout = 10 * time.Second
	cfg.Delivery.IdleTimeout = 2 * time.Second
	cfg.Pools = []config.Pool{{Name: "default", IPs: []config.PoolAddr{{Address: "127.0.0.1", HELO: "out1.easymail.test"}}}}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	if cfg.NodeID == "" {
		// As config.Load derives it.
		cfg.NodeID = cfg.Hostname
	}
	hooks := node.Hooks{Now: o.Now, MTASTSDial: o.MTASTSDial, TLSRPTNow: o.TLSRPTNow, SMTPListeners: []net.Listener{smtpLn}, APIListener: apiLn}
	if cfg.Complaints.Address != "" {
		hooks.FeedbackListeners = []net.Listener{Listen(t)}
		cfg.Complaints.Listen = []string{hooks.FeedbackListeners[0].Addr().String()}
	}
	if cfg.Metrics.Listen != "" {
		// A separate metrics listener (metrics.listen): bound here too, on port 0.
		hooks.MetricsListener = Listen(t)
		cfg.Metrics.Listen = hooks.MetricsListener.Addr().String()
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.AdminToken == "" {
		o.AdminToken = AdminToken
	}
	t.Setenv("EASYMAIL_ADMIN_TOKEN", o.AdminToken)
	n := &Node{Config: cfg, SMTPAddr: cfg.SMTP.Listen[0], APIURL: "http://" + cfg.API.Listen, Token: o.AdminToken,
		DNS: o.DNS, done: make(chan error, 1)}
	if len(hooks.FeedbackListeners) > 0 {
		n.FeedbackAddr = hooks.FeedbackListeners[0].Addr().String()
	}
	n.MetricsURL = n.APIURL
	if cfg.Metrics.Listen != "" {
		n.MetricsURL = "http://" + cfg.Metrics.Listen
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	ready := make(chan struct{})
	var w io.Writer = testWriter{t}
	if o.Log != nil {
		w = io.MultiWriter(w, o.Log)
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		n.done <- node.RunWith(ctx, cfg, log, func() { close(ready) }, hooks)
	}()
	select {
	case <-ready:
	case err := <-n.done:
		cancel()
		if err == nil {
			err = errors.New("node stopped before it was ready")
		}
		return nil, err
	case <-time.After(30 * time.Second):
		t.Fatal("node did not start within 30s")
	}
	t.Cleanup(func() { n.Stop(t) })
	return n, nil
}

// Stop shuts the node down and waits for it; it is safe to call twice.
func (n *Node) Stop(t testing.TB) {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("node stopped with an error: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Error("node did not stop within 60s")
	}
}

// API calls the node's REST API as the operator and decodes the JSON answer into out (if not nil). It fails
// the test unless the status is want.
func (n *Node) API(t testing.TB, method, path string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.APIURL+"/api/v1"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// AddCustomer provisions a customer with one domain and one source CIDR and returns its id.
func (n *Node) AddCustomer(t testing.TB, name, domain, cidr string) string {
	t.Helper()
	var c struct {
		ID string `json:"id"`
	}
	n.API(t, "POST", "/customers", map[string]string{"name": name, "contact_email": "admin@" + domain, "pool": "default"}, 201, &c)
	if domain != "" {
		n.API(t, "POST", "/customers/"+c.ID+"/domains", map[string]string{"domain": domain}, 201, nil)
	}
	if cidr != "" {
		n.API(t, "POST", "/customers/"+c.ID+"/source-ips", map[string]string{"cidr": cidr}, 201, nil)
	}
	return c.ID
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if os.Getenv("EASYMAIL_TEST_LOG") != "" {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}
