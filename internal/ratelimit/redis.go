package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcraScript runs gcra atomically in Redis, on the server's clock, so
// that the limit holds across API processes whatever their clocks say.
// KEYS[1] holds the theoretical arrival time in microseconds; ARGV: the
// interval per unit and the tolerance (a full bucket), both in
// microseconds, and the units to take. It returns {allowed (0/1), retry
// after in microseconds}.
var gcraScript = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tat = tonumber(redis.call("GET", KEYS[1]) or "0")
if tat < now then tat = now end
local new_tat = tat + n * interval
local allow_at = new_tat - tolerance
if allow_at > now then
	return {0, allow_at - now}
end
redis.call("SET", KEYS[1], new_tat, "PX", math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
`)

// Redis is the limiter shared by all API processes through Redis.
type Redis struct {
	client redis.Scripter
	prefix string
}

// NewRedis returns a limiter that keeps its buckets in Redis under keys
// that start with prefix.
func NewRedis(client redis.Scripter, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// Take implements Limiter.
func (r *Redis) Take(ctx context.Context, key string, l Limit, n int64) (bool, time.Duration, error) {
	if !l.Enabled() || n <= 0 {
		return true, 0, nil
	}
	n = min(n, l.Burst)
	interval := max(int64(float64(time.Second/time.Microsecond)/l.Rate), 1)
	res, err := gcraScript.Run(ctx, r.client, []string{r.prefix + key}, interval, interval*l.Burst, n).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("rate limit %s: unexpected answer %v", key, res)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}
