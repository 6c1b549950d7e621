package dkimsign

import (
	"strings"

	"github.com/emersion/go-message/textproto"
)

// bulkMarkers reads a message's bulk-mail markers. bulk: it looks like bulk mail, as it has
// "Precedence: bulk" or "Precedence: list", a List-Id (RFC 2919) or a List-Unsubscribe (RFC 2369).
// listUnsubscribe: it has a List-Unsubscribe field. oneClick: it offers one-click unsubscription
// (RFC 8058 §3.1): "List-Unsubscribe-Post: List-Unsubscribe=One-Click" and an HTTPS URI in List-Unsubscribe.
func bulkMarkers(h textproto.Header) (bulk, listUnsubscribe, oneClick bool) {
	prec := strings.ToLower(strings.TrimSpace(h.Get("Precedence")))
	listUnsubscribe = h.Has("List-Unsubscribe")
	bulk = prec == "bulk" || prec == "list" || h.Has("List-Id") || listUnsubscribe
	post := false
	for _, v := range h.Values("List-Unsubscribe-Post") {
		if strings.EqualFold(strings.Join(strings.Fields(v), ""), "List-Unsubscribe=One-Click") {
			post = true
		}
	}
	https := false
	for _, v := range h.Values("List-Unsubscribe") {
		if strings.Contains(strings.ToLower(v), "<https://") {
			https = true
		}
	}
	return bulk, listUnsubscribe, post && https
}
