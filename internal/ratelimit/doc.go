// Package ratelimit protects the relay from bursts and abuse without losing mail.
//
// It has four parts:
//   - Limiter, token buckets keyed by name (Local is the process-local implementation; a cluster-wide one
//     shares the same interface), for per-customer message and recipient rates and per-IP connection rates;
//   - Slots, counted concurrency caps (sessions in all and per client IP);
//   - Policies, the per-customer limits and hold state read from the database, kept as an immutable
//     snapshot for the SMTP hot path;
//   - Detector, compromise detection: a customer whose volume jumps far above its own baseline, or whose
//     share of refused messages is high, is held (its new mail is accepted and kept, not delivered) and an
//     operator event is raised.
//
// Customers are promised unlimited sending: every limit only shapes bursts, and every refusal it causes is
// temporary (4xx), so the customer's MTA retries and nothing is lost.
package ratelimit
