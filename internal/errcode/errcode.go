// Package errcode is the one table of registry error codes and their HTTP
// statuses, and the one function that writes error bodies. Both the OCI API
// (/v2/) and the management API (/keppel/v1/) render their errors through it,
// in the OCI error envelope: {"errors":[{"code":…,"message":…,"detail":…}]}.
package errcode

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Code is one kind of error. Its wire code and HTTP status come from the table.
type Code int

// The error kinds. The OCI Distribution spec's codes come first.
const (
	BlobUnknown Code = iota + 1
	BlobUploadInvalid
	BlobUploadUnknown
	DigestInvalid
	ManifestBlobUnknown
	ManifestInvalid
	ManifestUnknown
	NameInvalid
	NameUnknown
	SizeInvalid
	Unauthorized
	Denied
	Unsupported
	TooManyRequests
	// Codes beyond the spec, as other registries use them.
	RangeInvalid
	PaginationNumberInvalid
	ManifestTooLarge
	TagInvalid
	BlobReferenced
	ManifestReferenced
	QuotaExceeded
	PolicyViolation
	MethodNotAllowed
	UpstreamFailed
	// Codes of the management API.
	BadRequest
	NotFound
	Conflict
	Unknown
	Unavailable
)

type descriptor struct {
	wire   string
	status int
	// message is the default message when an error carries none.
	message string
}

var table = map[Code]descriptor{
	BlobUnknown:             {"BLOB_UNKNOWN", http.StatusNotFound, "blob unknown to registry"},
	BlobUploadInvalid:       {"BLOB_UPLOAD_INVALID", http.StatusBadRequest, "blob upload invalid"},
	BlobUploadUnknown:       {"BLOB_UPLOAD_UNKNOWN", http.StatusNotFound, "blob upload unknown to registry"},
	DigestInvalid:           {"DIGEST_INVALID", http.StatusBadRequest, "provided digest did not match uploaded content"},
	ManifestBlobUnknown:     {"MANIFEST_BLOB_UNKNOWN", http.StatusBadRequest, "manifest references a manifest or blob unknown to registry"},
	ManifestInvalid:         {"MANIFEST_INVALID", http.StatusBadRequest, "manifest invalid"},
	ManifestUnknown:         {"MANIFEST_UNKNOWN", http.StatusNotFound, "manifest unknown to registry"},
	NameInvalid:             {"NAME_INVALID", http.StatusBadRequest, "invalid repository name"},
	NameUnknown:             {"NAME_UNKNOWN", http.StatusNotFound, "repository name not known to registry"},
	SizeInvalid:             {"SIZE_INVALID", http.StatusBadRequest, "provided length did not match content length"},
	Unauthorized:            {"UNAUTHORIZED", http.StatusUnauthorized, "authentication required"},
	Denied:                  {"DENIED", http.StatusForbidden, "requested access to the resource is denied"},
	Unsupported:             {"UNSUPPORTED", http.StatusMethodNotAllowed, "the operation is unsupported"},
	TooManyRequests:         {"TOOMANYREQUESTS", http.StatusTooManyRequests, "too many requests"},
	RangeInvalid:            {"RANGE_INVALID", http.StatusRequestedRangeNotSatisfiable, "requested range not satisfiable"},
	PaginationNumberInvalid: {"PAGINATION_NUMBER_INVALID", http.StatusBadRequest, "invalid number of results requested"},
	ManifestTooLarge:        {"SIZE_INVALID", http.StatusRequestEntityTooLarge, "manifest too large"},
	TagInvalid:              {"TAG_INVALID", http.StatusBadRequest, "manifest tag did not match URI"},
	BlobReferenced:          {"DENIED", http.StatusConflict, "blob is still referenced by a manifest"},
	ManifestReferenced:      {"DENIED", http.StatusConflict, "manifest is still referenced by an index"},
	QuotaExceeded:           {"DENIED", http.StatusConflict, "quota exceeded"},
	PolicyViolation:         {"DENIED", http.StatusConflict, "refused by a policy of the account"},
	MethodNotAllowed:        {"UNSUPPORTED", http.StatusMethodNotAllowed, "method not allowed"},
	UpstreamFailed:          {"UNAVAILABLE", http.StatusBadGateway, "the upstream registry failed"},
	BadRequest:              {"BAD_REQUEST", http.StatusBadRequest, "bad request"},
	NotFound:                {"NOT_FOUND", http.StatusNotFound, "not found"},
	Conflict:                {"CONFLICT", http.StatusConflict, "conflict"},
	Unknown:                 {"UNKNOWN", http.StatusInternalServerError, "unknown error"},
	Unavailable:             {"UNAVAILABLE", http.StatusServiceUnavailable, "service unavailable"},
}

// WireCode returns the code as it appears in error bodies.
func (c Code) WireCode() string { return c.descriptor().wire }

// Status returns the HTTP status for the code.
func (c Code) Status() int { return c.descriptor().status }

func (c Code) descriptor() descriptor {
	if d, ok := table[c]; ok {
		return d
	}
	return table[Unknown]
}

// Error is an error that knows its code. Message is safe to show to clients.
type Error struct {
	Code    Code
	Message string
	Detail  any
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.descriptor().message
	}
	return e.Message
}

// New returns an *Error with a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithDetail returns a copy of the error with the detail field set.
func (e *Error) WithDetail(detail any) *Error {
	c := *e
	c.Detail = detail
	return &c
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

type envelope struct {
	Errors []wireError `json:"errors"`
}

// Write renders err in the error envelope with the status of its code. An
// error that is not an *Error (nor wraps one) becomes UNKNOWN with a generic
// message, so that internal details never reach the client.
func Write(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: Unknown}
	}
	body, _ := json.Marshal(envelope{Errors: []wireError{{
		Code:    e.Code.WireCode(),
		Message: e.Error(),
		Detail:  e.Detail,
	}}})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	h.Del("Docker-Content-Digest")
	w.WriteHeader(e.Code.Status())
	_, _ = w.Write(append(body, '\n'))
}
