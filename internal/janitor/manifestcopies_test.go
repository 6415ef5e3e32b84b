package janitor

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"keppel/internal/models"
	"keppel/internal/registry"
	"keppel/internal/storage"
	"keppel/internal/storage/memory"
)

// hookedDriver runs beforeWrite before each manifest write.
type hookedDriver struct {
	*memory.Driver
	beforeWrite func()
}

func (d *hookedDriver) WriteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string, content []byte) error {
	if d.beforeWrite != nil {
		d.beforeWrite()
	}
	return d.Driver.WriteManifest(ctx, ref, repoName, digest, content)
}

const emptyIndex = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`

type copiesFixture struct {
	svc    *registry.Service
	driver *hookedDriver
	repo   registry.Repo
	clock  *atomic.Int64
	job    Job
}

func newCopiesFixture(t *testing.T) *copiesFixture {
	t.Helper()
	driver := &hookedDriver{Driver: memory.New()}
	env := newTestEnv(t, driver, "repo")
	return &copiesFixture{svc: env.svc, driver: driver, repo: env.repo, clock: env.clock,
		job: jobNamed(t, New(env.svc, Config{AbandonedUploadAge: time.Hour}, env.log), "manifest-copies")}
}

func (f *copiesFixture) push(t *testing.T, tag string) string {
	t.Helper()
	pushed, err := f.svc.PutManifest(t.Context(), f.repo, tag, "application/vnd.oci.image.index.v1+json", []byte(emptyIndex), nil, nil)
	if err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	return pushed.Digest.String()
}

func (f *copiesFixture) stored(t *testing.T, digest string) bool {
	t.Helper()
	content, err := f.driver.ReadManifest(t.Context(), f.repo.StorageRef(), f.repo.Name, digest)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false
	case err != nil:
		t.Fatalf("ReadManifest: %v", err)
	case string(content) != emptyIndex:
		t.Fatalf("the copy of %s holds %q", digest, content)
	}
	return true
}

// TestManifestCopiesInBackground: a running writer stores the copy of a
// pushed manifest soon after the push, and nothing is left for the janitor.
func TestManifestCopiesInBackground(t *testing.T) {
	f := newCopiesFixture(t)
	stop := f.svc.StartManifestCopies()
	defer stop()
	d := f.push(t, "v1")
	deadline := time.Now().Add(5 * time.Second)
	for !f.stored(t, d) {
		if time.Now().After(deadline) {
			t.Fatal("the background writer did not store the copy within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.clock.Add(3600)
	if n, err := f.svc.StoreMissingManifestCopies(t.Context(), time.Minute, 10); err != nil || n != 0 {
		t.Fatalf("left for the janitor: %d, %v", n, err)
	}
}

// TestJanitorWritesMissingCopies: without the writer (a crash right after
// the commit), the janitor job writes the copy once the manifest is a
// minute old.
func TestJanitorWritesMissingCopies(t *testing.T) {
	f := newCopiesFixture(t)
	ctx := t.Context()
	d := f.push(t, "v1")
	if f.stored(t, d) {
		t.Fatal("the copy exists without a writer")
	}
	if did, err := f.job.Run(ctx); err != nil || did || f.stored(t, d) {
		t.Fatalf("a fresh manifest was taken from the writer: did=%v err=%v", did, err)
	}
	f.clock.Add(61)
	if _, err := f.job.Run(ctx); err != nil {
		t.Fatalf("job: %v", err)
	}
	if !f.stored(t, d) {
		t.Fatal("the janitor did not write the copy")
	}
	if n, err := f.svc.StoreMissingManifestCopies(ctx, 0, 10); err != nil || n != 0 {
		t.Fatalf("after the job: %d still without a copy, %v", n, err)
	}
}

// TestCopyOfDeletedManifest deletes the manifest while its copy is being
// written: the copy must not stay behind.
func TestCopyOfDeletedManifest(t *testing.T) {
	f := newCopiesFixture(t)
	ctx := t.Context()
	d := f.push(t, "v1")
	f.driver.beforeWrite = func() {
		f.driver.beforeWrite = nil
		if err := f.svc.DeleteManifest(ctx, f.repo, d); err != nil {
			t.Errorf("DeleteManifest: %v", err)
		}
	}
	f.clock.Add(61)
	if _, err := f.job.Run(ctx); err != nil {
		t.Fatalf("job: %v", err)
	}
	if f.driver.beforeWrite != nil {
		t.Fatal("the job wrote no copy")
	}
	if f.stored(t, d) {
		t.Fatal("the copy of the deleted manifest stayed in the storage")
	}
}
