package dbtest

import (
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

func testStaleUploads(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	a := f.account(t, "library")
	repo := f.repo(t, "library", "alpine")

	var times []time.Time
	for _, uuid := range []string{"old-1", "old-2", "fresh"} {
		u := models.Upload{RepositoryID: repo.ID, UUID: uuid, StorageID: "s-" + uuid, DigestAlgorithm: "sha256", UpdatedAt: f.tick()}
		if err := s.CreateUpload(ctx, u); err != nil {
			t.Fatalf("CreateUpload(%s): %v", uuid, err)
		}
		times = append(times, u.UpdatedAt)
	}
	cutoff := times[2] // "fresh" was updated at the cutoff: not stale

	stale, err := s.ListStaleUploads(ctx, cutoff, 10)
	if err != nil {
		t.Fatalf("ListStaleUploads: %v", err)
	}
	if len(stale) != 2 || stale[0].UUID != "old-1" || stale[1].UUID != "old-2" {
		t.Fatalf("ListStaleUploads: got %+v", stale)
	}
	if stale[0].Storage != a.StorageRef() || stale[0].StorageID != "s-old-1" {
		t.Errorf("ListStaleUploads: storage %+v, id %s", stale[0].Storage, stale[0].StorageID)
	}
	if limited, err := s.ListStaleUploads(ctx, cutoff, 1); err != nil || len(limited) != 1 {
		t.Errorf("ListStaleUploads(limit 1): %d, %v", len(limited), err)
	}

	// An upload that was continued after it was listed is not deleted.
	continued := stale[1].Upload
	continued.NumChunks = 1
	continued.UpdatedAt = f.tick()
	if err := s.UpdateUpload(ctx, continued, 0); err != nil {
		t.Fatalf("UpdateUpload: %v", err)
	}
	for _, c := range []struct {
		uuid string
		want bool
	}{{"old-1", true}, {"old-2", false}, {"fresh", false}, {"old-1", false}} {
		deleted, err := s.DeleteStaleUpload(ctx, repo.ID, c.uuid, cutoff)
		if err != nil || deleted != c.want {
			t.Errorf("DeleteStaleUpload(%s) = %v, %v; want %v", c.uuid, deleted, err, c.want)
		}
	}
	if _, err := s.GetUpload(ctx, repo.ID, "old-2"); err != nil {
		t.Errorf("continued upload is gone: %v", err)
	}
}
