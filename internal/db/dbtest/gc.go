package dbtest

import (
	"errors"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

// sweepUntil runs a sweep until it has swept the row that target picks
// (other rows of the store may be due first).
func sweepUntil[T any](t *testing.T, what string, sweep func() (T, bool, error), target func(T) bool) T {
	t.Helper()
	for range 10 {
		res, claimed, err := sweep()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !claimed {
			t.Fatalf("%s claimed nothing", what)
		}
		if target(res) {
			return res
		}
	}
	t.Fatalf("%s never reached its row", what)
	var zero T
	return zero
}

// sweepMounts sweeps the mounts of repo at now, with the next sweep due at
// once.
func sweepMounts(t *testing.T, s db.Store, repo models.Repository, now time.Time, grace time.Duration) db.MountSweep {
	t.Helper()
	return sweepUntil(t, "SweepBlobMounts",
		func() (db.MountSweep, bool, error) { return s.SweepBlobMounts(t.Context(), now, grace, now) },
		func(r db.MountSweep) bool { return r.RepositoryID == repo.ID })
}

// sweepBlobs sweeps the blobs of the account at now, with the next sweep
// due at once.
func sweepBlobs(t *testing.T, s db.Store, account string, now time.Time, grace time.Duration) db.BlobSweep {
	t.Helper()
	return sweepUntil(t, "SweepBlobs",
		func() (db.BlobSweep, bool, error) { return s.SweepBlobs(t.Context(), now, grace, now) },
		func(r db.BlobSweep) bool { return r.Account.AccountName == account })
}

// testGCSweeps walks a blob through both sweeps: an unreferenced mount is
// marked, survives until its mark expires, and is deleted; then the blob,
// mounted nowhere, goes the same way, and its size leaves the usage.
func testGCSweeps(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.accountIn(t, "gc", "tenant-gc")
	repo := f.repo(t, "gc", "app")
	used := f.blob(t, repo, "referenced layer")
	loose := f.blob(t, repo, "unreferenced layer")
	f.manifest(t, repo, "manifest", []models.Blob{used}, nil, "v1")
	const grace = 10 * time.Minute
	t0 := time.Unix(1_900_000_000, 0)

	got := sweepMounts(t, s, repo, t0, grace)
	wantEqual(t, "first mount sweep", got, db.MountSweep{RepositoryID: repo.ID, Marked: 1})
	got = sweepMounts(t, s, repo, t0.Add(grace-time.Second), grace)
	wantEqual(t, "before the mark expires", got, db.MountSweep{RepositoryID: repo.ID})
	if _, err := s.GetBlobInRepository(ctx, repo.ID, loose.Digest); err != nil {
		t.Fatalf("the mount is gone before its mark expired: %v", err)
	}
	got = sweepMounts(t, s, repo, t0.Add(grace), grace)
	wantEqual(t, "when the mark expired", got, db.MountSweep{RepositoryID: repo.ID, Deleted: 1})
	if _, err := s.GetBlobInRepository(ctx, repo.ID, loose.Digest); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("the expired mount is still there: %v", err)
	}
	if _, err := s.GetBlobInRepository(ctx, repo.ID, used.Digest); err != nil {
		t.Fatalf("the referenced mount is gone: %v", err)
	}

	before, err := s.GetUsage(ctx, "tenant-gc")
	if err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(grace)
	blobs := sweepBlobs(t, s, "gc", t1, grace)
	if blobs.Marked != 1 || len(blobs.Deleted) != 0 || blobs.Account.AuthTenantID != "tenant-gc" {
		t.Fatalf("first blob sweep: %+v, want 1 marked", blobs)
	}
	if blobs = sweepBlobs(t, s, "gc", t1.Add(grace-time.Second), grace); blobs.Marked != 0 || len(blobs.Deleted) != 0 {
		t.Fatalf("blob sweep before the mark expires: %+v", blobs)
	}
	blobs = sweepBlobs(t, s, "gc", t1.Add(grace), grace)
	if len(blobs.Deleted) != 1 || blobs.Deleted[0].StorageID != loose.StorageID {
		t.Fatalf("blob sweep when the mark expired: %+v, want %s deleted", blobs, loose.Digest)
	}
	if _, err := s.GetBlobInAccount(ctx, "gc", loose.Digest); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("the swept blob is still there: %v", err)
	}
	after, err := s.GetUsage(ctx, "tenant-gc")
	if err != nil {
		t.Fatal(err)
	}
	if before.SizeBytes-after.SizeBytes != loose.SizeBytes {
		t.Fatalf("usage went from %d to %d bytes, want %d less", before.SizeBytes, after.SizeBytes, loose.SizeBytes)
	}
}

