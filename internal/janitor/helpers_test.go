package janitor

import (
	"crypto/sha256"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/db/sqlite"
	"keppel/internal/registry"
	"keppel/internal/storage"
	"keppel/internal/storage/fs"
)

// testEnv is a registry service on a fresh SQLite database with a
// simulated clock, the account "test" (tenant "tenant1") and one of its
// repositories.
type testEnv struct {
	store db.Store
	svc   *registry.Service
	clock *atomic.Int64 // Unix seconds
	log   *slog.Logger
	repo  registry.Repo
}

func newTestEnv(t *testing.T, driver storage.Driver, repoName string) testEnv {
	t.Helper()
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keppel.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := testEnv{store: store, clock: &atomic.Int64{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e.clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	now := func() time.Time { return time.Unix(e.clock.Load(), 0) }
	e.svc = registry.New(store, driver, registry.WithClock(now), registry.WithLogger(e.log))
	if _, _, err := e.svc.CreateAccount(ctx, "test", "tenant1"); err != nil {
		t.Fatal(err)
	}
	if e.repo, err = e.svc.FindOrCreateRepository(ctx, "test/"+repoName); err != nil {
		t.Fatal(err)
	}
	return e
}

// now returns the simulated time.
func (e testEnv) now() time.Time { return time.Unix(e.clock.Load(), 0) }

// sha256Sum returns the SHA-256 of s.
func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// newFSTestEnv is newTestEnv on filesystem storage; it returns the storage
// root too, so that tests can damage files.
func newFSTestEnv(t *testing.T, repoName string) (testEnv, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "storage")
	driver, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return newTestEnv(t, driver, repoName), root
}

// runUntilIdle runs the job until it reports no more work (at most 100
// times).
func runUntilIdle(t *testing.T, job Job) {
	t.Helper()
	for range 100 {
		more, err := job.Run(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", job.Name, err)
		}
		if !more {
			return
		}
	}
	t.Fatalf("%s still had work after 100 runs", job.Name)
}
