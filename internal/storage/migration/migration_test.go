package migration_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"keppel/internal/models"
	"keppel/internal/storage"
	"keppel/internal/storage/memory"
	"keppel/internal/storage/migration"
	"keppel/internal/storage/storagetest"
)

var ref = models.StorageRef{AuthTenantID: "tenant-1", AccountName: "alpha"}

const digest1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// The driver is a storage driver like any other, also while an old backend
// is attached.
func TestSuite(t *testing.T) {
	storagetest.RunSuite(t, func(t *testing.T) storage.Driver {
		return migration.New(memory.New(), memory.New())
	})
}

func upload(t *testing.T, d storage.Driver, id string, chunks ...string) {
	t.Helper()
	var offset int64
	for i, c := range chunks {
		n, err := d.AppendToBlob(t.Context(), ref, id, uint32(i+1), offset, strings.NewReader(c))
		if err != nil {
			t.Fatalf("AppendToBlob(%s, %d): %v", id, i+1, err)
		}
		offset += n
	}
	if err := d.FinalizeBlob(t.Context(), ref, id, uint32(len(chunks))); err != nil {
		t.Fatalf("FinalizeBlob(%s): %v", id, err)
	}
}

func read(t *testing.T, d storage.Driver, id string) (string, error) {
	t.Helper()
	rc, err := d.ReadBlob(t.Context(), ref, id, 0, -1)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

func TestMoveWhileServing(t *testing.T) {
	oldStore, newStore := memory.New(), memory.New()
	upload(t, oldStore, "old-blob", "old ", "content")
	if err := oldStore.WriteManifest(t.Context(), ref, "repo", digest1, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	// An upload that began before the switch.
	if _, err := oldStore.AppendToBlob(t.Context(), ref, "in-flight", 1, 0, strings.NewReader("begun ")); err != nil {
		t.Fatal(err)
	}

	d := migration.New(newStore, oldStore)
	if got, err := read(t, d, "old-blob"); err != nil || got != "old content" {
		t.Fatalf("reading an old blob: %q, %v", got, err)
	}
	// The upload in flight continues and finishes on the old backend.
	if _, err := d.AppendToBlob(t.Context(), ref, "in-flight", 2, 6, strings.NewReader("before")); err != nil {
		t.Fatalf("continuing an old upload: %v", err)
	}
	if err := d.FinalizeBlob(t.Context(), ref, "in-flight", 2); err != nil {
		t.Fatalf("finishing an old upload: %v", err)
	}
	// New content goes to the new backend only.
	upload(t, d, "new-blob", "new")
	if got, _ := read(t, newStore, "new-blob"); got != "new" {
		t.Errorf("new blob on the new backend: %q", got)
	}
	if _, err := read(t, oldStore, "new-blob"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("new blob on the old backend: %v", err)
	}
	blobs, manifests, err := d.ListStorageContents(t.Context(), ref)
	if err != nil || len(blobs) != 3 || len(manifests) != 1 {
		t.Fatalf("ListStorageContents = %v, %v, %v", blobs, manifests, err)
	}

	// Move everything that is pending.
	pendingBlobs, pendingManifests, err := d.PendingMigration(t.Context(), ref)
	if err != nil || len(pendingBlobs) != 2 || len(pendingManifests) != 1 {
		t.Fatalf("PendingMigration = %v, %v, %v", pendingBlobs, pendingManifests, err)
	}
	for _, b := range pendingBlobs {
		if err := d.MigrateBlob(t.Context(), ref, b); err != nil {
			t.Fatalf("MigrateBlob(%s): %v", b.StorageID, err)
		}
	}
	for _, m := range pendingManifests {
		if err := d.MigrateManifest(t.Context(), ref, m); err != nil {
			t.Fatalf("MigrateManifest: %v", err)
		}
	}
	oldBlobs, oldManifests, _ := oldStore.ListStorageContents(t.Context(), ref)
	if len(oldBlobs) != 0 || len(oldManifests) != 0 {
		t.Errorf("the old backend still holds %v, %v", oldBlobs, oldManifests)
	}
	for id, want := range map[string]string{"old-blob": "old content", "in-flight": "begun before", "new-blob": "new"} {
		if got, err := read(t, newStore, id); err != nil || got != want {
			t.Errorf("%s on the new backend: %q, %v", id, got, err)
		}
	}
	if got, err := newStore.ReadManifest(t.Context(), ref, "repo", digest1); err != nil || string(got) != "{}" {
		t.Errorf("manifest on the new backend: %q, %v", got, err)
	}
}

// shortReads serves blobs with their last byte missing, as a broken read
// would.
type shortReads struct{ storage.Driver }

func (d shortReads) ReadBlob(ctx context.Context, ref models.StorageRef, id string, offset, length int64) (io.ReadCloser, error) {
	rc, err := d.Driver.ReadBlob(ctx, ref, id, offset, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b[:len(b)-1])), nil
}

// A copy that comes out short is not finalized, and the old copy stays.
func TestShortCopyKeepsTheOldBlob(t *testing.T) {
	oldStore, newStore := memory.New(), memory.New()
	upload(t, oldStore, "blob", "complete content")
	d := migration.New(newStore, shortReads{oldStore})
	err := d.MigrateBlob(t.Context(), ref, storage.StoredBlob{StorageID: "blob", SizeBytes: 16})
	if err == nil {
		t.Fatal("MigrateBlob of a short copy succeeded")
	}
	if got, err := read(t, oldStore, "blob"); err != nil || got != "complete content" {
		t.Errorf("old copy after a failed move: %q, %v", got, err)
	}
	if _, err := read(t, newStore, "blob"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("new copy after a failed move: %v", err)
	}
	blobs, _, _ := newStore.ListStorageContents(t.Context(), ref)
	if len(blobs) != 0 {
		t.Errorf("the new backend holds %v", blobs)
	}
}
