package dbtest

import (
	"errors"
	"fmt"
	"testing"

	"keppel/internal/db"
	"keppel/internal/models"
)

// wantUsage fails the test unless the tenant uses exactly that much.
func wantUsage(t *testing.T, s db.Store, tenant string, manifests, bytes int64) {
	t.Helper()
	got, err := s.GetUsage(t.Context(), tenant)
	if err != nil {
		t.Fatalf("GetUsage(%q): %v", tenant, err)
	}
	wantEqual(t, "usage of "+tenant, got, models.Usage{AuthTenantID: tenant, ManifestCount: manifests, SizeBytes: bytes})
}

func testQuotas(t *testing.T, s db.Store) {
	ctx := t.Context()
	_, err := s.GetQuota(ctx, "t1")
	wantErr(t, "GetQuota without a row", err, db.ErrNotFound)

	for _, q := range []models.Quota{
		{AuthTenantID: "t1", ManifestCount: 100, SizeBytes: 1 << 40},
		{AuthTenantID: "t1", ManifestCount: 5, SizeBytes: -1}, // replaces; unlimited bytes
		{AuthTenantID: "t2", ManifestCount: 0, SizeBytes: 0},
	} {
		if err := s.PutQuota(ctx, q); err != nil {
			t.Fatalf("PutQuota(%+v): %v", q, err)
		}
		got, err := s.GetQuota(ctx, q.AuthTenantID)
		if err != nil {
			t.Fatalf("GetQuota(%q): %v", q.AuthTenantID, err)
		}
		wantEqual(t, "GetQuota", got, q)
	}
	got, err := s.GetQuota(ctx, "t1")
	if err != nil {
		t.Fatalf("GetQuota(t1): %v", err)
	}
	wantEqual(t, "GetQuota(t1) after t2 was set", got, models.Quota{AuthTenantID: "t1", ManifestCount: 5, SizeBytes: -1})
	_, err = s.GetQuota(ctx, "T1")
	wantErr(t, "GetQuota(other case)", err, db.ErrNotFound)
}

func testUsage(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.accountIn(t, "a1", "shared")
	f.accountIn(t, "a2", "shared")
	f.accountIn(t, "b", "other")
	wantUsage(t, s, "shared", 0, 0)
	wantUsage(t, s, "unknown", 0, 0)
	// quotas are not usage
	if err := s.PutQuota(ctx, models.Quota{AuthTenantID: "shared", ManifestCount: 10, SizeBytes: 1000}); err != nil {
		t.Fatalf("PutQuota: %v", err)
	}
	wantUsage(t, s, "shared", 0, 0)

	r1 := f.repo(t, "a1", "x")
	r1b := f.repo(t, "a1", "y")
	r2 := f.repo(t, "a2", "x")
	rb := f.repo(t, "b", "x")
	wantUsage(t, s, "shared", 0, 0)

	layer := f.blob(t, r1, "layer one") // 9 bytes
	wantUsage(t, s, "shared", 0, 9)
	// the same content in another repository of the account is the same
	// blob: no bytes more
	again, created, err := s.CreateBlobAndMount(ctx, f.newBlob("a1", "layer one"), r1b.ID)
	if err != nil || created || again.ID != layer.ID {
		t.Fatalf("CreateBlobAndMount(existing) = %+v, %v, %v", again, created, err)
	}
	if err := s.MountBlob(ctx, layer.ID, r1b.ID); err != nil {
		t.Fatalf("MountBlob: %v", err)
	}
	wantUsage(t, s, "shared", 0, 9)
	// in another account of the tenant it is a blob of its own
	layer2 := f.blob(t, r2, "layer one")
	config := f.blob(t, r1, "config") // 6 bytes
	wantUsage(t, s, "shared", 0, 24)

	m1 := f.manifest(t, r1, "m1", []models.Blob{layer, config}, nil, "latest")
	wantUsage(t, s, "shared", 1, 24)
	// pushing it again, with another tag or none, changes nothing
	if err := s.PutManifest(ctx, m1, []int64{layer.ID, config.ID}, nil, "v1"); err != nil {
		t.Fatalf("PutManifest(again): %v", err)
	}
	if err := s.PutManifest(ctx, m1, nil, nil, ""); err != nil {
		t.Fatalf("PutManifest(again, untagged): %v", err)
	}
	wantUsage(t, s, "shared", 1, 24)
	// the same manifest in another repository and in another account counts
	m1b := f.manifest(t, r1b, "m1", []models.Blob{layer}, nil, "")
	m2 := f.manifest(t, r2, "m1", []models.Blob{layer2}, nil, "")
	idx := f.manifest(t, r1, "index", nil, []string{m1.Digest}, "")
	wantUsage(t, s, "shared", 4, 24)

	// another tenant's content is counted for it alone
	ob := f.blob(t, rb, "other tenant's layer")
	om := f.manifest(t, rb, "m1", []models.Blob{ob}, nil, "latest")
	wantUsage(t, s, "other", 1, ob.SizeBytes)
	wantUsage(t, s, "shared", 4, 24)

	// deleting manifests and tags
	if err := s.DeleteTag(ctx, r1.ID, "latest"); err != nil {
		t.Fatalf("DeleteTag: %v", err)
	}
	wantUsage(t, s, "shared", 4, 24)
	for i, m := range []models.ManifestWithContent{idx, m1, m1b} {
		if err := s.DeleteManifest(ctx, m.RepositoryID, m.Digest); err != nil {
			t.Fatalf("DeleteManifest(%d): %v", i, err)
		}
		wantUsage(t, s, "shared", int64(3-i), 24)
	}
	// blobs count until they are deleted, mounted or not
	if err := s.UnmountBlob(ctx, layer.ID, r1b.ID); err != nil {
		t.Fatalf("UnmountBlob: %v", err)
	}
	wantUsage(t, s, "shared", 1, 24)
	if err := s.DeleteManifest(ctx, m2.RepositoryID, m2.Digest); err != nil {
		t.Fatalf("DeleteManifest(m2): %v", err)
	}
	wantUsage(t, s, "shared", 0, 24)
	wantUsage(t, s, "other", 1, ob.SizeBytes)

	// a deleted manifest pushed again counts again
	if err := s.PutManifest(ctx, m1, []int64{layer.ID, config.ID}, nil, ""); err != nil {
		t.Fatalf("PutManifest after delete: %v", err)
	}
	wantUsage(t, s, "shared", 1, 24)
	if err := s.DeleteManifest(ctx, om.RepositoryID, om.Digest); err != nil {
		t.Fatalf("DeleteManifest(other): %v", err)
	}
	wantUsage(t, s, "other", 0, ob.SizeBytes)
}

