package dbtest

import (
	"testing"

	"keppel/internal/db"
	"keppel/internal/models"
)

func testBlobs(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	f.account(t, "other")
	repo := f.repo(t, "library", "alpine")
	sibling := f.repo(t, "library", "busybox")
	foreign := f.repo(t, "other", "alpine")

	in := f.newBlob("library", "layer 1")
	b, created, err := s.CreateBlobAndMount(ctx, in, repo.ID)
	if err != nil {
		t.Fatalf("CreateBlobAndMount: %v", err)
	}
	if !created || b.ID == 0 {
		t.Fatalf("CreateBlobAndMount: created=%v, ID=%d", created, b.ID)
	}
	want := in
	want.ID = b.ID
	wantEqual(t, "CreateBlobAndMount result", b, want)

	got, err := s.GetBlobInRepository(ctx, repo.ID, in.Digest)
	if err != nil {
		t.Fatalf("GetBlobInRepository: %v", err)
	}
	wantEqual(t, "GetBlobInRepository", got, want)
	got, err = s.GetBlobInAccount(ctx, "library", in.Digest)
	if err != nil {
		t.Fatalf("GetBlobInAccount: %v", err)
	}
	wantEqual(t, "GetBlobInAccount", got, want)

	runErrCases(t, []errCase{
		{"not mounted in sibling repository", func(t *testing.T) error {
			_, err := s.GetBlobInRepository(t.Context(), sibling.ID, in.Digest)
			return err
		}, db.ErrNotFound},
		{"not in other account", func(t *testing.T) error {
			_, err := s.GetBlobInAccount(t.Context(), "other", in.Digest)
			return err
		}, db.ErrNotFound},
		{"not mounted in other account's repository", func(t *testing.T) error {
			_, err := s.GetBlobInRepository(t.Context(), foreign.ID, in.Digest)
			return err
		}, db.ErrNotFound},
		{"unknown digest in repository", func(t *testing.T) error {
			_, err := s.GetBlobInRepository(t.Context(), repo.ID, digestOf("unknown"))
			return err
		}, db.ErrNotFound},
		{"unknown digest in account", func(t *testing.T) error {
			_, err := s.GetBlobInAccount(t.Context(), "library", digestOf("unknown"))
			return err
		}, db.ErrNotFound},
		{"unknown repository ID", func(t *testing.T) error {
			_, err := s.GetBlobInRepository(t.Context(), foreign.ID+1000, in.Digest)
			return err
		}, db.ErrNotFound},
		{"create in unknown repository", func(t *testing.T) error {
			_, _, err := s.CreateBlobAndMount(t.Context(), f.newBlob("library", "layer 2"), foreign.ID+1000)
			return err
		}, db.ErrReferenceMissing},
		{"create in repository of other account", func(t *testing.T) error {
			_, _, err := s.CreateBlobAndMount(t.Context(), f.newBlob("library", "layer 2"), foreign.ID)
			return err
		}, db.ErrReferenceMissing},
		{"create for unknown account", func(t *testing.T) error {
			_, _, err := s.CreateBlobAndMount(t.Context(), f.newBlob("unknown", "layer 2"), repo.ID)
			return err
		}, db.ErrReferenceMissing},
	})

	// failed creations left nothing behind
	for _, acc := range []string{"library", "other", "unknown"} {
		_, err := s.GetBlobInAccount(ctx, acc, digestOf("layer 2"))
		wantErr(t, "blob of failed creation in "+acc, err, db.ErrNotFound)
	}
}

func testBlobDedup(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	f.account(t, "other")
	repo := f.repo(t, "library", "alpine")
	sibling := f.repo(t, "library", "busybox")
	foreign := f.repo(t, "other", "alpine")
	first := f.blob(t, repo, "shared layer")

	// the same content pushed into another repository of the account
	// returns the existing blob and mounts it there
	dup := f.newBlob("library", "shared layer")
	if dup.StorageID == first.StorageID {
		t.Fatal("test bug: storage IDs should differ")
	}
	got, created, err := s.CreateBlobAndMount(ctx, dup, sibling.ID)
	if err != nil {
		t.Fatalf("CreateBlobAndMount(duplicate): %v", err)
	}
	if created {
		t.Fatal("CreateBlobAndMount(duplicate): created = true, want false")
	}
	wantEqual(t, "CreateBlobAndMount(duplicate)", got, first)
	mounted, err := s.GetBlobInRepository(ctx, sibling.ID, first.Digest)
	if err != nil {
		t.Fatalf("GetBlobInRepository(sibling): %v", err)
	}
	wantEqual(t, "blob mounted by duplicate", mounted, first)

	// pushing it again into the same repository changes nothing
	got, created, err = s.CreateBlobAndMount(ctx, f.newBlob("library", "shared layer"), repo.ID)
	if err != nil || created {
		t.Fatalf("CreateBlobAndMount(same repository): created=%v, err=%v", created, err)
	}
	wantEqual(t, "CreateBlobAndMount(same repository)", got, first)

	// another account gets a blob of its own
	own, created, err := s.CreateBlobAndMount(ctx, f.newBlob("other", "shared layer"), foreign.ID)
	if err != nil || !created {
		t.Fatalf("CreateBlobAndMount(other account): created=%v, err=%v", created, err)
	}
	if own.ID == first.ID || own.AccountName != "other" {
		t.Fatalf("other account's blob: %+v (first: %+v)", own, first)
	}
	inAccount, err := s.GetBlobInAccount(ctx, "library", first.Digest)
	if err != nil {
		t.Fatalf("GetBlobInAccount: %v", err)
	}
	wantEqual(t, "library's blob after other account's push", inAccount, first)
}

