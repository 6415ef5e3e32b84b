package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// checkLimiter runs the same sequence against a limiter; advance moves its
// clock (or waits).
func checkLimiter(t *testing.T, lim Limiter, advance func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	l := Limit{Rate: 2, Burst: 3} // 3 at once, then one every 500 ms
	for i := range 3 {
		if ok, _, err := lim.Take(ctx, "a/manifest_pull", l, 1); err != nil || !ok {
			t.Fatalf("take %d within the burst: %v, %v", i, ok, err)
		}
	}
	ok, wait, err := lim.Take(ctx, "a/manifest_pull", l, 1)
	if err != nil || ok {
		t.Fatalf("take beyond the burst: %v, %v", ok, err)
	}
	if wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("retry after %s, want up to 500ms", wait)
	}
	// Other keys are not affected.
	if ok, _, err := lim.Take(ctx, "b/manifest_pull", l, 1); err != nil || !ok {
		t.Fatalf("another account was limited: %v, %v", ok, err)
	}
	advance(wait)
	if ok, _, err := lim.Take(ctx, "a/manifest_pull", l, 1); err != nil || !ok {
		t.Fatalf("take after waiting as told: %v, %v", ok, err)
	}
	// A request for more than the burst is taken as a full burst.
	advance(2 * time.Second)
	if ok, _, err := lim.Take(ctx, "a/blob_pull_bytes", Limit{Rate: 100, Burst: 100}, 1000); err != nil || !ok {
		t.Fatalf("a large take from a full bucket: %v, %v", ok, err)
	}
	if ok, wait, err := lim.Take(ctx, "a/blob_pull_bytes", Limit{Rate: 100, Burst: 100}, 1); err != nil || ok || wait <= 0 {
		t.Fatalf("the bucket is not empty after a large take: %v, %s, %v", ok, wait, err)
	}
	// A disabled limit limits nothing.
	if ok, _, err := lim.Take(ctx, "a/manifest_push", Limit{}, 1000); err != nil || !ok {
		t.Fatalf("a disabled limit refused: %v, %v", ok, err)
	}
}

func TestMemory(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	lim := NewMemory(func() time.Time { return now })
	checkLimiter(t, lim, func(d time.Duration) { now = now.Add(d) })
	// Full buckets are forgotten.
	now = now.Add(time.Hour)
	if _, _, err := lim.Take(context.Background(), "c/x", Limit{Rate: 1, Burst: 1}, 1); err != nil {
		t.Fatal(err)
	}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if len(lim.tats) != 1 {
		t.Fatalf("%d keys remembered after an hour, want only the new one", len(lim.tats))
	}
}

// TestRedis runs against the Redis server of KEPPEL_TEST_REDIS_URL
// (default 127.0.0.1:6379), under a key prefix of its own that it removes.
func TestRedis(t *testing.T) {
	url := os.Getenv("KEPPEL_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx := context.Background()
	if err := client.Ping(ctx).Err(); err != nil {
		if os.Getenv("KEPPEL_TEST_SKIP_REDIS") == "1" {
			t.Skipf("skipping Redis tests (KEPPEL_TEST_SKIP_REDIS=1): %v", err)
		}
		t.Fatalf("Redis at %s: %v (start it, or set KEPPEL_TEST_SKIP_REDIS=1)", url, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "keppel-test-" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		keys, _ := client.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			client.Del(ctx, keys...)
		}
	})
	checkLimiter(t, NewRedis(client, prefix), time.Sleep)
	keys, err := client.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no keys under the prefix: %v, %v", keys, err)
	}
	for _, k := range keys {
		if ttl := client.PTTL(ctx, k).Val(); ttl <= 0 || ttl > 3*time.Second {
			t.Errorf("key %s expires in %s, want within the time to refill", k, ttl)
		}
	}
}