// testGCSweepProtections: a mount that is used again loses its mark, and
// no mount is deleted while an upload into the repository is active.
func testGCSweepProtections(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "gcp")
	repo := f.repo(t, "gcp", "app")
	a := f.blob(t, repo, "layer a")
	b := f.blob(t, repo, "layer b")
	const grace = time.Minute
	t0 := time.Unix(1_900_000_000, 0)
	if got := sweepMounts(t, s, repo, t0, grace); got.Marked != 2 {
		t.Fatalf("first sweep: %+v, want 2 marked", got)
	}

	// a is referenced by a manifest pushed meanwhile: its mark goes.
	f.manifest(t, repo, "uses a", []models.Blob{a}, nil, "")
	if got := sweepMounts(t, s, repo, t0.Add(time.Second), grace); got.Unmarked != 1 {
		t.Fatalf("sweep after a push: %+v, want 1 unmarked", got)
	}

	// An upload active within the grace period holds back deletions.
	u := models.Upload{RepositoryID: repo.ID, UUID: "in-progress", StorageID: "s-in-progress",
		DigestAlgorithm: "sha256", UpdatedAt: t0.Add(grace - time.Second)}
	if err := s.CreateUpload(ctx, u); err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}
	got := sweepMounts(t, s, repo, t0.Add(grace), grace)
	if !got.SkippedForActiveUploads || got.Deleted != 0 {
		t.Fatalf("sweep during an upload: %+v, want nothing deleted", got)
	}
	if _, err := s.GetBlobInRepository(ctx, repo.ID, b.Digest); err != nil {
		t.Fatalf("an expired mount was deleted during an upload: %v", err)
	}
	// Once the upload has been quiet for a grace period, it goes.
	got = sweepMounts(t, s, repo, t0.Add(2*grace), grace)
	if got.SkippedForActiveUploads || got.Deleted != 1 {
		t.Fatalf("sweep after the upload went quiet: %+v, want 1 deleted", got)
	}

	// Sweeps are scheduled: with the next sweep due later, nothing is due.
	if _, _, err := s.SweepBlobMounts(ctx, t0.Add(3*grace), grace, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		res, claimed, err := s.SweepBlobMounts(ctx, t0.Add(3*grace), grace, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !claimed {
			return
		}
		if res.RepositoryID == repo.ID {
			t.Fatalf("the repository was swept again before its next sweep was due")
		}
	}
}

// testReconcileUnknownObjects: objects the database does not know are
// returned for deletion only when they were unknown for a grace period;
// known and vanished objects are forgotten.
func testReconcileUnknownObjects(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "sweep")
	repo := f.repo(t, "sweep", "app")
	b := f.blob(t, repo, "known layer")
	m := f.manifest(t, repo, "known manifest", []models.Blob{b}, nil, "v1")
	knownBlob := db.StorageObject{StorageID: b.StorageID}
	knownManifest := db.StorageObject{RepoName: "app", Digest: m.Digest}
	orphan := db.StorageObject{StorageID: "orphan"}
	orphanCopy := db.StorageObject{RepoName: "app", Digest: digestOf("deleted manifest")}
	late := db.StorageObject{StorageID: "committed-late"}
	const grace = time.Minute
	t0 := time.Unix(1_900_000_000, 0)

	reconcile := func(at time.Time, found ...db.StorageObject) []db.StorageObject {
		t.Helper()
		expired, err := s.ReconcileUnknownObjects(ctx, "sweep", found, at, grace)
		if err != nil {
			t.Fatalf("ReconcileUnknownObjects: %v", err)
		}
		return expired
	}
	all := []db.StorageObject{knownBlob, knownManifest, orphan, orphanCopy, late}
	if got := reconcile(t0, all...); len(got) != 0 {
		t.Fatalf("first sighting: %+v expired", got)
	}
	if got := reconcile(t0.Add(grace-time.Second), all...); len(got) != 0 {
		t.Fatalf("before the deadline: %+v expired", got)
	}
	// "late" becomes known: an upload committed after its content was
	// listed.
	lateBlob := f.newBlob("sweep", "late layer")
	lateBlob.StorageID = late.StorageID
	if _, _, err := s.CreateBlobAndMount(ctx, lateBlob, repo.ID); err != nil {
		t.Fatal(err)
	}
	got := reconcile(t0.Add(grace), all...)
	wantEqual(t, "expired at the deadline", got, []db.StorageObject{orphan, orphanCopy})
	// Returned objects are forgotten: seen again, they start over.
	if got := reconcile(t0.Add(grace), all...); len(got) != 0 {
		t.Fatalf("right after expiring: %+v expired again", got)
	}
	// An object that vanished is forgotten too.
	reconcile(t0.Add(grace + time.Second))
	if got := reconcile(t0.Add(3*grace), orphan); len(got) != 0 {
		t.Fatalf("an object that vanished and came back expired at once: %+v", got)
	}
}

