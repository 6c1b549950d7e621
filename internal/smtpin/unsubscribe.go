package smtpin

import (
	"github.com/emersion/go-message/textproto"

	"easymail/internal/access"
	"easymail/internal/queue"
	"easymail/internal/unsubscribe"
)

// Unsubscriber gives the List-Unsubscribe and List-Unsubscribe-Post values of a message for one recipient.
// *unsubscribe.Service implements it.
type Unsubscriber interface {
	Fields(c unsubscribe.Claims) (listUnsubscribe, listUnsubscribePost string)
}

// addUnsubscribe adds one-click unsubscription (RFC 8058) to the header of a message of a customer that
// delegates it, when the message has a single recipient (the link names that recipient; a message for
// several would need a copy per recipient) and no List-Unsubscribe of its own (the customer's own handling
// is left alone).
func (s *session) addUnsubscribe(c *access.Customer, env queue.Envelope, hdr *textproto.Header) {
	if s.s.o.Unsubscribe == nil || !c.UnsubscribeDelegated || len(env.Recipients) != 1 || hdr.Has("List-Unsubscribe") {
		return
	}
	lu, lup := s.s.o.Unsubscribe.Fields(unsubscribe.Claims{CustomerID: c.ID, QueueID: env.ID, Recipient: env.Recipients[0].Address})
	hdr.Set("List-Unsubscribe-Post", lup)
	hdr.Set("List-Unsubscribe", lu)
}