func testUsageUnchangedByFailures(t *testing.T, s db.Store) {
	f := newFixture(s)
	f.accountIn(t, "library", "t")
	f.accountIn(t, "foreign", "t2")
	repo := f.repo(t, "library", "alpine")
	sibling := f.repo(t, "library", "busybox")
	foreignRepo := f.repo(t, "foreign", "alpine")
	b := f.blob(t, repo, "layer")
	elsewhere := f.blob(t, sibling, "mounted in sibling")
	child := f.manifest(t, repo, "child", []models.Blob{b}, nil, "")
	f.manifest(t, repo, "index", nil, []string{child.Digest}, "")
	const manifests, bytes = 2, int64(len("layer") + len("mounted in sibling"))
	wantUsage(t, s, "t", manifests, bytes)

	runErrCases(t, []errCase{
		{"manifest with unmounted blob", func(t *testing.T) error {
			return s.PutManifest(t.Context(), f.newManifest(repo, "broken 1"), []int64{b.ID, elsewhere.ID}, nil, "x")
		}, db.ErrReferenceMissing},
		{"manifest with missing child", func(t *testing.T) error {
			return s.PutManifest(t.Context(), f.newManifest(repo, "broken 2"), []int64{b.ID}, []string{digestOf("missing")}, "")
		}, db.ErrReferenceMissing},
		{"manifest in unknown repository", func(t *testing.T) error {
			m := f.newManifest(repo, "broken 3")
			m.RepositoryID = foreignRepo.ID + 1000
			return s.PutManifest(t.Context(), m, nil, nil, "")
		}, db.ErrReferenceMissing},
		{"referenced child", func(t *testing.T) error {
			return s.DeleteManifest(t.Context(), repo.ID, child.Digest)
		}, db.ErrStillReferenced},
		{"unknown manifest", func(t *testing.T) error {
			return s.DeleteManifest(t.Context(), repo.ID, digestOf("unknown"))
		}, db.ErrNotFound},
		{"blob into another account's repository", func(t *testing.T) error {
			_, _, err := s.CreateBlobAndMount(t.Context(), f.newBlob("library", "new layer"), foreignRepo.ID)
			return err
		}, db.ErrReferenceMissing},
		{"blob into unknown repository", func(t *testing.T) error {
			_, _, err := s.CreateBlobAndMount(t.Context(), f.newBlob("library", "new layer"), foreignRepo.ID+1000)
			return err
		}, db.ErrReferenceMissing},
		{"repository with manifests", func(t *testing.T) error {
			return s.DeleteRepository(t.Context(), repo.ID)
		}, db.ErrStillReferenced},
		{"account with repositories", func(t *testing.T) error {
			return s.DeleteAccount(t.Context(), "library")
		}, db.ErrStillReferenced},
	})
	wantUsage(t, s, "t", manifests, bytes)
	wantUsage(t, s, "t2", 0, 0)
}

