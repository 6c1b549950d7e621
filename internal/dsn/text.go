package dsn

import (
	"fmt"
	"strings"
	"time"
)

// textWidth is where the human-readable part wraps its lines.
const textWidth = 76

// statusTextOf returns the meaning of an enhanced status code by "subject.detail", from RFC 3463 §3 and the
// IANA registry of SMTP enhanced status codes (RFC 5248), or "" when it is not known here.
func statusTextOf(subjectDetail string) string {
	switch subjectDetail {
	case "0.0":
		return "other or undefined status"
	case "1.0":
		return "problem with an address"
	case "1.1":
		return "the destination mailbox does not exist"
	case "1.2":
		return "the destination domain does not exist or accepts no mail"
	case "1.3":
		return "the destination address is syntactically invalid"
	case "1.4":
		return "the destination address is ambiguous"
	case "1.6":
		return "the destination mailbox has moved and left no forwarding address"
	case "1.7":
		return "the sender address is syntactically invalid"
	case "1.8":
		return "the sender's domain is invalid"
	case "1.10":
		return "the destination domain declares that it accepts no mail (null MX)"
	case "2.0":
		return "problem with the destination mailbox"
	case "2.1":
		return "the destination mailbox is disabled"
	case "2.2":
		return "the destination mailbox is full"
	case "2.3":
		return "the message is larger than the recipient accepts"
	case "2.4":
		return "problem expanding a mailing list"
	case "3.0":
		return "problem with the destination mail system"
	case "3.1":
		return "the destination mail system is full"
	case "3.2":
		return "the destination mail system is not accepting messages"
	case "3.3":
		return "the destination mail system lacks a feature the message needs"
	case "3.4":
		return "the message is too big for the destination mail system"
	case "3.5":
		return "the destination mail system is misconfigured"
	case "4.0":
		return "network or routing problem"
	case "4.1":
		return "no answer from the destination mail server"
	case "4.2":
		return "the connection to the destination mail server failed"
	case "4.3":
		return "the domain name system (DNS) could not be queried"
	case "4.4":
		return "no route to the destination could be found"
	case "4.5":
		return "the mail system is congested"
	case "4.6":
		return "a mail loop was detected"
	case "4.7":
		return "the message stayed in the queue too long"
	case "5.0":
		return "protocol error"
	case "5.1":
		return "invalid command"
	case "5.2":
		return "syntax error"
	case "5.3":
		return "too many recipients"
	case "5.4":
		return "invalid command arguments"
	case "5.5":
		return "wrong protocol version"
	case "6.0":
		return "problem with the message content"
	case "6.1":
		return "the message content type is not supported"
	case "6.2":
		return "the message would need a conversion that is prohibited"
	case "6.3":
		return "the message would need a conversion that is not supported"
	case "6.5":
		return "converting the message failed"
	case "6.7":
		return "the destination does not accept non-ASCII addresses"
	case "6.9":
		return "the destination cannot receive messages with UTF-8 header fields"
	case "7.0":
		return "security or policy problem"
	case "7.1":
		return "delivery was refused by policy"
	case "7.2":
		return "expanding the mailing list is not allowed"
	case "7.4":
		return "a required security feature is not supported"
	case "7.5":
		return "cryptographic failure"
	case "7.7":
		return "message integrity failure"
	case "7.8":
		return "authentication credentials were invalid"
	case "7.10":
		return "encryption is required"
	case "7.13":
		return "the recipient's account is disabled"
	case "7.17":
		return "the mailbox has a new owner"
	case "7.18":
		return "the domain has a new owner"
	case "7.20":
		return "no passing DKIM signature was found"
	case "7.21":
		return "no acceptable DKIM signature was found"
	case "7.22":
		return "no valid DKIM signature of the author's domain was found"
	case "7.23":
		return "SPF validation failed"
	case "7.24":
		return "SPF validation returned an error"
	case "7.25":
		return "the sending server's reverse DNS did not validate"
	case "7.26":
		return "several authentication checks failed"
	case "7.27":
		return "the sender's domain declares that it sends no mail (null MX)"
	}
	return ""
}

