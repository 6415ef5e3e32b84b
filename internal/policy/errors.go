package policy

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrInvalidPolicy is matched (with errors.Is) by every *ValidationError, so
// that the HTTP edge can map all of them to one status code.
var ErrInvalidPolicy = errors.New("invalid policy")

// ValidationError describes why a policy document is invalid. Its message
// names the list, the position of the policy and the field, in the form of a
// JSON path: `rbac_policies[1].match_cidr: "10.0.0.0/33" is not a valid CIDR`.
type ValidationError struct {
	// List is the JSON name of the policy list: "rbac_policies",
	// "tag_policies" or "gc_policies".
	List string
	// Index is the position of the offending policy in the list, counted
	// from 0, or -1 if the error concerns the document as a whole (such as
	// a JSON syntax error).
	Index int
	// Field is the JSON name of the offending field, or "" if the error
	// concerns the policy as a whole.
	Field string
	// Message says what is wrong, without the location.
	Message string
}

// Error implements the error interface.
func (e *ValidationError) Error() string {
	loc := e.List
	if e.Index >= 0 {
		loc += "[" + strconv.Itoa(e.Index) + "]"
	}
	if e.Field != "" {
		loc += "." + e.Field
	}
	return loc + ": " + e.Message
}

// Unwrap makes errors.Is(err, ErrInvalidPolicy) true.
func (e *ValidationError) Unwrap() error {
	return ErrInvalidPolicy
}

// invalid builds a *ValidationError.
func invalid(list string, index int, field, format string, args ...any) *ValidationError {
	return &ValidationError{List: list, Index: index, Field: field, Message: fmt.Sprintf(format, args...)}
}
