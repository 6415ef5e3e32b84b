package server

import (
	"fmt"

	"github.com/redis/go-redis/v9"

	ociapi "keppel/internal/api/oci"
	"keppel/internal/config"
	"keppel/internal/ratelimit"
)

// rateLimits builds the OCI API's rate limits: shared through Redis if a
// Redis URL is configured, counted in this process otherwise, and none if
// no limit is set. closeFn releases the Redis client.
func rateLimits(cfg config.RateLimits) (limits ociapi.RateLimits, closeFn func(), err error) {
	closeFn = func() {}
	if !cfg.Any() {
		return limits, closeFn, nil
	}
	conv := func(l config.RateLimit) ratelimit.Limit { return ratelimit.Limit{Rate: l.Rate, Burst: l.Burst} }
	limits = ociapi.RateLimits{
		ManifestPull: conv(cfg.ManifestPull), ManifestPush: conv(cfg.ManifestPush),
		BlobPull: conv(cfg.BlobPull), BlobPush: conv(cfg.BlobPush),
		BlobPullBytes: conv(cfg.BlobPullBytes), BlobPushBytes: conv(cfg.BlobPushBytes),
	}
	if cfg.RedisURL == "" {
		limits.Limiter = ratelimit.NewMemory(nil)
		return limits, closeFn, nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		// The error may quote the URL, password included.
		return limits, closeFn, fmt.Errorf("rate_limits.redis_url (KEPPEL_REDIS_URL) cannot be parsed")
	}
	// A limiter that waits for Redis slows down every request: one
	// attempt, and the request goes through if it fails.
	opts.MaxRetries = -1
	client := redis.NewClient(opts)
	prefix := cfg.RedisPrefix
	if prefix == "" {
		prefix = "keppel:ratelimit:"
	}
	limits.Limiter = ratelimit.NewRedis(client, prefix)
	return limits, func() { _ = client.Close() }, nil
}
