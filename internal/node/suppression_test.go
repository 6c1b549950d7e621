package node_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/config"
)

type suppressionEntry struct {
	Address string    `json:"address"`
	Source  string    `json:"source"`
	QueueID string    `json:"queue_id"`
	Reason  string    `json:"reason"`
	Created time.Time `json:"created_at"`
	Expires time.Time `json:"expires_at"`
}

// TestHardBounceSuppressesRecipient: a 550 5.1.1 at the receiver classifies the bounce as bad-mailbox and
// suppresses the address for the customer; the next message to it is refused at RCPT with 550 5.1.1 naming
// the suppression, until the suppression expires.
func TestHardBounceSuppressesRecipient(t *testing.T) {
	// Long enough for the refusal below to come well within it on a busy machine.
	const ttl = 8 * time.Second
	e := newEnv(t, func(c *config.Config) { c.Suppression.TTL = ttl })
	mx := e.mx(t, "dest.test", 11)
	e.mx(t, "acme.test", 12) // takes the DSN
	mx.Reply("nobody@dest.test", 550, [3]int{5, 1, 1}, "no such user here")

	reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"nobody@dest.test"},
		message("alice@acme.test", "nobody@dest.test", "first"))
	if err != nil {
		t.Fatal(err)
	}
	id := queueID(t, reply)
	e.waitStatus(t, id, "bounced")

	// The trace carries the class, on the recipient and on the attempt.
	var tr struct {
		Recipients []struct {
			BounceClass string `json:"bounce_class"`
		} `json:"recipients"`
		Attempts []struct {
			BounceClass string `json:"bounce_class"`
		} `json:"attempts"`
	}
	e.n.API(t, "GET", "/messages/"+id, nil, 200, &tr)
	if len(tr.Recipients) != 1 || tr.Recipients[0].BounceClass != "bad-mailbox" || len(tr.Attempts) != 1 ||
		tr.Attempts[0].BounceClass != "bad-mailbox" {
		t.Fatalf("trace %+v", tr)
	}
	var list []suppressionEntry
	e.n.API(t, "GET", "/customers/"+e.custID+"/suppressions", nil, 200, &list)
	if len(list) != 1 || list[0].Address != "nobody@dest.test" || list[0].Source != "bounce" || list[0].QueueID != id ||
		!strings.Contains(list[0].Reason, "no such user here") {
		t.Fatalf("suppressions %+v", list)
	}

	// The next message to it, whatever the case of its letters, is refused at RCPT.
	_, err = send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"Nobody@Dest.test"},
		message("alice@acme.test", "nobody@dest.test", "second"))
	wantCode(t, err, 550, "5.1.1")
	day := list[0].Created.UTC().Format(time.DateOnly)
	if !strings.Contains(err.Error(), "Recipient suppressed after a hard bounce on "+day) ||
		!strings.Contains(err.Error(), "no such user here") {
		t.Fatalf("refusal text: %v", err)
	}
	if n := len(mx.Messages()); n != 0 {
		t.Fatalf("the receiver got %d messages", n)
	}
	// The refusal is in the message log.
	var found []struct {
		ID     string `json:"id"`
		Reason string `json:"reason"`
	}
	e.n.API(t, "GET", "/messages?status=rejected&recipient=nobody@dest.test", nil, 200, &found)
	if len(found) != 1 || !strings.Contains(found[0].Reason, "550 5.1.1 Recipient suppressed") {
		t.Fatalf("refusal not logged: %+v", found)
	}
	// Other recipients, and other customers, are not affected.
	if _, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"somebody@dest.test"},
		message("alice@acme.test", "somebody@dest.test", "other rcpt")); err != nil {
		t.Fatal(err)
	}
	mx.WaitMessages(t, 1, 10*time.Second)
	// Statistics count the bounce by class.
	var stats struct {
		Series []struct {
			Total struct {
				Bounced        int            `json:"bounced"`
				BouncedByClass map[string]int `json:"bounced_by_class"`
				Rejected       int            `json:"rejected"`
			} `json:"total"`
		} `json:"series"`
	}
	e.n.API(t, "GET", "/stats?customer="+e.custID, nil, 200, &stats)
	if tot := stats.Series[0].Total; tot.Bounced != 1 || tot.BouncedByClass["bad-mailbox"] != 1 || tot.Rejected != 1 {
		t.Fatalf("stats %+v", stats)
	}

	// Once the TTL has passed, mail to the address is accepted again.
	deadline := list[0].Created.Add(ttl + 20*time.Second)
	for {
		time.Sleep(time.Until(list[0].Created.Add(ttl)))
		_, err = send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"nobody@dest.test"},
			message("alice@acme.test", "nobody@dest.test", "after expiry"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after the TTL: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The list shows no expired entry (the new message's bounce may have made a fresh one).
	e.n.API(t, "GET", "/customers/"+e.custID+"/suppressions", nil, 200, &list)
	if len(list) != 0 && !list[0].Created.After(time.Now().Add(-ttl)) {
		t.Fatalf("expired entry still listed: %+v", list)
	}
}

// TestOperatorSuppressionAndRemoval: an operator's entry refuses at RCPT; removing it lets mail through.
func TestOperatorSuppressionAndRemoval(t *testing.T) {
	e := newEnv(t, nil)
	mx := e.mx(t, "dest.test", 11)
	e.n.API(t, "POST", "/customers/"+e.custID+"/suppressions", map[string]string{"address": "carol@dest.test", "reason": "asked us"}, 201, nil)
	_, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"carol@dest.test"},
		message("alice@acme.test", "carol@dest.test", "x"))
	wantCode(t, err, 550, "5.1.1")
	if !strings.Contains(err.Error(), "Recipient suppressed by the operator on") || !strings.Contains(err.Error(), "asked us") {
		t.Fatalf("refusal %v", err)
	}
	// Another customer may still write to carol.
	e.n.AddCustomer(t, "Bolt", "bolt.test", "127.0.0.2/32")
	if _, err := send(t, e.n.SMTPAddr, "127.0.0.2", "bert@bolt.test", []string{"carol@dest.test"},
		message("bert@bolt.test", "carol@dest.test", "x")); err != nil {
		t.Fatalf("another customer refused: %v", err)
	}
	e.n.API(t, "DELETE", "/customers/"+e.custID+"/suppressions/carol@dest.test", nil, 204, nil)
	if _, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"carol@dest.test"},
		message("alice@acme.test", "carol@dest.test", "y")); err != nil {
		t.Fatal(err)
	}
	mx.WaitMessages(t, 2, 10*time.Second)
}

