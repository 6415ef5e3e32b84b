package config

import (
	"fmt"
	"strconv"
	"strings"
)

// RateLimits are per-account limits of the OCI API; none by default.
type RateLimits struct {
	// RedisURL shares the limits among all API processes through Redis
	// (redis://host:port/db); without it each process counts for itself.
	RedisURL string `yaml:"redis_url"`
	// RedisPrefix starts the Redis keys ("keppel:ratelimit:" if empty).
	RedisPrefix string `yaml:"redis_prefix"`
	// Requests per second of each kind, per account.
	ManifestPull RateLimit `yaml:"manifest_pull"`
	ManifestPush RateLimit `yaml:"manifest_push"`
	BlobPull     RateLimit `yaml:"blob_pull"`
	BlobPush     RateLimit `yaml:"blob_push"`
	// Bytes per second of blob content, per account.
	BlobPullBytes RateLimit `yaml:"blob_pull_bytes"`
	BlobPushBytes RateLimit `yaml:"blob_push_bytes"`
}

// RateLimit allows Burst units at once and gives them back at Rate units
// per second. Zero values limit nothing.
type RateLimit struct {
	Rate  float64 `yaml:"rate"`
	Burst int64   `yaml:"burst"`
}

// limits lists the limits with their names, for validation and the
// environment.
func (r *RateLimits) limits() []struct {
	name  string
	limit *RateLimit
} {
	return []struct {
		name  string
		limit *RateLimit
	}{
		{"manifest_pull", &r.ManifestPull}, {"manifest_push", &r.ManifestPush},
		{"blob_pull", &r.BlobPull}, {"blob_push", &r.BlobPush},
		{"blob_pull_bytes", &r.BlobPullBytes}, {"blob_push_bytes", &r.BlobPushBytes},
	}
}

// Any reports whether any limit is set.
func (r RateLimits) Any() bool {
	for _, l := range r.limits() {
		if l.limit.Rate > 0 {
			return true
		}
	}
	return false
}

func (r RateLimits) validate() error {
	for _, l := range r.limits() {
		rate, burst := l.limit.Rate, l.limit.Burst
		if rate < 0 || burst < 0 || (rate > 0) != (burst > 0) {
			return fmt.Errorf("rate_limits.%s (KEPPEL_RATELIMIT_%s): rate and burst must both be positive, or both 0 (no limit)",
				l.name, strings.ToUpper(l.name))
		}
	}
	if r.RedisURL != "" && !strings.HasPrefix(r.RedisURL, "redis://") && !strings.HasPrefix(r.RedisURL, "rediss://") {
		return fmt.Errorf("rate_limits.redis_url (KEPPEL_REDIS_URL) must be a redis:// or rediss:// URL")
	}
	return nil
}

// rateLimitBindings are the environment variables of the limits:
// KEPPEL_RATELIMIT_<NAME>="<rate>:<burst>".
func rateLimitBindings() []envBinding {
	out := []envBinding{
		{"KEPPEL_REDIS_URL", str(func(c *Config) *string { return &c.RateLimits.RedisURL })},
		{"KEPPEL_RATELIMIT_REDIS_PREFIX", str(func(c *Config) *string { return &c.RateLimits.RedisPrefix })},
	}
	for i, l := range (&RateLimits{}).limits() {
		out = append(out, envBinding{"KEPPEL_RATELIMIT_" + strings.ToUpper(l.name), func(c *Config, v string) error {
			rate, burst, ok := strings.Cut(v, ":")
			r, err1 := strconv.ParseFloat(rate, 64)
			b, err2 := strconv.ParseInt(burst, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return fmt.Errorf("%q is not <rate per second>:<burst>", v)
			}
			*c.RateLimits.limits()[i].limit = RateLimit{Rate: r, Burst: b}
			return nil
		}})
	}
	return out
}
