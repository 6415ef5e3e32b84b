package janitor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"keppel/internal/registry"
	"keppel/internal/storage"
	"keppel/internal/storage/memory"
)

func TestAbandonedUploadCleanup(t *testing.T) {
	ctx := t.Context()
	driver := memory.New()
	env := newTestEnv(t, driver, "repo")
	svc, clock, log, repo := env.svc, env.clock, env.log, env.repo

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
