package customer

import "errors"

// ErrNotFound is returned when the customer, or the domain, relay host or source IP named under it, does not
// exist.
var ErrNotFound = errors.New("not found")
