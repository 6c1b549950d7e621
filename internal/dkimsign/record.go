package dkimsign

import (
	"context"
	"database/sql"
	"strings"
)

// Record writes a message's authentication result to the message log (its row in messages, which must
// exist). It returns at once: the write joins the store's next group commit, off the path of the SMTP reply,
// which it would otherwise delay by a commit. The message itself is already durably queued; a crash in the
// moment between loses only these log columns. Close waits for the writes started.
func (m *Manager) Record(queueID string, r Result) {
	m.recMu.Lock()
	if m.recClosed {
		m.recMu.Unlock()
		m.record(queueID, r)
		return
	}
	m.records.Add(1)
	m.recMu.Unlock()
	go func() {
		defer m.records.Done()
		m.record(queueID, r)
	}()
}

func (m *Manager) record(queueID string, r Result) {
	err := m.db.BatchLazy(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE messages SET from_domain = ?, dkim_domain = ?, dkim_selectors = ?, dkim_aligned = ?,
			spf_aligned = ?, dmarc_aligned = ?, bulk = ?, list_unsubscribe = ?, list_unsubscribe_post = ? WHERE id = ?`,
			r.FromDomain, r.DKIMDomain, strings.Join(r.Selectors, ","), r.DKIMAligned, r.SPFAligned, r.DMARCAligned,
			r.Bulk, r.ListUnsubscribe, r.OneClick, queueID)
		return err
	})
	if err != nil {
		m.log.Warn("dkim: could not record a message's authentication result", "queue_id", queueID, "err", err)
	}
}