// testBlobValidation: blobs come due for a re-hash one interval after
// their push; a recorded error shows on the blob until a new upload of the
// same digest replaces the content.
func testBlobValidation(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.accountIn(t, "rehash", "tenant-r")
	repo := f.repo(t, "rehash", "app")
	b := f.blob(t, repo, "content to check")
	f.manifest(t, repo, "uses the blob", []models.Blob{b}, nil, "v1")
	const interval = time.Hour
	claim := func(at time.Time) (models.Blob, models.StorageRef, bool) {
		t.Helper()
		for range 20 {
			got, ref, claimed, err := s.ClaimBlobValidation(ctx, at, interval, at.Add(interval))
			if err != nil {
				t.Fatalf("ClaimBlobValidation: %v", err)
			}
			if !claimed || got.ID == b.ID {
				return got, ref, claimed
			}
		}
		t.Fatal("ClaimBlobValidation never reached the blob")
		return models.Blob{}, models.StorageRef{}, false
	}
	if _, _, claimed := claim(b.PushedAt.Add(interval - time.Second)); claimed {
		t.Fatal("a blob was due before one interval after its push")
	}
	got, ref, claimed := claim(b.PushedAt.Add(interval))
	if !claimed || got.ID != b.ID || ref != (models.StorageRef{AuthTenantID: "tenant-r", AccountName: "rehash"}) {
		t.Fatalf("claim: %+v in %+v (claimed %v)", got, ref, claimed)
	}
	if _, _, claimed := claim(b.PushedAt.Add(interval)); claimed {
		t.Fatal("a claimed blob was claimed again before its next re-hash")
	}

	changed, err := s.RecordBlobValidation(ctx, b.ID, b.PushedAt.Add(interval), "the content does not match the digest")
	if err != nil || !changed {
		t.Fatalf("RecordBlobValidation: %v, %v", changed, err)
	}
	if changed, err := s.RecordBlobValidation(ctx, b.ID, b.PushedAt.Add(2*interval), "the content does not match the digest"); err != nil || changed {
		t.Fatalf("recording the same result again: %v, %v", changed, err)
	}
	bad, err := s.GetBlobInRepository(ctx, repo.ID, b.Digest)
	if err != nil || bad.ValidationError == "" {
		t.Fatalf("the error does not show: %+v, %v", bad, err)
	}
	infos, err := s.ListManifestInfos(ctx, repo.ID, "", db.NoLimit)
	if err != nil || len(infos) != 1 || infos[0].CorruptBlob != b.Digest+": the content does not match the digest" {
		t.Fatalf("the manifest does not name its corrupt blob: %+v, %v", infos, err)
	}

	// A new upload of the digest replaces the content and clears the error.
	again := f.newBlob("rehash", "content to check")
	healed, created, err := s.CreateBlobAndMount(ctx, again, repo.ID)
	if err != nil || !created || healed.ID != b.ID || healed.StorageID != again.StorageID || healed.ValidationError != "" {
		t.Fatalf("CreateBlobAndMount over corrupt content: %+v, created %v, %v", healed, created, err)
	}
	usage, err := s.GetUsage(ctx, "tenant-r")
	if err != nil || usage.SizeBytes != b.SizeBytes {
		t.Fatalf("usage after the replacement: %+v, %v; want the blob counted once", usage, err)
	}
}

