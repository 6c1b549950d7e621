package node_test

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/config"
	"easymail/internal/testkit/scanners"
)

// scanMsg is a well-formed message from the test customer (rspamd scores it low).
func scanMsg(subject, body string) string {
	return scanners.Message("alice@acme.test", "bob@dest.test", subject, body)
}

// zipExeMsg is a message with a zip attachment that holds an executable.
func zipExeMsg(t *testing.T) string {
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("docs/invoice.pdf.exe")
	w.Write([]byte("MZ not really a program"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return "From: <alice@acme.test>\r\nTo: <bob@dest.test>\r\nSubject: Invoice\r\nDate: " + time.Now().Format(time.RFC1123Z) +
		"\r\nMessage-ID: <zip1@acme.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n" +
		"--zz\r\nContent-Type: text/plain\r\n\r\nPlease find the invoice attached.\r\n--zz\r\n" +
		"Content-Type: application/zip; name=\"invoice.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(zb.Bytes()) + "\r\n--zz--\r\n"
}

// apiAs calls the API with token and decodes the answer into out; it fails unless the status is want.
func apiAs(t *testing.T, base, token, method, path string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+"/api/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScanningEndToEnd runs SMTP sessions through a whole node with a real clamd and a real rspamd: clean
// mail is delivered, EICAR, GTUBE and an executable in a zip are refused in the session with 550 5.7.1
// naming the verdict, GTUBE is quarantined under a quarantine policy and then released (and delivered) or
// deleted, customers see only their own quarantine, and with clamd stopped the reply is 451 4.7.1 and the
// operator is told (or the message is accepted and tagged under a bypass policy).
func TestScanningEndToEnd(t *testing.T) {
	sc := scanners.Start(t)
	e := newEnv(t, func(c *config.Config) {
		c.Scan.Clamd, c.Scan.Rspamd = sc.Clamd, sc.Rspamd
		c.Scan.Timeout = 20 * time.Second
		c.OperatorEmail = "noc@ops.test"
	})
	mx := e.mx(t, "dest.test", 21)
	noc := e.mx(t, "ops.test", 22)
	send1 := func(msg string) (string, error) {
		return send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"}, msg)
	}

	// A clean message is delivered, tagged with the scan result, and the trace has both verdicts.
	reply, err := send1(scanMsg("Meeting notes", "Hi Bob,\n\nthe review moves to Thursday.\n\nAlice"))
	if err != nil {
		t.Fatal(err)
	}
	id := queueID(t, reply)
	e.waitStatus(t, id, "delivered")
	got := mx.WaitMessages(t, 1, 20*time.Second)[0]
	if !bytes.Contains(got.Data, []byte("X-Easymail-Scan: clean; clamd=clean; rspamd=")) {
		t.Fatalf("delivered message has no scan header:\n%s", got.Data)
	}
	var tr api.Trace
	e.n.API(t, "GET", "/messages/"+id, nil, 200, &tr)
	if tr.Message.Verdict != "clean" || tr.Message.Scan == nil || len(tr.Message.Scan.Verdicts) != 2 {
		t.Fatalf("trace scan %+v %+v", tr.Message.Verdict, tr.Message.Scan)
	}

	// Refused in the session, naming the verdict, and logged with it.
	for _, c := range []struct{ name, msg, text, verdict string }{
		{"eicar", scanMsg("Report", "attached:\n"+scanners.EICAR()), "Virus found: Eicar-Test-Signature.UNOFFICIAL", "virus"},
		{"gtube", scanMsg("Offer", "Cheap!\n"+scanners.GTUBE()), "Spam message (score 15.0): Gtube pattern", "spam"},
		{"zip", zipExeMsg(t), "Content refused: Executable attachments are not accepted", "rule"},
	} {
		_, err := send1(c.msg)
		wantCode(t, err, 550, "5.7.1")
		if !strings.Contains(err.Error(), c.text) {
			t.Fatalf("%s: reply %v, want %q", c.name, err, c.text)
		}
		var list []api.MessageSummary
		e.n.API(t, "GET", "/messages?status=rejected&verdict="+c.verdict, nil, 200, &list)
		if len(list) != 1 || !strings.Contains(list[0].Reason, c.text) {
			t.Fatalf("%s: rejected log %+v", c.name, list)
		}
	}

	// Under a quarantine policy GTUBE is accepted into the quarantine, not delivered.
	var pol api.CustomerScanPolicy
	e.n.API(t, "PUT", "/customers/"+e.custID+"/scan-policy", map[string]any{"spam_reject_score": 0, "spam_quarantine_score": 10}, 200, &pol)
	if pol.Policy.SpamQuarantineScore == nil || *pol.Policy.SpamQuarantineScore != 10 || pol.Defaults.SpamRejectScore == nil {
		t.Fatalf("policy %+v", pol)
	}
	e.n.API(t, "PUT", "/customers/"+e.custID+"/scan-policy", map[string]any{"virus_action": "drop"}, 422, nil)
	var ids []string
	for i := range 2 {
		reply, err := send1(scanMsg("Offer "+string(rune('A'+i)), "<b>Cheap</b>\n"+scanners.GTUBE()))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, queueID(t, reply))
	}
	for _, id := range ids {
		if tr := e.trace(t, id); tr.Status != "quarantined" {
			t.Fatalf("%s: status %q", id, tr.Status)
		}
	}
	var q []api.QuarantineEntry
	e.n.API(t, "GET", "/quarantine", nil, 200, &q)
	if len(q) != 2 || q[0].Verdict != "spam" || q[0].CustomerID != e.custID {
		t.Fatalf("quarantine list %+v", q)
	}
	var qm api.QuarantineMessage
	e.n.API(t, "GET", "/quarantine/"+ids[0], nil, 200, &qm)
	if !strings.Contains(qm.Header, "Subject: Offer A") || !strings.Contains(qm.Preview, "GTUBE") ||
		qm.Scan == nil || qm.Scan.Action != "quarantine" {
		t.Fatalf("quarantined message %+v", qm)
	}

	// Another customer sees none of it.
	other := e.n.AddCustomer(t, "Other", "other.test", "127.0.0.9")
	var tok api.NewToken
	e.n.API(t, "POST", "/tokens", api.TokenRequest{Role: "customer", CustomerID: other}, 201, &tok)
	var none []api.QuarantineEntry
	apiAs(t, e.n.APIURL, tok.Secret, "GET", "/quarantine", nil, 200, &none)
	if len(none) != 0 {
		t.Fatalf("another customer sees %+v", none)
	}
	apiAs(t, e.n.APIURL, tok.Secret, "GET", "/quarantine/"+ids[0], nil, 404, nil)
	apiAs(t, e.n.APIURL, tok.Secret, "POST", "/quarantine/"+ids[0]+"/release", nil, 403, nil)

	// Released, it is delivered; deleted, it is closed as rejected.
	before := len(mx.Messages())
	e.n.API(t, "POST", "/quarantine/"+ids[0]+"/release", nil, 200, nil)
	e.waitStatus(t, ids[0], "delivered")
	msgs := mx.WaitMessages(t, before+1, 20*time.Second)
	if !bytes.Contains(msgs[len(msgs)-1].Data, []byte("Subject: Offer A")) {
		t.Fatalf("released message not delivered:\n%s", msgs[len(msgs)-1].Data)
	}
	e.n.API(t, "POST", "/quarantine/"+ids[0]+"/release", nil, 404, nil)
	e.n.API(t, "DELETE", "/quarantine/"+ids[1], nil, 200, nil)
	if tr := e.trace(t, ids[1]); tr.Status != "rejected" {
		t.Fatalf("deleted quarantined message: status %q", tr.Status)
	}
	e.n.API(t, "GET", "/quarantine", nil, 200, &q)
	if len(q) != 0 {
		t.Fatalf("quarantine after release and delete: %+v", q)
	}

	// clamd down: 451 4.7.1, and the metric counts it; with the bypass policy the message goes through tagged.
	e.n.API(t, "PUT", "/customers/"+e.custID+"/scan-policy", map[string]any{}, 200, nil)
	sc.StopClamd(t)
	_, err = send1(scanMsg("Meeting notes", "Hi Bob"))
	wantCode(t, err, 451, "4.7.1")
	if m := metricsText(t, e.n); !strings.Contains(m, `easymail_scan_failures_total{scanner="clamd"} 1`) ||
		!strings.Contains(m, `easymail_scan_scanner_up{scanner="clamd"} 0`) {
		t.Fatalf("scan metrics:\n%s", grepLines(m, "easymail_scan_"))
	}
	// The operator is told, once.
	notice := noc.WaitMessages(t, 1, 20*time.Second)[0]
	if !bytes.Contains(notice.Data, []byte("Subject: [easymail] Scanner clamd unavailable")) || notice.To[0] != "noc@ops.test" {
		t.Fatalf("operator notice:\n%s", notice.Data)
	}
	e.n.API(t, "PUT", "/customers/"+e.custID+"/scan-policy", map[string]any{"on_failure": "bypass"}, 200, nil)
	reply, err = send1(scanMsg("Bypassed", "Hi Bob"))
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus(t, queueID(t, reply), "delivered")
	msgs = mx.Messages()
	if !bytes.Contains(msgs[len(msgs)-1].Data, []byte("X-Easymail-Scan: bypassed; clamd=unavailable")) {
		t.Fatalf("bypassed message:\n%s", msgs[len(msgs)-1].Data)
	}
	if n := len(noc.Messages()); n != 1 {
		t.Fatalf("%d operator notices, want 1", n)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// exeAttachmentMsg is a message with an attachment named invoice.pdf.exe (not archived).
func exeAttachmentMsg(subject string) string {
	return "From: <alice@acme.test>\r\nTo: <bob@dest.test>\r\nSubject: " + subject + "\r\nDate: " + time.Now().Format(time.RFC1123Z) +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@acme.test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nThe invoice is attached.\r\n" +
		"--zz\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nTVpQAAIAAAAEAA8A//8AALgAAAAAAAAAQAAaAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n--zz--\r\n"
}

// TestCustomerRulesAddToDefaults: through the real node and its API, a customer policy with one header rule
// keeps the default rules (invoice.pdf.exe is still refused, and the customer's rule applies too), the API
// shows the rules in force by origin, and only with replace_defaults do the customer's rules replace the
// defaults. Another customer cannot read the policy.
func TestCustomerRulesAddToDefaults(t *testing.T) {
	e := newEnv(t, nil)
	mx := e.mx(t, "dest.test", 21)
	send1 := func(msg string) (string, error) {
		return send(t, e.n.SMTPAddr, "127.0.0.1", "alice@acme.test", []string{"bob@dest.test"}, msg)
	}
	scam := map[string]any{"name": "scam", "type": "header", "pattern": "(?i)^subject: .*overdue", "action": "reject",
		"reason": "Suspicious subject"}

	var pol api.CustomerScanPolicy
	e.n.API(t, "PUT", "/customers/"+e.custID+"/scan-policy", map[string]any{"rules": []any{scam}}, 200, &pol)
	if len(pol.EffectiveRules) != 2 || pol.EffectiveRules[0].Origin != "default" || pol.EffectiveRules[0].Name != "executable" ||
		pol.EffectiveRules[1].Origin != "customer" || pol.EffectiveRules[1].Name != "scam" {
		t.Fatalf("effective rules %+v", pol.EffectiveRules)
	}
	_, err := send1(exeAttachmentMsg("Invoice 1"))
	wantCode(t, err, 550, "5.7.1")
	if !strings.Contains(err.Error(), "Executable attachments are not accepted") {
		t.Fatalf("reply %v", err)
	}
	_, err = send1(scanMsg("Overdue invoice", "Pay now."))
	wantCode(t, err, 550, "5.7.1")
	if !strings.Contains(err.Error(), "Suspicious subject") {
		t.Fatalf("reply %v", err)
	}
	var got api.CustomerScanPolicy
	e.n.API(t, "GET", "/customers/"+e.custID+"/scan-policy", nil, 200, &got)
	if len(got.EffectiveRules) != 2 || got.Policy.ReplaceDefaults {
		t.Fatalf("GET scan-policy %+v", got)
	}

	// replace_defaults: only the customer's rule applies.
	e.n.API(t, "PUT", "/customers/"+e.custID+"/scan-policy", map[string]any{"replace_defaults": true, "rules": []any{scam}}, 200, &pol)
	if len(pol.EffectiveRules) != 1 || pol.EffectiveRules[0].Origin != "customer" || !pol.Policy.ReplaceDefaults {
		t.Fatalf("effective rules with replace_defaults %+v", pol.EffectiveRules)
	}
	reply, err := send1(exeAttachmentMsg("Invoice 2"))
	if err != nil {
		t.Fatalf("with replace_defaults: %v", err)
	}
	e.waitStatus(t, queueID(t, reply), "delivered")
	if got := mx.WaitMessages(t, 1, 20*time.Second)[0]; !bytes.Contains(got.Data, []byte("invoice.pdf.exe")) {
		t.Fatalf("delivered:\n%s", got.Data)
	}
	_, err = send1(scanMsg("Overdue invoice", "Pay now."))
	wantCode(t, err, 550, "5.7.1")

	// Another customer's token sees nothing of this policy.
	other := e.n.AddCustomer(t, "Other", "other.test", "127.0.0.9")
	var tok api.NewToken
	e.n.API(t, "POST", "/tokens", api.TokenRequest{Role: "customer", CustomerID: other}, 201, &tok)
	apiAs(t, e.n.APIURL, tok.Secret, "GET", "/customers/"+e.custID+"/scan-policy", nil, 404, nil)
}
