package dbtest

import (
	"testing"
	"time"

	"keppel/internal/db"
)

func testInventory(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	f.account(t, "other")
	repo := f.repo(t, "library", "alpine")
	b := f.blob(t, repo, "layer")
	f.blob(t, f.repo(t, "other", "alpine"), "foreign layer")
	m := f.manifest(t, repo, `{"m":1}`, nil, nil, "latest")

	blobs, err := s.ListBlobsOfAccount(ctx, "library")
	if err != nil || len(blobs) != 1 || blobs[0].ID != b.ID || blobs[0].StorageID != b.StorageID {
		t.Fatalf("ListBlobsOfAccount = %+v, %v", blobs, err)
	}
	manifests, err := s.ListManifestsOfAccount(ctx, "library")
	if err != nil || len(manifests) != 1 || manifests[0].Digest != m.Digest || manifests[0].RepoName != "alpine" ||
		manifests[0].RepositoryID != repo.ID || manifests[0].InStorage {
		t.Fatalf("ListManifestsOfAccount = %+v, %v", manifests, err)
	}
	if _, err := s.MarkManifestsInStorage(ctx, []db.ManifestKey{{RepositoryID: repo.ID, Digest: m.Digest}}); err != nil {
		t.Fatal(err)
	}
	if manifests, err := s.ListManifestsOfAccount(ctx, "library"); err != nil || !manifests[0].InStorage {
		t.Errorf("ListManifestsOfAccount after MarkManifestsInStorage = %+v, %v", manifests, err)
	}

	now := f.tick()
	found := []db.StorageObject{{StorageID: "unknown-blob"}, {RepoName: "alpine", Digest: "sha256:0123"}}
	if _, err := s.ReconcileUnknownObjects(ctx, "library", found, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	marks, err := s.ListUnknownObjects(ctx, "library")
	if err != nil || len(marks) != 2 {
		t.Fatalf("ListUnknownObjects = %+v, %v", marks, err)
	}
	for _, mk := range marks {
		if (mk.StorageObject != found[0] && mk.StorageObject != found[1]) || !mk.CanBeDeletedAt.Equal(now.Add(time.Minute)) {
			t.Errorf("ListUnknownObjects: %+v", mk)
		}
	}
	if other, err := s.ListUnknownObjects(ctx, "other"); err != nil || len(other) != 0 {
		t.Errorf("ListUnknownObjects(other) = %+v, %v", other, err)
	}

	if changed, err := s.ForgetBlobContent(ctx, b.ID, "another-id"); err != nil || changed {
		t.Errorf("ForgetBlobContent with another storage ID = %v, %v", changed, err)
	}
	if changed, err := s.ForgetBlobContent(ctx, b.ID, b.StorageID); err != nil || !changed {
		t.Errorf("ForgetBlobContent = %v, %v", changed, err)
	}
	if got, err := s.GetBlobInAccount(ctx, "library", b.Digest); err != nil || got.StorageID != "" {
		t.Errorf("blob after ForgetBlobContent = %+v, %v", got, err)
	}
}