// testGCPolicyRows: runs are claimed only in accounts with GC policies;
// candidates carry their tags and whether an index or a referrer points at
// them; statuses are stored.
func testGCPolicyRows(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "nogc")
	f.repo(t, "nogc", "app")
	acct := f.account(t, "withgc")
	repo := f.repo(t, "withgc", "app")
	child := f.manifest(t, repo, "child", nil, nil, "")
	index := f.manifest(t, repo, "index", nil, []string{child.Digest}, "v1")
	referrer := f.newManifest(repo, "referrer")
	referrer.SubjectDigest = index.Digest
	if err := s.PutManifest(ctx, referrer, nil, nil, ""); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_900_000_000, 0)
	if _, claimed, err := s.ClaimGCPolicyRun(ctx, now, now.Add(time.Hour)); err != nil || claimed {
		t.Fatalf("claimed a run without GC policies: %v, %v", claimed, err)
	}
	acct.GCPoliciesJSON = `[{"match_repository":".*","action":"protect"}]`
	if err := s.UpdateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	got, claimed, err := s.ClaimGCPolicyRun(ctx, now, now.Add(time.Hour))
	if err != nil || !claimed || got.ID != repo.ID {
		t.Fatalf("ClaimGCPolicyRun = %+v, %v, %v; want %d", got, claimed, err, repo.ID)
	}
	if _, claimed, err := s.ClaimGCPolicyRun(ctx, now, now.Add(time.Hour)); err != nil || claimed {
		t.Fatalf("claimed again before the next run: %v, %v", claimed, err)
	}

	candidates, err := s.ListGCCandidates(ctx, repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	byDigest := map[string]db.GCCandidate{}
	for _, c := range candidates {
		byDigest[c.Digest] = c
	}
	if c := byDigest[child.Digest]; !c.IsChild || c.IsSubject || len(c.Tags) != 0 {
		t.Errorf("child: %+v", c)
	}
	if c := byDigest[index.Digest]; c.IsChild || !c.IsSubject || len(c.Tags) != 1 || c.Tags[0] != "v1" || !c.PushedAt.Equal(index.PushedAt) {
		t.Errorf("index: %+v", c)
	}
	if c := byDigest[referrer.Digest]; c.IsChild || c.IsSubject || !c.LastPulledAt.IsZero() {
		t.Errorf("referrer: %+v", c)
	}
	if len(candidates) != 3 {
		t.Errorf("%d candidates, want 3", len(candidates))
	}

	status := `{"action":"protect","reason":"is referenced by an index"}`
	if err := s.SetGCStatuses(ctx, repo.ID, map[string]string{child.Digest: status, index.Digest: ""}); err != nil {
		t.Fatal(err)
	}
	m, err := s.GetManifest(ctx, repo.ID, child.Digest)
	if err != nil || m.GCStatusJSON != status {
		t.Fatalf("stored status: %q, %v", m.GCStatusJSON, err)
	}
}

// testManifestValidation: manifests come due one interval after their
// push; a recorded error shows on the manifest until a push of it brings
// the content again.
func testManifestValidation(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.accountIn(t, "reval", "tenant-v")
	repo := f.repo(t, "reval", "app")
	m := f.manifest(t, repo, "to check", nil, nil, "v1")
	const interval = time.Hour
	claim := func(at time.Time) (db.ManifestCopy, string, bool) {
		t.Helper()
		for range 20 {
			c, mediaType, claimed, err := s.ClaimManifestValidation(ctx, at, interval, at.Add(interval))
			if err != nil {
				t.Fatalf("ClaimManifestValidation: %v", err)
			}
			if !claimed || c.Digest == m.Digest {
				return c, mediaType, claimed
			}
		}
		t.Fatal("ClaimManifestValidation never reached the manifest")
		return db.ManifestCopy{}, "", false
	}
	if _, _, claimed := claim(m.PushedAt.Add(interval - time.Second)); claimed {
		t.Fatal("a manifest was due before one interval after its push")
	}
	c, mediaType, claimed := claim(m.PushedAt.Add(interval))
	want := db.ManifestCopy{ManifestKey: db.ManifestKey{RepositoryID: repo.ID, Digest: m.Digest},
		Storage: models.StorageRef{AuthTenantID: "tenant-v", AccountName: "reval"}, RepoName: "app", Content: m.Content}
	if !claimed || mediaType != m.MediaType {
		t.Fatalf("claim: %+v %q (claimed %v)", c, mediaType, claimed)
	}
	wantEqual(t, "claimed manifest", c, want)

	changed, err := s.RecordManifestValidation(ctx, c.ManifestKey, m.PushedAt.Add(interval), "the content does not match the digest")
	if err != nil || !changed {
		t.Fatalf("RecordManifestValidation: %v, %v", changed, err)
	}
	got, err := s.GetManifest(ctx, repo.ID, m.Digest)
	if err != nil || got.ValidationError == "" {
		t.Fatalf("the error does not show: %+v, %v", got.Manifest, err)
	}
	again := m
	again.PushedAt = f.tick()
	if err := s.PutManifest(ctx, again, nil, nil, "v1"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetManifest(ctx, repo.ID, m.Digest); err != nil || got.ValidationError != "" {
		t.Fatalf("after pushing again: %+v, %v", got.Manifest, err)
	}
}