func testBlobMounts(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	f.account(t, "other")
	repo := f.repo(t, "library", "alpine")
	sibling := f.repo(t, "library", "busybox")
	foreign := f.repo(t, "other", "alpine")
	b := f.blob(t, repo, "layer")

	// mounting is idempotent
	for i := range 2 {
		if err := s.MountBlob(ctx, b.ID, sibling.ID); err != nil {
			t.Fatalf("MountBlob #%d: %v", i+1, err)
		}
	}
	if err := s.MountBlob(ctx, b.ID, repo.ID); err != nil {
		t.Fatalf("MountBlob into the repository it was created in: %v", err)
	}
	got, err := s.GetBlobInRepository(ctx, sibling.ID, b.Digest)
	if err != nil {
		t.Fatalf("GetBlobInRepository after MountBlob: %v", err)
	}
	wantEqual(t, "mounted blob", got, b)

	runErrCases(t, []errCase{
		{"unknown blob", func(t *testing.T) error {
			return s.MountBlob(t.Context(), b.ID+1000, sibling.ID)
		}, db.ErrReferenceMissing},
		{"unknown repository", func(t *testing.T) error {
			return s.MountBlob(t.Context(), b.ID, foreign.ID+1000)
		}, db.ErrReferenceMissing},
		{"repository of other account", func(t *testing.T) error {
			return s.MountBlob(t.Context(), b.ID, foreign.ID)
		}, db.ErrReferenceMissing},
	})
	_, err = s.GetBlobInRepository(ctx, foreign.ID, b.Digest)
	wantErr(t, "blob in other account's repository", err, db.ErrNotFound)
}

func testUnmountBlob(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	sibling := f.repo(t, "library", "busybox")
	used := f.blob(t, repo, "used layer")
	unused := f.blob(t, repo, "unused layer")
	if err := s.MountBlob(ctx, used.ID, sibling.ID); err != nil {
		t.Fatalf("MountBlob: %v", err)
	}
	m := f.manifest(t, repo, "manifest", []models.Blob{used}, nil, "")

	runErrCases(t, []errCase{
		{"referenced by a manifest", func(t *testing.T) error {
			return s.UnmountBlob(t.Context(), used.ID, repo.ID)
		}, db.ErrStillReferenced},
		{"not mounted", func(t *testing.T) error {
			return s.UnmountBlob(t.Context(), unused.ID, sibling.ID)
		}, db.ErrNotFound},
		{"unknown blob", func(t *testing.T) error {
			return s.UnmountBlob(t.Context(), unused.ID+1000, repo.ID)
		}, db.ErrNotFound},
		// a manifest in one repository does not pin the mount in another
		{"referenced only in another repository", func(t *testing.T) error {
			return s.UnmountBlob(t.Context(), used.ID, sibling.ID)
		}, nil},
		{"unreferenced", func(t *testing.T) error {
			return s.UnmountBlob(t.Context(), unused.ID, repo.ID)
		}, nil},
		{"unmounted already", func(t *testing.T) error {
			return s.UnmountBlob(t.Context(), unused.ID, repo.ID)
		}, db.ErrNotFound},
	})

	// the refused unmount left the mount in place
	if _, err := s.GetBlobInRepository(ctx, repo.ID, used.Digest); err != nil {
		t.Fatalf("GetBlobInRepository after refused unmount: %v", err)
	}
	// unmounted blobs stay in the account (for GC to collect)
	_, err := s.GetBlobInRepository(ctx, repo.ID, unused.Digest)
	wantErr(t, "GetBlobInRepository after unmount", err, db.ErrNotFound)
	if _, err := s.GetBlobInAccount(ctx, "library", unused.Digest); err != nil {
		t.Fatalf("GetBlobInAccount after unmount: %v", err)
	}

	// once the manifest is gone, the blob can be unmounted
	if err := s.DeleteManifest(ctx, repo.ID, m.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	if err := s.UnmountBlob(ctx, used.ID, repo.ID); err != nil {
		t.Fatalf("UnmountBlob after DeleteManifest: %v", err)
	}
}
