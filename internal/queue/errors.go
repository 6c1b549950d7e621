package queue

import "errors"

// ErrNotFound is returned by queue operations for an id that names no message.
var ErrNotFound = errors.New("no such message")

// ErrNotQueued is returned by queue operations on a message that has no recipient left to deliver
// (delivered, bounced, rejected).
var ErrNotQueued = errors.New("message is not in the queue")