func testUsageAfterDeletingAccount(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.accountIn(t, "doomed", "t")
	f.accountIn(t, "kept", "t")
	doomed := f.repo(t, "doomed", "alpine")
	sibling := f.repo(t, "doomed", "busybox")
	kept := f.repo(t, "kept", "alpine")
	b1 := f.blob(t, doomed, "layer one")
	b2 := f.blob(t, sibling, "layer two")
	if err := s.MountBlob(ctx, b1.ID, sibling.ID); err != nil {
		t.Fatalf("MountBlob: %v", err)
	}
	m := f.manifest(t, doomed, "m", []models.Blob{b1}, nil, "latest")
	kb := f.blob(t, kept, "layer one")
	km := f.manifest(t, kept, "m", []models.Blob{kb}, nil, "latest")
	wantUsage(t, s, "t", 2, b1.SizeBytes+b2.SizeBytes+kb.SizeBytes)

	if err := s.DeleteManifest(ctx, doomed.ID, m.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	for _, r := range []models.Repository{doomed, sibling} {
		if err := s.DeleteRepository(ctx, r.ID); err != nil {
			t.Fatalf("DeleteRepository(%s): %v", r.Name, err)
		}
	}
	wantUsage(t, s, "t", 1, b1.SizeBytes+b2.SizeBytes+kb.SizeBytes)
	if err := s.DeleteAccount(ctx, "doomed"); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	wantUsage(t, s, "t", 1, kb.SizeBytes)

	// the other account of the tenant goes the same way, down to zero
	if err := s.DeleteManifest(ctx, kept.ID, km.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	if err := s.DeleteRepository(ctx, kept.ID); err != nil {
		t.Fatalf("DeleteRepository: %v", err)
	}
	if err := s.DeleteAccount(ctx, "kept"); err != nil {
		t.Fatalf("DeleteAccount(kept): %v", err)
	}
	wantUsage(t, s, "t", 0, 0)
}

// testConcurrentUsage pushes distinct blobs and manifests of one tenant
// from many goroutines at once: no update of the usage may get lost.
func testConcurrentUsage(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.accountIn(t, "a1", "shared")
	f.accountIn(t, "a2", "shared")
	repos := []models.Repository{f.repo(t, "a1", "x"), f.repo(t, "a1", "y"), f.repo(t, "a2", "x")}
	const (
		perWorker = 4
		layerSize = int64(len("layer 00-0"))
	)
	errs := race(workers, func(i int) error {
		repo := repos[i%len(repos)]
		for j := range perWorker {
			content := fmt.Sprintf("layer %02d-%d", i, j) // layerSize bytes
			b, created, err := s.CreateBlobAndMount(ctx, f.newBlob(repo.AccountName, content), repo.ID)
			if err != nil {
				return err
			}
			if !created {
				return fmt.Errorf("blob %q existed", content)
			}
			m := f.newManifest(repo, fmt.Sprintf("manifest %d-%d", i, j))
			if err := s.PutManifest(ctx, m, []int64{b.ID}, nil, fmt.Sprintf("tag-%d-%d", i, j)); err != nil {
				return err
			}
			// and everyone pushes the same manifest, which counts once
			// per repository
			common := f.newManifest(repo, "common")
			if err := s.PutManifest(ctx, common, nil, nil, ""); err != nil {
				return err
			}
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	wantUsage(t, s, "shared", workers*perWorker+int64(len(repos)), workers*perWorker*layerSize)

	// and concurrent deletes take back exactly as much
	errs = race(workers, func(i int) error {
		repo := repos[i%len(repos)]
		for j := range perWorker {
			if err := s.DeleteManifest(ctx, repo.ID, digestOf(fmt.Sprintf("manifest %d-%d", i, j))); err != nil {
				return err
			}
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	wantUsage(t, s, "shared", int64(len(repos)), workers*perWorker*layerSize)
}

// testConcurrentDeleteRepository deletes a repository while manifests are
// pushed into it: whichever wins, the usage must match the manifests that
// exist afterwards (a manifest must never vanish with its repository
// without being taken off the usage).
func testConcurrentDeleteRepository(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.accountIn(t, "library", "t")
	for round := range 10 {
		repo := f.repo(t, "library", "contested")
		errs := race(workers, func(i int) error {
			if i == 0 {
				err := s.DeleteRepository(ctx, repo.ID)
				if errors.Is(err, db.ErrStillReferenced) {
					return nil
				}
				return err
			}
			m := f.newManifest(repo, fmt.Sprintf("round %d manifest %d", round, i))
			err := s.PutManifest(ctx, m, nil, nil, "")
			if errors.Is(err, db.ErrReferenceMissing) {
				return nil // the repository was deleted first
			}
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, worker %d: %v", round, i, err)
			}
		}
		stats, err := s.ListRepositoryStats(ctx, "library", "", db.NoLimit)
		if err != nil {
			t.Fatalf("ListRepositoryStats: %v", err)
		}
		var manifests int64
		for _, st := range stats {
			manifests += st.ManifestCount
		}
		wantUsage(t, s, "t", manifests, 0)
		// clean up for the next round
		if len(stats) > 0 {
			infos, err := s.ListManifestInfos(ctx, stats[0].ID, "", db.NoLimit)
			if err != nil {
				t.Fatalf("ListManifestInfos: %v", err)
			}
			for _, m := range infos {
				if err := s.DeleteManifest(ctx, m.RepositoryID, m.Digest); err != nil {
					t.Fatalf("DeleteManifest: %v", err)
				}
			}
			if err := s.DeleteRepository(ctx, stats[0].ID); err != nil {
				t.Fatalf("DeleteRepository: %v", err)
			}
		}
		wantUsage(t, s, "t", 0, 0)
	}
}
