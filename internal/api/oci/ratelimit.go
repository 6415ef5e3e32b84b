package oci

import (
	"math"
	"net/http"
	"strconv"
	"strings"

	"keppel/internal/errcode"
	"keppel/internal/ratelimit"
)

// RateLimits are the per-account limits of the /v2/ API. A zero Limit
// limits nothing.
type RateLimits struct {
	Limiter ratelimit.Limiter
	// Requests per second of each kind, per account.
	ManifestPull, ManifestPush, BlobPull, BlobPush ratelimit.Limit
	// Bytes per second of blob content, per account.
	BlobPullBytes, BlobPushBytes ratelimit.Limit
}

// allow takes n units of the action's limit for the account of the
// repository. If the account is over its limit, it answers 429
// TOOMANYREQUESTS with Retry-After and returns false. When the limiter
// fails (Redis is down), the request goes through: a registry that
// cannot count is better than one that cannot serve.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, repo, action string, l ratelimit.Limit, n int64) bool {
	if h.limits.Limiter == nil || !l.Enabled() {
		return true
	}
	account, _, _ := strings.Cut(repo, "/")
	ok, wait, err := h.limits.Limiter.Take(r.Context(), account+"/"+action, l, n)
	if err != nil {
		h.log.Warn("rate limiter failed; the request is let through", "action", action, "account", account, "error", err)
		return true
	}
	if ok {
		return true
	}
	seconds := int64(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.FormatInt(max(seconds, 1), 10))
	errcode.Write(w, errcode.New(errcode.TooManyRequests, "account %s is over its %s rate limit; retry in %d s",
		account, strings.ReplaceAll(action, "_", " "), max(seconds, 1)))
	return false
}

// allowBlobPush applies the blob push limits to an upload request: one
// request, and its Content-Length in bytes (when it declares one; a
// streamed chunk without it counts as a request only).
func (h *Handler) allowBlobPush(w http.ResponseWriter, r *http.Request, repo string) bool {
	return h.allow(w, r, repo, "blob_push", h.limits.BlobPush, 1) &&
		h.allow(w, r, repo, "blob_push_bytes", h.limits.BlobPushBytes, max(r.ContentLength, 0))
}
