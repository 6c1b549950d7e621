// Package ratelimit holds the mechanisms that protect the relay from bursts without losing mail:
//   - Limiter, token buckets keyed by name (Local is the process-local implementation; a cluster-wide one
//     shares the same interface), for per-customer message and recipient rates and per-IP connection rates;
//   - Slots, counted concurrency caps (sessions in all and per client IP);
//   - Rule, CustomerLimits and CustomerPolicy, the vocabulary of limits that the SMTP hot path applies.
//
// Which limits a customer has, and whether its mail is held for suspected compromise, is decided by package
// abuse, which reads them from the database and keeps them as an immutable snapshot of CustomerPolicy.
//
// Customers are promised unlimited sending: every limit only shapes bursts, and every refusal it causes is
// temporary (4xx), so the customer's MTA retries and nothing is lost.
package ratelimit
