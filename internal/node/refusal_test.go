package node_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"easymail/internal/cli"
)

// TestRefusalsInTheMessageLog: every refusal, at MAIL, at RCPT and of the content, is in the message log
// once, with its stage, in searches, traces (API and CLI) and statistics; a header bomb is refused on a node
// that signs.
func TestRefusalsInTheMessageLog(t *testing.T) {
	e := newEnv(t, dkimConfig)
	e.mx(t, "dest.test", 11)
	addr := e.n.SMTPAddr

	if _, err := send(t, addr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "fine")); err != nil {
		t.Fatal(err)
	}
	_, err := send(t, addr, "127.0.0.1", "mallory@evil.test", []string{"bob@dest.test"},
		message("mallory@evil.test", "bob@dest.test", "x"))
	wantCode(t, err, 550, "5.7.1")
	_, err = send(t, addr, "127.0.0.1", "alice@acme.test", []string{"a!b@dest.test"},
		message("alice@acme.test", "bob@dest.test", "x"))
	wantCode(t, err, 550, "5.7.1")
	got := rawSession(t, addr, "EHLO a.test\r\nMAIL FROM:<alice@acme.test>\r\nRCPT TO:<bob@dest.test>\r\nDATA\r\n",
		"From: alice@acme.test\r\nSubject: x\r\n\r\nline\n.\nMAIL FROM:<x@evil.test>\r\n.\r\n")
	if !strings.HasPrefix(got, "554 5.6.0") {
		t.Fatalf("bare LF: reply %q", got)
	}
	_, err = send(t, addr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("x@acme.test", "bob@dest.test", "two From", "From: ceo@b-corp.example"))
	wantCode(t, err, 554, "5.6.0")
	var bomb strings.Builder
	for i := range 55000 {
		fmt.Fprintf(&bomb, "To: r%d@dest.test\r\n", i)
	}
	_, err = send(t, addr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"},
		message("alice@acme.test", "bob@dest.test", "bomb", strings.TrimSuffix(bomb.String(), "\r\n")))
	wantCode(t, err, 552, "5.3.4")
	if !strings.Contains(err.Error(), "Too many header fields") {
		t.Fatalf("header bomb: %v", err)
	}

	var list []struct {
		ID     string `json:"id"`
		Sender string `json:"sender"`
		Reason string `json:"reason"`
		Stage  string `json:"stage"`
	}
	e.n.API(t, "GET", "/messages?status=rejected", nil, 200, &list)
	stages := map[string]int{}
	reasons := map[string]bool{}
	for _, m := range list {
		stages[m.Stage]++
		reasons[m.Reason[:9]] = true
	}
	if len(list) != 5 || stages["mail"] != 1 || stages["rcpt"] != 1 || stages["data"] != 3 ||
		!reasons["550 5.7.1"] || !reasons["554 5.6.0"] || !reasons["552 5.3.4"] {
		t.Fatalf("rejected messages %+v", list)
	}
	for _, m := range list {
		var tr struct {
			Status string `json:"status"`
			Stage  string `json:"stage"`
		}
		e.n.API(t, "GET", "/messages/"+m.ID, nil, 200, &tr)
		if tr.Status != "rejected" || tr.Stage != m.Stage {
			t.Fatalf("trace of %s: %+v, want stage %q", m.ID, tr, m.Stage)
		}
	}
	var stats struct {
		Series []struct {
			Total struct {
				Rejected int `json:"rejected"`
			} `json:"total"`
		} `json:"series"`
	}
	e.n.API(t, "GET", "/stats?customer="+e.custID, nil, 200, &stats)
	if len(stats.Series) != 1 || stats.Series[0].Total.Rejected != 5 {
		t.Fatalf("stats %+v", stats)
	}

	var out, errb bytes.Buffer
	if code := cli.Main(context.Background(), []string{"trace", list[0].ID, "--api", e.n.APIURL, "--token", e.n.Token},
		&out, &errb); code != 0 {
		t.Fatalf("trace: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "stage") || !strings.Contains(out.String(), list[0].Stage) {
		t.Fatalf("CLI trace without the stage:\n%s", out.String())
	}
}