// TestBodiesNotKeptAndMetrics: once a message is finished (delivered, bounced, or its DSN delivered), its
// content is gone from the spool; /metrics shows the queue state and the suppression refusals.
func TestBodiesNotKeptAndMetrics(t *testing.T) {
	e := newEnv(t, nil)
	mx := e.mx(t, "dest.test", 11)
	senderMX := e.mx(t, "acme.test", 12)
	mx.Reply("nobody@dest.test", 550, [3]int{5, 1, 1}, "no such user")
	r1, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "delivered"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"nobody@dest.test"},
		message("alice@acme.test", "nobody@dest.test", "bounced"))
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus(t, queueID(t, r1), "delivered")
	e.waitStatus(t, queueID(t, r2), "bounced")
	senderMX.WaitMessages(t, 1, 10*time.Second)
	spool := filepath.Join(e.n.Config.DataDir, "spool")
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, err := os.ReadDir(spool)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message content kept after delivery: %v", ents)
		}
		time.Sleep(50 * time.Millisecond)
	}

	_, err = send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"nobody@dest.test"},
		message("alice@acme.test", "nobody@dest.test", "suppressed"))
	wantCode(t, err, 550, "5.1.1")
	resp, err := http.Get(e.n.APIURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`easymail_queue_messages{state="queued"} 0`,
		`easymail_queue_recipients{state="deferred"} 0`,
		`easymail_queue_oldest_message_age_seconds 0`,
		`easymail_queue_deferred_recipients{destination="other"} 0`,
		`easymail_queue_stats_up 1`,
		`easymail_suppressions 1`,
		`easymail_suppression_refusals_total 1`,
		`easymail_retention_last_run_timestamp_seconds`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
