package node_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/config"
	"easymail/internal/events"
)

// hookReceiver is a webhook endpoint that fails its first failures POSTs with 500 and records the others.
type hookReceiver struct {
	mu       sync.Mutex
	secret   string
	failures int
	posts    int
	got      []api.Event
	badSigs  int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.posts++
	if h.posts <= h.failures {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
		return
	}
	if !events.Verify(h.secret, r.Header.Get(events.SignatureHeader), body, time.Now(), 5*time.Minute) {
		h.badSigs++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var e api.Event
	if err := json.Unmarshal(body, &e); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.got = append(h.got, e)
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) events() []api.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]api.Event(nil), h.got...)
}

// TestWebhookRetriesUntilDeliveredOnceAndSigned: a message to one good and one bad mailbox gives delivered,
// bounced (bad-mailbox) and suppressed events; the customer's webhook answers 500 to the first two POSTs,
// and still receives each event exactly once, with a valid signature; the operator's stream shows them too.
func TestWebhookRetriesUntilDeliveredOnceAndSigned(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Events.RetryBase = 20 * time.Millisecond
		c.Events.RetryMax = 100 * time.Millisecond
	})
	mx := e.mx(t, "dest.test", 11)
	mx.Reply("nobody@dest.test", 550, [3]int{5, 1, 1}, "No such user")
	rcv := &hookReceiver{failures: 2}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	var hook api.Webhook
	e.n.API(t, "POST", "/customers/"+e.custID+"/webhooks", api.WebhookRequest{URL: srv.URL + "/hook",
		Events: []string{"delivered", "bounced", "suppressed"}}, 201, &hook)
	rcv.mu.Lock()
	rcv.secret = hook.Secret
	rcv.mu.Unlock()

	// The operator's stream, open before the message is sent.
	req, _ := http.NewRequest("GET", e.n.APIURL+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+e.n.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	streamed := make(chan api.Event, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var ev api.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event != "" {
				streamed <- ev
			}
		}
	}()

	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test", "nobody@dest.test"},
		message("alice@acme.test", "bob@dest.test", "hi", "Message-ID: <m1@acme.test>"))
	if err != nil {
		t.Fatal(err)
	}
	id := queueID(t, reply)
	deadline := time.Now().Add(20 * time.Second)
	for len(rcv.events()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("webhook got %+v", rcv.events())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every POST counted: the two failures, then one success per event, and nothing more.
	for {
		m := metricsText(t, e.n)
		if strings.Contains(m, `easymail_webhook_deliveries_total{result="delivered"} 3`) {
			if !strings.Contains(m, `easymail_webhook_deliveries_total{result="failed"} 2`) {
				t.Fatalf("metrics: %s", grepLines(m, "easymail_webhook"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics: %s", grepLines(m, "easymail_webhook"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := rcv.events()
	rcv.mu.Lock()
	posts, bad := rcv.posts, rcv.badSigs
	rcv.mu.Unlock()
	if posts != 5 || bad != 0 || len(got) != 3 {
		t.Fatalf("%d POSTs, %d bad signatures, events %+v", posts, bad, got)
	}
	byKind := map[string]api.Event{}
	ids := map[string]bool{}
	for _, ev := range got {
		byKind[ev.Event+" "+ev.Recipient] = ev
		ids[ev.ID] = true
		if ev.QueueID != id || ev.MessageID != "m1@acme.test" || ev.CustomerID != e.custID || ev.Timestamp.IsZero() {
			t.Errorf("event %+v", ev)
		}
	}
	if len(ids) != 3 {
		t.Fatalf("event ids %v", ids)
	}
	if _, ok := byKind["delivered bob@dest.test"]; !ok {
		t.Errorf("no delivered event: %+v", got)
	}
	if b := byKind["bounced nobody@dest.test"]; b.BounceClass != "bad-mailbox" || !strings.Contains(b.Reply, "No such user") {
		t.Errorf("bounced event %+v", b)
	}
	if s := byKind["suppressed nobody@dest.test"]; s.Source != "bounce" {
		t.Errorf("suppressed event %+v", s)
	}
	// Nothing is dead-lettered.
	var dead []api.WebhookDelivery
	e.n.API(t, "GET", "/customers/"+e.custID+"/webhooks/dead", nil, 200, &dead)
	if len(dead) != 0 {
		t.Fatalf("dead: %+v", dead)
	}
	// The stream had the same events (and the message's own, whatever webhooks subscribe to).
	seen := map[string]bool{}
	for len(seen) < 3 {
		select {
		case ev := <-streamed:
			if ev.QueueID == id {
				seen[ev.Event+" "+ev.Recipient] = true
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("stream showed %v", seen)
		}
	}
	for k := range byKind {
		if !seen[k] {
			t.Errorf("stream lacks %s", k)
		}
	}
}

// TestWebhookDeadLetterAndRedeliver: a receiver that always fails has its event dead-lettered after
// events.max_attempts; once it works again, redelivery brings the event.
func TestWebhookDeadLetterAndRedeliver(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Events.RetryBase = 10 * time.Millisecond
		c.Events.RetryMax = 20 * time.Millisecond
		c.Events.MaxAttempts = 3
	})
	e.mx(t, "dest.test", 11)
	rcv := &hookReceiver{failures: 3}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	var hook api.Webhook
	e.n.API(t, "POST", "/customers/"+e.custID+"/webhooks", api.WebhookRequest{URL: srv.URL, Events: []string{"delivered"}}, 201, &hook)
	rcv.mu.Lock()
	rcv.secret = hook.Secret
	rcv.mu.Unlock()
	if _, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "hi")); err != nil {
		t.Fatal(err)
	}
	var dead []api.WebhookDelivery
	deadline := time.Now().Add(20 * time.Second)
	for {
		e.n.API(t, "GET", "/customers/"+e.custID+"/webhooks/dead", nil, 200, &dead)
		if len(dead) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead %+v", dead)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := dead[0]; d.Attempts != 3 || d.Event != "delivered" || d.WebhookID != hook.ID || !strings.Contains(d.LastError, "500") {
		t.Fatalf("dead delivery %+v", d)
	}
	if len(rcv.events()) != 0 {
		t.Fatalf("received %+v", rcv.events())
	}
	e.n.API(t, "POST", "/customers/"+e.custID+"/webhooks/dead/"+jsonNumber(dead[0].ID)+"/redeliver", nil, 204, nil)
	for len(rcv.events()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("redelivered event not received")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ev := rcv.events()[0]; ev.ID != dead[0].EventID || ev.Recipient != "bob@dest.test" {
		t.Fatalf("redelivered %+v", ev)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

// newHookServer serves h on loopback until the test ends and returns its URL.
func newHookServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
