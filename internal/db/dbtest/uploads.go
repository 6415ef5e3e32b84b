package dbtest

import (
	"testing"

	"keppel/internal/db"
	"keppel/internal/models"
)

func testUploads(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	sibling := f.repo(t, "library", "busybox")

	u := models.Upload{
		RepositoryID:    repo.ID,
		UUID:            "0b9e2f2c-7c4e-4a0e-9d3e-1f2a3b4c5d6e",
		StorageID:       "upload-storage-1",
		SizeBytes:       1234,
		HashState:       []byte{0, 1, 2, 0xff, 'x'},
		DigestAlgorithm: "sha256",
		NumChunks:       1,
		UpdatedAt:       f.tick(),
	}
	if err := s.CreateUpload(ctx, u); err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}
	got, err := s.GetUpload(ctx, repo.ID, u.UUID)
	if err != nil {
		t.Fatalf("GetUpload: %v", err)
	}
	wantEqual(t, "GetUpload", got, u)

	// an upload with no data yet
	empty := models.Upload{RepositoryID: repo.ID, UUID: "empty", StorageID: "s2", DigestAlgorithm: "sha512", UpdatedAt: f.tick()}
	if err := s.CreateUpload(ctx, empty); err != nil {
		t.Fatalf("CreateUpload(empty): %v", err)
	}
	got, err = s.GetUpload(ctx, repo.ID, "empty")
	if err != nil {
		t.Fatalf("GetUpload(empty): %v", err)
	}
	if len(got.HashState) != 0 {
		t.Errorf("GetUpload(empty): HashState = %v", got.HashState)
	}
	got.HashState = nil
	wantEqual(t, "GetUpload(empty)", got, empty)

	// the same UUID in another repository is another upload
	other := u
	other.RepositoryID = sibling.ID
	other.StorageID = "upload-storage-2"
	if err := s.CreateUpload(ctx, other); err != nil {
		t.Fatalf("CreateUpload(same UUID, other repository): %v", err)
	}

	runErrCases(t, []errCase{
		{"create duplicate", func(t *testing.T) error {
			return s.CreateUpload(t.Context(), u)
		}, db.ErrConflict},
		{"create in unknown repository", func(t *testing.T) error {
			v := u
			v.RepositoryID = sibling.ID + 1000
			return s.CreateUpload(t.Context(), v)
		}, db.ErrReferenceMissing},
		{"get unknown", func(t *testing.T) error {
			_, err := s.GetUpload(t.Context(), repo.ID, "unknown")
			return err
		}, db.ErrNotFound},
		{"get in wrong repository", func(t *testing.T) error {
			_, err := s.GetUpload(t.Context(), sibling.ID, "empty")
			return err
		}, db.ErrNotFound},
		{"delete unknown", func(t *testing.T) error {
			return s.DeleteUpload(t.Context(), repo.ID, "unknown")
		}, db.ErrNotFound},
		{"delete", func(t *testing.T) error {
			return s.DeleteUpload(t.Context(), repo.ID, u.UUID)
		}, nil},
		{"get deleted", func(t *testing.T) error {
			_, err := s.GetUpload(t.Context(), repo.ID, u.UUID)
			return err
		}, db.ErrNotFound},
		{"delete deleted", func(t *testing.T) error {
			return s.DeleteUpload(t.Context(), repo.ID, u.UUID)
		}, db.ErrNotFound},
	})

	// deleting one did not touch the other with the same UUID
	got, err = s.GetUpload(ctx, sibling.ID, u.UUID)
	if err != nil {
		t.Fatalf("GetUpload(other repository): %v", err)
	}
	wantEqual(t, "upload with same UUID in other repository", got, other)
}

func testUpdateUpload(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	u := models.Upload{
		RepositoryID: repo.ID, UUID: "u1", StorageID: "st", SizeBytes: 10,
		HashState: []byte("state 1"), DigestAlgorithm: "sha256", NumChunks: 1, UpdatedAt: f.tick(),
	}
	if err := s.CreateUpload(ctx, u); err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}

	next := u
	next.SizeBytes = 30
	next.HashState = []byte("state 2")
	next.NumChunks = 2
	next.UpdatedAt = f.tick()
	if err := s.UpdateUpload(ctx, next, 1); err != nil {
		t.Fatalf("UpdateUpload: %v", err)
	}
	got, err := s.GetUpload(ctx, repo.ID, "u1")
	if err != nil {
		t.Fatalf("GetUpload: %v", err)
	}
	wantEqual(t, "GetUpload after UpdateUpload", got, next)

	stale := next
	stale.SizeBytes = 999
	stale.HashState = []byte("stale")
	stale.NumChunks = 2
	runErrCases(t, []errCase{
		{"stale chunk count", func(t *testing.T) error {
			return s.UpdateUpload(t.Context(), stale, 1)
		}, db.ErrConflict},
		{"chunk count from the future", func(t *testing.T) error {
			return s.UpdateUpload(t.Context(), stale, 3)
		}, db.ErrConflict},
		{"unknown upload", func(t *testing.T) error {
			v := next
			v.UUID = "unknown"
			return s.UpdateUpload(t.Context(), v, 2)
		}, db.ErrNotFound},
	})
	got, err = s.GetUpload(ctx, repo.ID, "u1")
	if err != nil {
		t.Fatalf("GetUpload: %v", err)
	}
	wantEqual(t, "GetUpload after refused updates", got, next)
}