// statusText returns what a status code means, falling back from "subject.detail" to "subject.0".
func statusText(status string) string {
	_, sd, _ := strings.Cut(status, ".")
	if t := statusTextOf(sd); t != "" {
		return t
	}
	subject, _, _ := strings.Cut(sd, ".")
	if t := statusTextOf(subject + ".0"); t != "" {
		return t
	}
	return statusTextOf("0.0")
}

// advice tells the sender what to do about a recipient's status.
func advice(rc Recipient) string {
	if rc.Action == ActionDelayed {
		return "Nothing for now. You do not need to send the message again: we keep trying and will " +
			"write to you again if delivery finally fails. If the message is urgent, reach the recipient " +
			"another way."
	}
	_, sd, _ := strings.Cut(rc.Status, ".")
	subject, _, _ := strings.Cut(sd, ".")
	var a string
	switch {
	case sd == "1.1" || sd == "1.6" || sd == "2.1" || sd == "7.13":
		a = "Check the recipient address for typing errors. If it is correct, the mailbox has been " +
			"closed or moved: ask the recipient for a current address."
	case sd == "1.2" || sd == "1.10" || sd == "4.4":
		a = "Check the part of the address after the @: that domain does not receive mail. Correct " +
			"the address and send the message again."
	case subject == "1":
		a = "Check the address, correct it and send the message again."
	case sd == "2.2":
		a = "The recipient's mailbox is full. Send the message again later, or reach the recipient " +
			"another way."
	case sd == "2.3" || sd == "3.4":
		a = "Make the message smaller, for example by sharing large attachments as links, and send it " +
			"again."
	case sd == "4.7":
		a = "The destination could not be reached for as long as we kept the message. Send it again " +
			"later; if the problem persists, contact the recipient another way."
	case sd == "6.7" || sd == "6.9":
		a = "The destination cannot receive internationalized (non-ASCII) addresses or header fields. " +
			"Use an ASCII address for the recipient if there is one."
	case subject == "7":
		a = "The recipient's mail system refused the message for policy or security reasons (for " +
			"example spam filtering, sender authentication such as SPF, DKIM or DMARC, or a block " +
			"list); its reply above gives the reason. If you think this is a mistake, contact the " +
			"recipient's mail administrator and quote that reply."
	case rc.Status[0] == '5':
		a = "This is a permanent error: sending the same message again unchanged will fail the same " +
			"way. If the reply above does not make the cause clear, contact the recipient's mail " +
			"administrator and quote it."
	default:
		a = "The problem may be temporary; you can send the message again later."
	}
	return a
}

// textBuilder writes wrapped plain text with CRLF line endings.
type textBuilder struct{ strings.Builder }

// para writes a paragraph wrapped at textWidth followed by a blank line.
func (t *textBuilder) para(s string) {
	t.wrap("", "", s)
	t.WriteString("\r\n")
}

// item writes "label: value" wrapped, with continuation lines indented.
func (t *textBuilder) item(label, value string) {
	t.wrap(label+": ", "    ", value)
}

// wrap writes s after first, breaking lines at spaces before textWidth; continuation lines start with indent.
// A word longer than the width stays whole.
func (t *textBuilder) wrap(first, indent, s string) {
	line := first
	empty := true
	for _, w := range strings.Fields(s) {
		if !empty && len(line)+1+len(w) > textWidth {
			t.WriteString(line)
			t.WriteString("\r\n")
			line, empty = indent, true
		}
		if !empty {
			line += " "
		}
		line += w
		empty = false
	}
	t.WriteString(line)
	t.WriteString("\r\n")
}

// formatDate formats a time as an RFC 5322 §3.3 date-time.
func formatDate(t time.Time) string {
	return t.Format("Mon, 02 Jan 2006 15:04:05 -0700")
}

