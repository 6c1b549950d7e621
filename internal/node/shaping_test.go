package node_test

import (
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/config"
)

// TestProviderBackoffOnThrottling: two destination domains share the MX host of provider "slowprov", a third
// is at "fastprov". slowprov answers 421 4.7.0 "Try again later": the IP is paused for slowprov, so the
// message to its other domain is deferred without a connection, while fastprov keeps taking every message;
// the pause shows in the metrics and the API, and an operator's resume lets the deferred mail go.
func TestProviderBackoffOnThrottling(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Shaping.Providers = []config.Provider{
			{Name: "slowprov", MX: []string{"*.slow.test"}},
			{Name: "fastprov", MX: []string{"*.fast.test"}, MessagesPerConnection: 2},
		}
		c.Shaping.PauseBase = time.Hour
		c.Shaping.PauseMax = 4 * time.Hour
	})
	slow := e.mxp.NewMX(t, "127.0.0.11")
	fast := e.mxp.NewMX(t, "127.0.0.12")
	e.dns.AddA("mx1.slow.test", "127.0.0.11")
	e.dns.AddA("mx1.fast.test", "127.0.0.12")
	e.dns.AddMX("a.test", "mx1.slow.test", 10)
	e.dns.AddMX("b.test", "mx1.slow.test", 10)
	e.dns.AddMX("c.test", "mx1.fast.test", 10)
	slow.FailNext(1, 421, [3]int{4, 7, 0}, "Try again later, too many messages from your IP")

	sendOne := func(to string) string {
		t.Helper()
		reply, err := send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{to}, message("alice@acme.test", to, "hi"))
		if err != nil {
			t.Fatal(err)
		}
		return queueID(t, reply)
	}
	a := sendOne("ann@a.test")
	e.waitStatus(t, a, "deferred")
	conns := slow.Connections()

	b := sendOne("ben@b.test")
	e.waitStatus(t, b, "deferred")
	var fastIDs []string
	for _, r := range []string{"c1@c.test", "c2@c.test", "c3@c.test"} {
		fastIDs = append(fastIDs, sendOne(r))
	}
	for _, id := range fastIDs {
		e.waitStatus(t, id, "delivered")
	}
	if n := slow.Connections(); n != conns {
		t.Fatalf("slowprov got %d connections while paused (had %d)", n, conns)
	}
	if n := len(slow.Messages()); n != 0 {
		t.Fatalf("slowprov got %d messages while paused", n)
	}
	tr := e.trace(t, b)
	if last := tr.Attempts[len(tr.Attempts)-1]; last.Code != 451 {
		t.Fatalf("b's attempts %+v", tr.Attempts)
	}
	m := metricsText(t, e.n)
	for _, want := range []string{
		`easymail_shaping_throttles_total{class="throttle",ip="127.0.0.1",provider="slowprov"} 1`,
		`easymail_shaping_admitted_total{provider="fastprov"} 3`,
		`easymail_shaping_deferrals_total{provider="slowprov",reason="paused"}`,
	} {
		if !strings.Contains(m, want) {
			t.Fatalf("metrics lack %s:\n%s", want, grepLines(m, "easymail_shaping"))
		}
	}
	// Two messages per connection at fastprov: the third needed a second connection.
	if n := fast.Connections(); n < 2 {
		t.Fatalf("fastprov: %d connections for 3 messages at 2 per connection", n)
	}
	var provs []api.ProviderState
	e.n.API(t, "GET", "/providers", nil, 200, &provs)
	if len(provs) != 2 || provs[0].Name != "slowprov" || len(provs[0].IPs) != 1 || !provs[0].IPs[0].Paused ||
		provs[0].IPs[0].IP != "127.0.0.1" || !strings.Contains(provs[0].IPs[0].LastReply, "Try again later") ||
		len(provs[1].IPs) != 1 || provs[1].IPs[0].Paused {
		t.Fatalf("providers %+v", provs)
	}
	e.n.API(t, "POST", "/providers/slowprov/ips/127.0.0.1/resume", nil, 204, nil)
	e.waitStatus(t, a, "delivered")
	e.waitStatus(t, b, "delivered")
}
