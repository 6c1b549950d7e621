package msglog

import (
	"database/sql"
)

// authColumns selects a message's authentication facts (migration 0003), written by package dkimsign.
const authColumns = `from_domain, dkim_domain, dkim_selectors, dkim_aligned, spf_aligned, dmarc_aligned, bulk,
	list_unsubscribe, list_unsubscribe_post`

// auth receives authColumns.
type auth struct {
	fromDomain, dkimDomain, selectors string
	dkimAligned, spfAligned, dmarc    sql.NullBool
	bulk, listUnsub, listUnsubPost    bool
}

func (a *auth) dest() []any {
	return []any{&a.fromDomain, &a.dkimDomain, &a.selectors, &a.dkimAligned, &a.spfAligned, &a.dmarc, &a.bulk,
		&a.listUnsub, &a.listUnsubPost}
}

// fill copies the facts into m; the alignments stay nil for a message never analysed.
func (a *auth) fill(m *Message) {
	m.FromDomain, m.DKIMDomain, m.DKIMSelectors = a.fromDomain, a.dkimDomain, a.selectors
	m.DKIMAligned, m.SPFAligned, m.DMARCAligned = optBool(a.dkimAligned), optBool(a.spfAligned), optBool(a.dmarc)
	m.Bulk, m.ListUnsubscribe, m.ListUnsubscribePost = a.bulk, a.listUnsub, a.listUnsubPost
}

func optBool(v sql.NullBool) *bool {
	if !v.Valid {
		return nil
	}
	b := v.Bool
	return &b
}
