package oci

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"keppel/internal/errcode"
	"keppel/internal/registry"
)

// errorCodes maps the registry's domain errors to OCI error codes.
var errorCodes = []struct {
	err  error
	code errcode.Code
}{
	{registry.ErrNameInvalid, errcode.NameInvalid},
	{registry.ErrAccountUnknown, errcode.NameUnknown},
	{registry.ErrAccountDeleting, errcode.Denied},
	{registry.ErrReplicaAccount, errcode.Denied},
	{registry.ErrRepositoryUnknown, errcode.NameUnknown},
	{registry.ErrBlobUnknown, errcode.BlobUnknown},
	{registry.ErrBlobReferenced, errcode.BlobReferenced},
	{registry.ErrUploadUnknown, errcode.BlobUploadUnknown},
	{registry.ErrUploadInvalid, errcode.BlobUploadInvalid},
	{registry.ErrUploadOutOfOrder, errcode.RangeInvalid},
	{registry.ErrDigestInvalid, errcode.DigestInvalid},
	{registry.ErrManifestUnknown, errcode.ManifestUnknown},
	{registry.ErrManifestInvalid, errcode.ManifestInvalid},
	{registry.ErrManifestTooLarge, errcode.ManifestTooLarge},
	{registry.ErrManifestBlobUnknown, errcode.ManifestBlobUnknown},
	{registry.ErrManifestReferenced, errcode.ManifestReferenced},
	{registry.ErrTagInvalid, errcode.TagInvalid},
	{registry.ErrQuotaExceeded, errcode.QuotaExceeded},
	{registry.ErrPolicyViolation, errcode.PolicyViolation},
	{registry.ErrUpstreamRateLimited, errcode.TooManyRequests},
	{registry.ErrUpstreamFailed, errcode.UpstreamFailed},
}

// writeError renders err as an OCI error. Domain errors keep their message;
// anything else is logged and answered with a generic UNKNOWN error.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *errcode.Error
	if errors.As(err, &e) {
		errcode.Write(w, e)
		return
	}
	var limited *registry.UpstreamRateLimitError
	if errors.As(err, &limited) && limited.RetryAfter != "" {
		w.Header().Set("Retry-After", limited.RetryAfter)
	}
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			errcode.Write(w, &errcode.Error{Code: m.code, Message: err.Error()})
			return
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(r.Context().Err(), context.Canceled) {
		log.Debug("request cancelled", "error", err)
	} else {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	errcode.Write(w, err)
}