// humanText returns the human-readable first part of the report, ending in CRLF (RFC 6522 §3: it explains the report to a
// person; RFC 3464 §2 leaves its wording to the MTA).
func humanText(r *Report, rcpts []Recipient, ret returned) string {
	var t textBuilder
	t.para(fmt.Sprintf("This is the mail delivery system at %s.", r.ReportingMTA))
	var failed, delayed int
	for _, rc := range rcpts {
		if rc.Action == ActionFailed {
			failed++
		} else {
			delayed++
		}
	}
	if failed > 0 {
		t.para(fmt.Sprintf("Your message could not be delivered to %s. We have stopped trying to deliver it to %s.",
			plural(failed, "recipient"), pick(failed, "that recipient", "those recipients")))
	}
	if delayed > 0 {
		t.para(fmt.Sprintf("Your message has not yet been delivered to %s. This is only a warning: we are "+
			"still trying, and you do not need to send the message again.", plural(delayed, "recipient")))
	}
	if len(rcpts) < 2 {
		t.para("The details follow.")
	} else {
		t.para("The details for each recipient follow.")
	}

	if r.QueueID != "" {
		t.item("Queue ID", r.QueueID)
	}
	t.item("Sender", r.Sender)
	if !r.ArrivalDate.IsZero() {
		t.item("Received by us", formatDate(r.ArrivalDate))
	}
	t.WriteString("\r\n")

	for _, rc := range rcpts {
		t.item("Recipient", rc.Address)
		if rc.ORCPT != "" && rc.ORCPT != rc.Address {
			t.item("Originally addressed to", rc.ORCPT)
		}
		_, sd, _ := strings.Cut(rc.Status, ".")
		switch {
		// An expiry: a temporary failure that lasted (4.x.x), or X.4.7 "delivery time expired", which the
		// queue reports as 5.4.7 (RFC 3463).
		case rc.Action == ActionFailed && (rc.Status[0] == '4' || sd == "4.7"):
			t.item("Result", "Not delivered. The problem was temporary, but it lasted until your message "+
				"expired from our queue, so we have stopped trying.")
		case rc.Action == ActionFailed:
			t.item("Result", "Not delivered. The error is permanent; we will not try again.")
		default:
			res := "Not delivered yet. We are still trying"
			if !rc.WillRetryUntil.IsZero() {
				res += " and will keep trying until " + formatDate(rc.WillRetryUntil)
			}
			t.item("Result", res+".")
		}
		t.item("Status", fmt.Sprintf("%s (%s)", rc.Status, statusText(rc.Status)))
		if rc.RemoteMTA != "" {
			t.item("Remote server", rc.RemoteMTA)
		}
		if rc.Diagnostic != "" {
			who := "Our server"
			if rc.RemoteMTA != "" {
				who = "The remote server"
			}
			t.item(who+" said", rc.Diagnostic)
		}
		if !rc.LastAttempt.IsZero() {
			t.item("Last attempt", formatDate(rc.LastAttempt))
		}
		t.item("What you can do", advice(rc))
		t.WriteString("\r\n")
	}

	switch {
	case ret.data == nil:
		t.para("Your original message is not attached: " + ret.omitted + ".")
	case ret.headersOnly && ret.fullDowngraded:
		t.para("Your original message could not be returned in full; only its header is attached" +
			truncNote(ret) + ".")
	case ret.headersOnly:
		t.para("The header of your original message is attached" + truncNote(ret) + ".")
	default:
		t.para("Your original message is attached" + truncNote(ret) + ".")
	}
	if r.QueueID != "" {
		t.para(fmt.Sprintf("If you contact your mail administrator about this message, please quote the queue ID %s.", r.QueueID))
	}
	return strings.TrimRight(t.String(), "\r\n") + "\r\n"
}

func truncNote(ret returned) string {
	if !ret.truncated {
		return ""
	}
	return fmt.Sprintf(", cut short to %d bytes because of its size", len(ret.data))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "one " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
