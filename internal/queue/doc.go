// Package queue keeps the state of every accepted message in the database, schedules deliveries (due work,
// per-destination grouping, backoff, expiry, delay notices), records each attempt before it is made, and
// turns permanent failures and expiries into DSNs. The message content lives in the spool; the queue owns
// the rows.
package queue
