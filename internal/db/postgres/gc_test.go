package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/db/sqlcore"
	"keppel/internal/models"
)

// claimRecorder records the claims of sweeps and notices two at once on
// the same row. Each claim is held for hold, as if the sweep had work.
type claimRecorder struct {
	hold       time.Duration
	mu         sync.Mutex
	active     map[string]int
	claims     map[string]int
	violations []string
	// held counts the claims held right now; maxHeld is its maximum.
	held, maxHeld int
}

func (r *claimRecorder) hook(table, key string) {
	k := table + "/" + key
	r.mu.Lock()
	if r.active[k] > 0 {
		r.violations = append(r.violations, k)
	}
	r.active[k]++
	r.claims[k]++
	r.held++
	r.maxHeld = max(r.maxHeld, r.held)
	r.mu.Unlock()
	time.Sleep(r.hold)
	r.mu.Lock()
	r.active[k]--
	r.held--
	r.mu.Unlock()
}

// TestTwoJanitors sweeps a backlog of 40 repositories with one janitor and
// then with two (each with a connection pool of its own, as two processes
// would have): the two never hold the same repository at the same time,
// sweep each repository once, and work at the same time (one does not wait
// for the other's claims).
func TestTwoJanitors(t *testing.T) {
	name := newDatabase(t, true)
	ctx := t.Context()
	rec := &claimRecorder{hold: 20 * time.Millisecond, active: map[string]int{}, claims: map[string]int{}}
	open := func() db.Store {
		t.Helper()
		s, err := Open(ctx, databaseURL(name), sqlcore.WithClaimHook(rec.hook))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	if err := a.CreateAccount(ctx, models.Account{Name: "backlog", AuthTenantID: "t", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	const repos = 40
	for i := range repos {
		if _, err := a.FindOrCreateRepository(ctx, "backlog", fmt.Sprintf("repo-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	drain := func(s db.Store) {
		for {
			_, claimed, err := s.SweepBlobMounts(ctx, now, time.Minute, now.Add(time.Hour))
			if err != nil {
				t.Error(err)
				return
			}
			if !claimed {
				return
			}
		}
	}

	start := time.Now()
	drain(a)
	one := time.Since(start)

	if _, err := a.(*sqlcore.Store).DB().ExecContext(ctx, `UPDATE repos SET next_blob_mount_sweep_at = NULL`); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	clear(rec.claims)
	rec.maxHeld = 0
	rec.mu.Unlock()
	start = time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { drain(a) })
	wg.Go(func() { drain(b) })
	wg.Wait()
	two := time.Since(start)

	if len(rec.violations) > 0 {
		t.Fatalf("two janitors held the same rows at once: %v", rec.violations)
	}
	if len(rec.claims) != repos {
		t.Fatalf("two janitors swept %d repositories, want %d", len(rec.claims), repos)
	}
	for k, n := range rec.claims {
		if n != 1 {
			t.Errorf("%s was swept %d times", k, n)
		}
	}
	// Each claim is held for 20 ms: two janitors that do not block each
	// other hold two at once, however loaded the machine is (a time
	// comparison would not be).
	t.Logf("one janitor: %s, two: %s", one, two)
	if rec.maxHeld < 2 {
		t.Errorf("the two janitors never held claims at the same time: one waited for the other")
	}
}
