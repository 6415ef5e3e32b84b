package consistency_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"keppel/internal/consistency"
	"keppel/internal/db"
	"keppel/internal/db/sqlite"
	"keppel/internal/models"
	"keppel/internal/storage"
	"keppel/internal/storage/memory"
)

const grace = 10 * time.Minute

// fixture is a metadata store and a memory storage with one account
// ("library") holding one repository with a manifest of one blob, and an
// empty replica account ("mirror").
type fixture struct {
	store   db.Store
	drv     *memory.Driver
	ref     models.StorageRef
	repo    models.Repository
	blob    models.Blob
	digest  string // of the manifest
	now     time.Time
	content []byte // of the manifest
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	store, err := sqlite.Open(ctx, sqlite.MemoryPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{store: store, drv: memory.New(), now: time.Unix(1_700_000_000, 0)}
	for _, a := range []models.Account{
		{Name: "library", AuthTenantID: "tenant1"},
		{Name: "mirror", AuthTenantID: "tenant1", ReplicationJSON: `{"strategy":"on_first_use","upstream":"registry.test"}`},
	} {
		if err := store.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	f.ref = models.StorageRef{AuthTenantID: "tenant1", AccountName: "library"}
	if f.repo, err = store.FindOrCreateRepository(ctx, "library", "app"); err != nil {
		t.Fatal(err)
	}
	f.blob = f.putBlob(t, f.ref, f.repo, "layer content")
	f.content = []byte(fmt.Sprintf(`{"schemaVersion":2,"layers":[{"digest":%q}]}`, f.blob.Digest))
	f.digest = digestOf(f.content)
	m := models.ManifestWithContent{Content: f.content, Manifest: models.Manifest{RepositoryID: f.repo.ID,
		Digest: f.digest, MediaType: "application/vnd.oci.image.manifest.v1+json",
		SizeBytes: int64(len(f.content)), PushedAt: f.now}}
	if err := store.PutManifest(ctx, m, []int64{f.blob.ID}, nil, "latest"); err != nil {
		t.Fatal(err)
	}
	if err := f.drv.WriteManifest(ctx, f.ref, "app", f.digest, f.content); err != nil {
		t.Fatal(err)
	}
	if _, err := store.MarkManifestsInStorage(ctx, []db.ManifestKey{{RepositoryID: f.repo.ID, Digest: f.digest}}); err != nil {
		t.Fatal(err)
	}
	return f
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// putBlob stores content as a blob mounted into the repository.
func (f *fixture) putBlob(t *testing.T, ref models.StorageRef, repo models.Repository, content string) models.Blob {
	t.Helper()
	storageID := fmt.Sprintf("sid-%x", sha256.Sum256([]byte(content)))[:20]
	f.writeObject(t, ref, storageID, content)
	b, _, err := f.store.CreateBlobAndMount(t.Context(), models.Blob{AccountName: ref.AccountName,
		Digest: digestOf([]byte(content)), SizeBytes: int64(len(content)), StorageID: storageID,
		MediaType: "application/octet-stream", PushedAt: f.now}, repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) writeObject(t *testing.T, ref models.StorageRef, storageID, content string) {
	t.Helper()
	ctx := t.Context()
	if _, err := f.drv.AppendToBlob(ctx, ref, storageID, 1, 0, bytes.NewReader([]byte(content))); err != nil {
		t.Fatal(err)
	}
	if err := f.drv.FinalizeBlob(ctx, ref, storageID, 1); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) check(t *testing.T, repair bool) consistency.Report {
	t.Helper()
	rep, err := consistency.Check(t.Context(), f.store, f.drv, consistency.Options{
		Repair: repair, GracePeriod: grace, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatalf("Check(repair=%v): %v", repair, err)
	}
	return rep
}

// state is everything that a check could change.
func (f *fixture) state(t *testing.T) string {
	t.Helper()
	ctx := t.Context()
	var out string
	for _, account := range []string{"library", "mirror"} {
		ref := models.StorageRef{AuthTenantID: "tenant1", AccountName: account}
		blobs, manifests, err := f.drv.ListStorageContents(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		dbBlobs, err := f.store.ListBlobsOfAccount(ctx, account)
		if err != nil {
			t.Fatal(err)
		}
		marks, err := f.store.ListUnknownObjects(ctx, account)
		if err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("%s: storage %v %v; blobs %+v; marks %v\n", account, blobs, manifests, dbBlobs, marks)
	}
	return out
}

func kinds(rep consistency.Report) []string {
	var out []string
	for _, f := range rep.Findings {
		out = append(out, string(f.Kind))
	}
	slices.Sort(out)
	return out
}

func TestCleanRegistry(t *testing.T) {
	f := newFixture(t)
	for _, repair := range []bool{false, true} {
		rep := f.check(t, repair)
		if len(rep.Findings) != 0 || rep.Accounts != 2 || rep.Blobs != 1 || rep.ManifestCopies != 1 || rep.Objects != 2 {
			t.Errorf("check of a clean registry (repair=%v) = %+v", repair, rep)
		}
	}
}

func TestFindAndRepair(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	// A second blob, mounted but unreferenced; a third whose content has
	// another size.
	unreferenced := f.putBlob(t, f.ref, f.repo, "unreferenced layer")
	if err := f.drv.DeleteBlob(ctx, f.ref, f.blob.StorageID); err != nil {
		t.Fatal(err)
	}
	if err := f.drv.DeleteBlob(ctx, f.ref, unreferenced.StorageID); err != nil {
		t.Fatal(err)
	}
	f.writeObject(t, f.ref, "orphan-blob", "left behind")
	if err := f.drv.DeleteManifest(ctx, f.ref, "app", f.digest); err != nil {
		t.Fatal(err)
	}
	orphanDigest := digestOf([]byte("gone"))
	if err := f.drv.WriteManifest(ctx, f.ref, "app", orphanDigest, []byte("gone")); err != nil {
		t.Fatal(err)
	}

	before := f.state(t)
	rep := f.check(t, false)
	want := []string{"missing_blob", "missing_blob", "missing_manifest_copy", "orphaned_blob", "orphaned_manifest_copy"}
	if got := kinds(rep); !slices.Equal(got, want) {
		t.Fatalf("findings = %v (%+v), want %v", got, rep.Findings, want)
	}
	if rep.Unresolved() != len(want) {
		t.Errorf("unresolved = %d", rep.Unresolved())
	}
	for _, fd := range rep.Findings {
		if fd.Repair != "" || fd.Account != "library" {
			t.Errorf("finding without repair: %+v", fd)
		}
		if fd.Kind == consistency.KindOrphanedBlob && fd.StorageID != "orphan-blob" {
			t.Errorf("orphan = %+v", fd)
		}
	}
	if after := f.state(t); after != before {
		t.Fatalf("a check without --repair changed\n%s\nto\n%s", before, after)
	}

	// The repair: blobs recorded as broken, the copy written again, the
	// orphans marked (within the grace period) but kept.
	rep = f.check(t, true)
	if got := kinds(rep); !slices.Equal(got, want) || rep.Unresolved() != 2 {
		t.Fatalf("repair findings = %+v", rep.Findings)
	}
	for _, fd := range rep.Findings {
		orphan := fd.Kind == consistency.KindOrphanedBlob || fd.Kind == consistency.KindOrphanedManifestCopy
		if fd.Repaired == orphan || fd.Repair == "" {
			t.Errorf("after repair: %+v", fd)
		}
	}
	b, err := f.store.GetBlobInAccount(ctx, "library", f.blob.Digest)
	if err != nil || b.ValidationError == "" {
		t.Errorf("the missing blob is %+v, %v; want a validation error", b, err)
	}
	if content, err := f.drv.ReadManifest(ctx, f.ref, "app", f.digest); err != nil || !bytes.Equal(content, f.content) {
		t.Errorf("manifest copy after repair: %q, %v", content, err)
	}
	if _, err := f.drv.ReadBlob(ctx, f.ref, "orphan-blob", 0, -1); err != nil {
		t.Errorf("an orphan within its grace period was deleted: %v", err)
	}

	// One grace period later, the orphans go.
	f.now = f.now.Add(grace)
	rep = f.check(t, true)
	if got := kinds(rep); !slices.Equal(got, []string{"orphaned_blob", "orphaned_manifest_copy"}) || rep.Unresolved() != 0 {
		t.Fatalf("second repair findings = %+v", rep.Findings)
	}
	if _, err := f.drv.ReadBlob(ctx, f.ref, "orphan-blob", 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the orphan is still there: %v", err)
	}
	if _, err := f.drv.ReadManifest(ctx, f.ref, "app", orphanDigest); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the orphaned manifest copy is still there: %v", err)
	}

	rep = f.check(t, false)
	if len(rep.Findings) != 0 || rep.KnownBroken != 2 {
		t.Errorf("check after the repair = %+v", rep)
	}
}

func TestReplicaForgetsMissingContent(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	ref := models.StorageRef{AuthTenantID: "tenant1", AccountName: "mirror"}
	repo, err := f.store.FindOrCreateRepository(ctx, "mirror", "app")
	if err != nil {
		t.Fatal(err)
	}
	b := f.putBlob(t, ref, repo, "replicated layer")
	// Content of another size under the blob's storage ID.
	if err := f.drv.DeleteBlob(ctx, ref, b.StorageID); err != nil {
		t.Fatal(err)
	}
	f.writeObject(t, ref, b.StorageID, "short")

	rep, err := consistency.Check(ctx, f.store, f.drv, consistency.Options{Account: "mirror", Repair: true, GracePeriod: grace})
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(rep); !slices.Equal(got, []string{"blob_size_mismatch"}) || rep.Unresolved() != 0 || rep.Accounts != 1 {
		t.Fatalf("findings = %+v", rep)
	}
	got, err := f.store.GetBlobInAccount(ctx, "mirror", b.Digest)
	if err != nil || got.StorageID != "" || got.ValidationError != "" {
		t.Errorf("blob after repair = %+v, %v; want no content", got, err)
	}
	if _, err := f.drv.ReadBlob(ctx, ref, b.StorageID, 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the wrong content is still there: %v", err)
	}
	if rep := f.check(t, false); len(rep.Findings) != 0 {
		t.Errorf("check after the repair = %+v", rep)
	}
}

func TestOptions(t *testing.T) {
	f := newFixture(t)
	_, err := consistency.Check(context.Background(), f.store, f.drv, consistency.Options{})
	if !errors.Is(err, consistency.ErrInvalidOptions) {
		t.Errorf("no grace period: %v", err)
	}
	_, err = consistency.Check(context.Background(), f.store, f.drv, consistency.Options{Account: "nope", GracePeriod: grace})
	if !errors.Is(err, db.ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
}
