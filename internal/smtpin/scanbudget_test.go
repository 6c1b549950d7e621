package smtpin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"easymail/internal/api"
	"easymail/internal/contentrules"
	"easymail/internal/contentrules/contentrulestest"
	"easymail/internal/queue"
	"easymail/internal/scan"
)

// memQuarantine is a Quarantine that keeps the content it was given.
type memQuarantine struct {
	mu   sync.Mutex
	ids  []string
	msgs [][]byte
}

func (q *memQuarantine) Put(_ context.Context, env queue.Envelope, _ api.ScanReport, msg io.ReaderAt, size int64) error {
	b, err := io.ReadAll(io.NewSectionReader(msg, 0, size))
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids, q.msgs = append(q.ids, env.ID), append(q.msgs, b)
	return nil
}

// rulesServer starts a test server that applies the default content rules (no scanner) within lim, with
// overLimits as the action over them; its metrics are in the returned registry.
func rulesServer(t *testing.T, lim contentrules.Limits, overLimits string) (*testServer, *prometheus.Registry, *memQuarantine) {
	t.Helper()
	reg := prometheus.NewRegistry()
	mq := &memQuarantine{}
	ts := startServer(t, func(o *Options) {
		lim.ScratchDir = o.Spool.Dir()
		o.Scan = scan.New(scan.Options{Policies: defaultScanPolicy(t), Limits: lim, OverLimits: overLimits,
			Registerer: reg, Logger: o.Logger})
		o.Quarantine = mq
		o.MaxMessageSize = 8 << 20
	})
	return ts, reg, mq
}

func wantReply(t *testing.T, err error, code int, enhanced, text string) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != code ||
		se.EnhancedCode != (smtp.EnhancedCode{int(enhanced[0] - '0'), int(enhanced[2] - '0'), int(enhanced[4] - '0')}) ||
		!strings.Contains(se.Message, text) {
		t.Fatalf("reply %v, want %d %s %q", err, code, enhanced, text)
	}
}

// TestContentBudgetsRefuse: messages over the content rules' budgets (a zip bomb nested three levels, an
// archive of too many files, archives nested too deep) are refused in the session with 552 5.3.4, logged
// as refused, and counted by budget; an executable in a plain archive is still 550 5.7.1; a message within
// the budgets is accepted.
func TestContentBudgetsRefuse(t *testing.T) {
	ts, reg, _ := rulesServer(t, contentrules.Limits{MaxDecompressedBytes: 16 << 20, MaxArchiveEntries: 500}, "")
	from := "alice@acme.test"
	want := map[string]float64{}
	for _, c := range []struct {
		name, budget string
		msg          []byte
	}{
		{"zip bomb", contentrules.BudgetDecompressed, contentrulestest.Message(from, "bomb.zip", contentrulestest.ZipBomb(3, 16, 4<<20))},
		{"many entries", contentrules.BudgetEntries, contentrulestest.Message(from, "many.zip", contentrulestest.ManyEntries(2000))},
		{"deep archives", contentrules.BudgetDepth, contentrulestest.Message(from, "deep.zip", contentrulestest.Nested(30, "run.exe", false))},
		{"deep multiparts", contentrules.BudgetDepth, contentrulestest.NestedMultipart(from, 40, "run.exe")},
	} {
		err := sendStream(t, ts.addr, bytes.NewReader(c.msg))
		wantReply(t, err, 552, "5.3.4", "Message too complex to scan")
		want[c.budget]++
		if n := budgetCount(t, reg, c.budget); n != want[c.budget] {
			t.Errorf("%s: easymail_contentrules_budget_exceeded_total{budget=%q} = %v, want %v", c.name, c.budget, n, want[c.budget])
		}
	}
	if n := len(ts.q.refusals()); n != 4 || len(ts.q.all()) != 0 {
		t.Fatalf("%d refusals logged, %d enqueued", n, len(ts.q.all()))
	}
	err := sendStream(t, ts.addr, bytes.NewReader(contentrulestest.Message(from, "docs.zip", contentrulestest.Nested(3, "setup.exe", false))))
	wantReply(t, err, 550, "5.7.1", "Executable attachments are not accepted")
	if err := sendStream(t, ts.addr, bytes.NewReader(contentrulestest.Message(from, "docs.zip", contentrulestest.Nested(3, "notes.txt", false)))); err != nil {
		t.Fatalf("a harmless archive: %v", err)
	}
	if len(ts.q.all()) != 1 {
		t.Fatalf("enqueued %d", len(ts.q.all()))
	}
}

// budgetCount returns easymail_contentrules_budget_exceeded_total{budget}.
func budgetCount(t *testing.T, reg *prometheus.Registry, budget string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "easymail_contentrules_budget_exceeded_total" {
			continue
		}
		for _, m := range mf.Metric {
			if m.GetLabel()[0].GetValue() == budget {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no easymail_contentrules_budget_exceeded_total{budget=%q}", budget)
	return 0
}

// TestContentBudgetQuarantine: with the quarantine as the action over budget, a zip bomb is accepted into
// the quarantine (250), with the content that was spooled.
func TestContentBudgetQuarantine(t *testing.T) {
	ts, _, mq := rulesServer(t, contentrules.Limits{MaxDecompressedBytes: 16 << 20}, api.ActionQuarantine)
	msg := contentrulestest.Message("alice@acme.test", "bomb.zip", contentrulestest.ZipBomb(3, 16, 4<<20))
	if err := sendStream(t, ts.addr, bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if len(mq.ids) != 1 || len(ts.q.all()) != 0 {
		t.Fatalf("quarantined %v, enqueued %d", mq.ids, len(ts.q.all()))
	}
	if !bytes.HasSuffix(mq.msgs[0], msg[bytes.Index(msg, []byte("\r\n\r\n")):]) {
		t.Fatalf("quarantined content differs from the message sent")
	}
}
