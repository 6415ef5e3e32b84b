package janitor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"keppel/internal/db/sqlite"
	"keppel/internal/registry"
	"keppel/internal/storage"
	"keppel/internal/storage/memory"
)

func TestAbandonedUploadCleanup(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keppel.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	driver := memory.New()
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	now := func() time.Time { return time.Unix(clock.Load(), 0) }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := registry.New(store, driver, registry.WithClock(now), registry.WithLogger(log))
	if _, _, err := svc.CreateAccount(ctx, "test", "tenant1"); err != nil {
		t.Fatal(err)
	}
	repo, err := svc.FindOrCreateRepository(ctx, "test/repo")
	if err != nil {
		t.Fatal(err)
	}

	old, err := svc.StartUpload(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AppendToUpload(ctx, repo, old.UUID, nil, strings.NewReader("abandoned data")); err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(23 * time.Hour / time.Second))
	fresh, err := svc.StartUpload(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(2 * time.Hour / time.Second)) // old: 25h untouched, fresh: 2h

	j := New(svc, Config{AbandonedUploadAge: 24 * time.Hour}, log)
	job := jobNamed(t, j, "abandoned-upload-cleanup")
	didWork, err := job.Run(ctx)
	if err != nil || didWork {
		t.Fatalf("run: didWork=%v err=%v (a partial batch must not ask for another run)", didWork, err)
	}
	if _, err := svc.GetUpload(ctx, repo, old.UUID); !errors.Is(err, registry.ErrUploadUnknown) {
		t.Fatalf("abandoned upload still there: %v", err)
	}
	if _, err := driver.ReadBlob(ctx, repo.StorageRef(), old.StorageID, 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("abandoned upload content still there: %v", err)
	}
	if _, err := svc.GetUpload(ctx, repo, fresh.UUID); err != nil {
		t.Fatalf("fresh upload removed: %v", err)
	}
	// The fresh upload can still be finished.
	if _, err := svc.AppendToUpload(ctx, repo, fresh.UUID, nil, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
}

func TestLoopStopsWithContext(t *testing.T) {
	var runs atomic.Int32
	j := &Janitor{log: slog.New(slog.NewTextHandler(io.Discard, nil)), jobs: []Job{{
		Name:     "count",
		Interval: time.Millisecond,
		Run: func(context.Context) (bool, error) {
			if runs.Add(1)%2 == 0 {
				return false, errors.New("every other run fails")
			}
			return true, nil
		},
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { j.Run(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("janitor did not stop")
	}
	if runs.Load() < 5 {
		t.Fatalf("only %d runs in 200ms", runs.Load())
	}
}
