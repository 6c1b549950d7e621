package customer

import "errors"

// ErrNotFound is returned when the customer, or the domain, relay host or source IP named under it, does not
// exist.
var ErrNotFound = errors.New("not found")

// FieldError is a validation error: the input named Field is not acceptable.
type FieldError struct {
	Field string
	Msg   string
}

// Error returns "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ConflictError is returned when the input collides with what is already registered, for this customer or
// for another one (a domain, an overlapping prefix).
type ConflictError struct {
	Field string
	Msg   string
}

// Error returns "field: message".
func (e *ConflictError) Error() string { return e.Field + ": " + e.Msg }
