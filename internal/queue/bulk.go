package queue

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// Ops are the queue's operations on one message, as *Queue has them (and the API's and the portal's views
// of it): each returns an error wrapping ErrNotFound for an unknown id and ErrNotQueued for a message with
// nothing left to deliver.
type Ops interface {
	// Retry makes the message's pending recipients due now.
	Retry(ctx context.Context, id string) error
	// Hold stops deliveries of the message until Release.
	Hold(ctx context.Context, id string) error
	// Release lets a held message be delivered again.
	Release(ctx context.Context, id string) error
	// Delete removes the message from the queue without delivering it.
	Delete(ctx context.Context, id string) error
}

// BulkActions are the actions of a bulk operation, in the order they are listed.
var BulkActions = []string{"retry", "hold", "release", "delete"}

// BulkOp returns the operation of a bulk action, or nil for an unknown action.
func BulkOp(q Ops, action string) func(context.Context, string) error {
	return map[string]func(context.Context, string) error{
		"retry": q.Retry, "hold": q.Hold, "release": q.Release, "delete": q.Delete}[action]
}

// BulkOutcome is what a bulk action did: how many messages it changed, and why it left the others alone.
type BulkOutcome struct {
	Changed int
	// Skipped counts the messages left alone by reason, sorted by reason.
	Skipped []BulkSkipped
}

// SkippedCount is the number of messages left alone.
func (o BulkOutcome) SkippedCount() int {
	n := 0
	for _, s := range o.Skipped {
		n += s.Count
	}
	return n
}

// Bulk runs action on each message of ids in turn, under the queue's own rules (a held message is not
// retried, only a held one is released): a message the rules leave alone is counted with its reason (see
// SkipReason), and any other error stops the run, saying how many were changed before it. The action must
// be one of BulkActions. The caller decides which messages the ids may be, and passes a context that is not
// cancelled when its client hangs up, so that a started run is finished and recorded.
func Bulk(ctx context.Context, q Ops, action string, ids []string) (BulkOutcome, error) {
	var out BulkOutcome
	op := BulkOp(q, action)
	if op == nil {
		return out, fmt.Errorf("queue: unknown bulk action %q", action)
	}
	skipped := map[string]int{}
	done := func(err error) (BulkOutcome, error) {
		out.Skipped = []BulkSkipped{}
		for why, n := range skipped {
			out.Skipped = append(out.Skipped, BulkSkipped{Reason: why, Count: n})
		}
		sort.Slice(out.Skipped, func(i, j int) bool { return out.Skipped[i].Reason < out.Skipped[j].Reason })
		return out, err
	}
	for _, id := range ids {
		err := op(ctx, id)
		if err == nil {
			out.Changed++
			continue
		}
		why := SkipReason(err)
		if why == "" {
			return done(fmt.Errorf("%s %s (after %d changed): %w", action, id, out.Changed, err))
		}
		skipped[why]++
	}
	return done(nil)
}

// SkipReason says why a queue operation left a message alone, or "" for a failure.
func SkipReason(err error) string {
	var se *StateError
	switch {
	case errors.As(err, &se) && errors.Is(err, ErrHeld) && se.Op == "hold":
		return "already held"
	case errors.Is(err, ErrHeld):
		return "held: a held message is not delivered (release it)"
	case errors.Is(err, ErrNotHeld):
		return "not held"
	case errors.As(err, &se) && se.Status == StatusQuarantined:
		return "quarantined (see easymail quarantine)"
	case errors.Is(err, ErrNotQueued):
		return "nothing left to deliver (delivered or closed meanwhile)"
	case errors.Is(err, ErrNotFound):
		return "no longer in the queue"
	}
	return ""
}
