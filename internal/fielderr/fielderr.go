// Package fielderr is the one error type for an input that cannot be accepted: it names the field at fault,
// says why, and says whether the input is invalid in itself (the API answers 422) or collides with what
// exists already (409). Every domain package returns it for bad input, so the API and the portal map one type.
package fielderr

import (
	"errors"
	"fmt"
)

// Error is an input that cannot be accepted. Field names it as the caller sent it ("domains[2]",
// "scan.rules[0].pattern"); Msg says what is wrong with it; Conflict is set when the input is well formed but
// collides with what is registered (a domain another customer holds, an address already in a pool).
type Error struct {
	Field    string
	Msg      string
	Conflict bool
}

// Error returns "field: message".
func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// New is an invalid input.
func New(field, msg string) *Error { return &Error{Field: field, Msg: msg} }

// Newf is an invalid input, its message formatted.
func Newf(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// NewConflict is an input that collides with what exists.
func NewConflict(field, msg string) *Error { return &Error{Field: field, Msg: msg, Conflict: true} }

// Conflictf is an input that collides with what exists, its message formatted.
func Conflictf(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...), Conflict: true}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var fe *Error
	ok := errors.As(err, &fe)
	return fe, ok
}
