// Package ratelimit limits how fast accounts may use the registry: a
// generic cell rate algorithm (GCRA, an exact token bucket) over keys such
// as "<account>/manifest_pull". The in-process limiter serves a single
// process (the embedded mode); the Redis limiter shares the limits among
// any number of API processes.
package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Limit is a rate with a burst: Burst units may be used at once, and they
// come back at Rate units per second.
type Limit struct {
	Rate  float64
	Burst int64
}

// Enabled reports whether the limit limits anything.
func (l Limit) Enabled() bool { return l.Rate > 0 && l.Burst > 0 }

// Limiter takes units from the bucket of a key.
type Limiter interface {
	// Take takes n units under the key. If the bucket does not hold them,
	// nothing is taken and retryAfter says when it will. n larger than
	// the burst is taken as the burst (a single large request is not
	// refused forever).
	Take(ctx context.Context, key string, l Limit, n int64) (ok bool, retryAfter time.Duration, err error)
}

// gcra decides with the theoretical arrival time tat (the time at which the
// bucket would be full again, in nanoseconds; 0 for a fresh key): it returns
// the new tat, and how long to wait if the units are not there.
func gcra(tat, now int64, l Limit, n int64) (newTAT int64, retryAfter time.Duration, ok bool) {
	n = min(n, l.Burst)
	interval := int64(float64(time.Second) / l.Rate) // per unit
	tolerance := interval * l.Burst                  // a full bucket
	tat = max(tat, now)
	newTAT = tat + n*interval
	allowAt := newTAT - tolerance
	if allowAt > now {
		return tat, time.Duration(allowAt - now), false
	}
	return newTAT, 0, true
}

// Memory is the in-process limiter. Keys whose bucket is full again are
// forgotten, so its memory stays bounded by the active keys.
type Memory struct {
	mu    sync.Mutex
	now   func() time.Time
	tats  map[string]int64
	sweep int64 // when the map is swept next
}

// NewMemory returns an in-process limiter; now is the clock (time.Now if
// nil).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, tats: map[string]int64{}}
}

// Take implements Limiter.
func (m *Memory) Take(_ context.Context, key string, l Limit, n int64) (bool, time.Duration, error) {
	if !l.Enabled() || n <= 0 {
		return true, 0, nil
	}
	now := m.now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now >= m.sweep {
		for k, tat := range m.tats {
			if tat <= now {
				delete(m.tats, k)
			}
		}
		m.sweep = now + int64(time.Minute)
	}
	tat, wait, ok := gcra(m.tats[key], now, l, n)
	if ok {
		m.tats[key] = tat
	}
	return ok, wait, nil
}
