package retention

import (
	"time"

	"easymail/internal/bounce"
	"easymail/internal/msglog"
)

// DataSubject is the export of every record that names one e-mail address (GET /data-subjects/{address}).
// Messages hold the traces of the messages the address sent (envelope sender or header From) with all their
// recipients, and of the messages it received with only its own recipient entries and attempts.
type DataSubject struct {
	Address      string                `json:"address"`
	ExportedAt   time.Time             `json:"exported_at"`
	Customers    []Contact             `json:"customers"`
	Suppressions []bounce.Suppression  `json:"suppressions"`
	Messages     []msglog.MessageTrace `json:"messages"`
}

// Contact is a customer whose contact e-mail address is the data subject's.
type Contact struct {
	CustomerID   string `json:"customer_id"`
	Name         string `json:"name"`
	ContactEmail string `json:"contact_email"`
}

// Erasure is the answer of DELETE /data-subjects/{address}: what was erased, and what was kept.
type Erasure struct {
	Address string `json:"address"`
	// MessagesDeleted counts the messages deleted whole (every recipient, and the sender, was the subject, or
	// the subject was the only recipient); MessagesBlanked those whose sender, header From and subject were
	// blanked because the subject sent them.
	MessagesDeleted int64 `json:"messages_deleted"`
	MessagesBlanked int64 `json:"messages_blanked"`
	// RecipientsDeleted and AttemptsDeleted count the subject's recipient entries and delivery attempts removed
	// from messages kept for their other recipients.
	RecipientsDeleted int64 `json:"recipients_deleted"`
	AttemptsDeleted   int64 `json:"attempts_deleted"`
	// SuppressionsDeleted counts suppression entries removed; ContactsBlanked the customers whose contact
	// e-mail was blanked (give them a new contact).
	SuppressionsDeleted int64    `json:"suppressions_deleted"`
	ContactsBlanked     []string `json:"contacts_blanked"`
	// MessagesPending are the queue ids of messages still being delivered or in quarantine, which were left
	// untouched: erase again once they are finished, or delete them from the queue (or the quarantine) first.
	MessagesPending []string `json:"messages_pending"`
}
