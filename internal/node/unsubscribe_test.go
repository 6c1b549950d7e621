package node_test

import (
	"bytes"
	"io"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
)

// postUnsubscribe POSTs body to an unsubscribe URI and returns the status.
func postUnsubscribe(t *testing.T, uri, body string) int {
	t.Helper()
	resp, err := http.Post(uri, "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestOneClickUnsubscribeDelegated: a customer that delegates unsubscription gets List-Unsubscribe (an
// https... here http, the node's public URL, /u/TOKEN) and List-Unsubscribe-Post on its single-recipient
// messages, covered by the DKIM signature; a message with its own List-Unsubscribe and a message for two
// recipients are left alone. POSTing List-Unsubscribe=One-Click to the URI, as the receiver's mail client
// does, suppresses the recipient (source unsubscribe, no expiry), emits one suppressed event however often
// it is repeated, and the customer's next message to the recipient is refused at RCPT. A wrong body is 400;
// a forged token 404.
func TestOneClickUnsubscribeDelegated(t *testing.T) {
	e := newEnv(t, dkimConfig)
	mx := e.mx(t, "dest.test", 11)
	e.publishKey(*e.keyIn(t, "active", "rsa"))
	rcv := &hookReceiver{}
	var hook api.Webhook
	e.n.API(t, "POST", "/customers/"+e.custID+"/webhooks", api.WebhookRequest{URL: newHookServer(t, rcv), Events: []string{"suppressed"}}, 201, &hook)
	rcv.mu.Lock()
	rcv.secret = hook.Secret
	rcv.mu.Unlock()

	// Not delegated: nothing is added.
	e.waitStatus(t, e.sendMsg(t, []string{"bob@dest.test"}, message("alice@acme.test", "bob@dest.test", "before")), "delivered")
	if h := headerOf(mx.WaitMessages(t, 1, 10*time.Second)[0].Data); hasField(h, "List-Unsubscribe") {
		t.Fatalf("List-Unsubscribe added for a customer that does not delegate:\n%s", h)
	}
	var c api.Customer
	delegated := "delegated"
	e.n.API(t, "PATCH", "/customers/"+e.custID, api.CustomerUpdate{Unsubscribe: &delegated}, 200, &c)
	if c.Unsubscribe != "delegated" {
		t.Fatalf("customer %+v", c)
	}
	bad := "always"
	e.n.API(t, "PATCH", "/customers/"+e.custID, api.CustomerUpdate{Unsubscribe: &bad}, 422, nil)

	id := e.sendMsg(t, []string{"bob@dest.test"}, message("alice@acme.test", "bob@dest.test", "news"))
	e.waitStatus(t, id, "delivered")
	own := e.sendMsg(t, []string{"carol@dest.test"}, message("alice@acme.test", "carol@dest.test", "own",
		"List-Unsubscribe: <mailto:unsub@acme.test>"))
	e.waitStatus(t, own, "delivered")
	two := e.sendMsg(t, []string{"dave@dest.test", "erin@dest.test"}, message("alice@acme.test", "dave@dest.test", "two"))
	e.waitStatus(t, two, "delivered")
	msgs := mx.WaitMessages(t, 4, 10*time.Second)
	m, err := mail.ReadMessage(bytes.NewReader(msgs[1].Data))
	if err != nil {
		t.Fatal(err)
	}
	lu := m.Header.Get("List-Unsubscribe")
	prefix := "<" + e.n.Config.API.PublicURL + "/u/"
	if !strings.HasPrefix(lu, prefix) || !strings.HasSuffix(lu, ">") || len(m.Header["List-Unsubscribe"]) != 1 ||
		m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Fatalf("header:\n%s", headerOf(msgs[1].Data))
	}
	vs := verifyDKIM(t, e.dns, msgs[1].Data)
	if len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("DKIM: %+v", vs)
	}
	for _, k := range []string{"list-unsubscribe", "list-unsubscribe-post"} {
		if !slices.ContainsFunc(vs[0].HeaderKeys, func(h string) bool { return strings.EqualFold(h, k) }) {
			t.Fatalf("%s not signed: h=%v", k, vs[0].HeaderKeys)
		}
	}
	if h := headerOf(msgs[2].Data); strings.Count(h, "\nList-Unsubscribe:") != 1 || !strings.Contains(h, "mailto:unsub@acme.test") ||
		hasField(h, "List-Unsubscribe-Post") {
		t.Fatalf("a message with its own List-Unsubscribe was changed:\n%s", h)
	}
	if h := headerOf(msgs[3].Data); hasField(h, "List-Unsubscribe") || hasField(h, "List-Unsubscribe-Post") {
		t.Fatalf("List-Unsubscribe added to a message for two recipients:\n%s", h)
	}

	uri := strings.TrimSuffix(strings.TrimPrefix(lu, "<"), ">")
	token := strings.TrimPrefix(uri, e.n.Config.API.PublicURL+"/u/")
	if st := postUnsubscribe(t, uri, "List-Unsubscribe=Yes"); st != 400 {
		t.Fatalf("wrong body: %d", st)
	}
	forged := e.n.Config.API.PublicURL + "/u/" + strings.Replace(token, ".", ".A", 1)
	if st := postUnsubscribe(t, forged, "List-Unsubscribe=One-Click"); st != 404 {
		t.Fatalf("forged token: %d", st)
	}
	if st := postUnsubscribe(t, e.n.Config.API.PublicURL+"/u/Ym9i.AAAA", "List-Unsubscribe=One-Click"); st != 404 {
		t.Fatalf("made-up token: %d", st)
	}
	var sups []api.Suppression
	e.n.API(t, "GET", "/customers/"+e.custID+"/suppressions", nil, 200, &sups)
	if len(sups) != 0 {
		t.Fatalf("suppressed by bad requests: %+v", sups)
	}
	// A GET (a link checker, a person opening the link) unsubscribes nobody.
	resp, err := http.Get(uri)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	for range 2 {
		if st := postUnsubscribe(t, uri, "List-Unsubscribe=One-Click"); st != 200 {
			t.Fatalf("one-click POST: %d", st)
		}
	}
	e.n.API(t, "GET", "/customers/"+e.custID+"/suppressions", nil, 200, &sups)
	if len(sups) != 1 || sups[0].Address != "bob@dest.test" || sups[0].Source != "unsubscribe" || sups[0].QueueID != id ||
		sups[0].ExpiresAt.Year() != 9999 {
		t.Fatalf("suppressions %+v", sups)
	}
	if m := metricsText(t, e.n); !strings.Contains(m, `easymail_events_total{event="suppressed"} 1`+"\n") {
		t.Fatalf("events emitted:\n%s", grepLines(m, "easymail_events_total"))
	}
	waitFor(t, "a suppressed event", func() bool { return len(rcv.events()) > 0 })
	if evs := rcv.events(); len(evs) != 1 || evs[0].Event != "suppressed" || evs[0].Source != "unsubscribe" ||
		evs[0].Recipient != "bob@dest.test" || evs[0].QueueID != id {
		t.Fatalf("events %+v", evs)
	}
	_, err = send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"}, message("alice@acme.test", "bob@dest.test", "again"))
	wantCode(t, err, 550, "5.1.1")
	if !strings.Contains(err.Error(), "unsubscribed") {
		t.Fatalf("refusal %v", err)
	}
}

// hasField reports whether the header section h has a field named name (DKIM's h= tag names fields that
// may be absent).
func hasField(h, name string) bool {
	return strings.Contains("\n"+strings.ToLower(h), "\n"+strings.ToLower(name)+":")
}

// sendMsg sends msg from alice@acme.test to rcpts and returns the queue id.
func (e *env) sendMsg(t *testing.T, rcpts []string, msg string) string {
	t.Helper()
	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", rcpts, msg)
	if err != nil {
		t.Fatal(err)
	}
	return queueID(t, reply)
}
