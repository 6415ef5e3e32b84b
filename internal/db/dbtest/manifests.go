package dbtest

import (
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

func testPutManifest(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	b1 := f.blob(t, repo, "config")
	b2 := f.blob(t, repo, "layer")

	pulled := ts(1_650_000_000)
	m := f.newManifest(repo, `{"schemaVersion":2}`)
	m.ArtifactType = "application/vnd.example+type"
	m.AnnotationsJSON = `{"org.opencontainers.image.title":"x"}`
	m.LabelsJSON = `{"maintainer":"me"}`
	m.LastPulledAt = &pulled
	// a manifest may list the same blob twice
	if err := s.PutManifest(ctx, m, []int64{b1.ID, b2.ID, b2.ID}, nil, "latest"); err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	got, err := s.GetManifest(ctx, repo.ID, m.Digest)
	if err != nil {
		t.Fatalf("GetManifest: %v", err)
	}
	wantEqual(t, "GetManifest", got, m)
	got, err = s.GetTaggedManifest(ctx, repo.ID, "latest")
	if err != nil {
		t.Fatalf("GetTaggedManifest: %v", err)
	}
	wantEqual(t, "GetTaggedManifest", got, m)

	// without a tag, and without references
	plain := f.manifest(t, repo, "untagged", nil, nil, "")
	got, err = s.GetManifest(ctx, repo.ID, plain.Digest)
	if err != nil {
		t.Fatalf("GetManifest(untagged): %v", err)
	}
	wantEqual(t, "GetManifest(untagged)", got, plain)

	// an index, listing a child twice
	idx := f.manifest(t, repo, "index", nil, []string{m.Digest, plain.Digest, m.Digest}, "multi")
	got, err = s.GetTaggedManifest(ctx, repo.ID, "multi")
	if err != nil {
		t.Fatalf("GetTaggedManifest(multi): %v", err)
	}
	wantEqual(t, "GetTaggedManifest(multi)", got, idx)

	tags, err := s.ListTags(ctx, repo.ID, "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	wantEqual(t, "ListTags", tags, []string{"latest", "multi"})

	runErrCases(t, []errCase{
		{"unknown digest", func(t *testing.T) error {
			_, err := s.GetManifest(t.Context(), repo.ID, digestOf("unknown"))
			return err
		}, db.ErrNotFound},
		{"unknown tag", func(t *testing.T) error {
			_, err := s.GetTaggedManifest(t.Context(), repo.ID, "unknown")
			return err
		}, db.ErrNotFound},
		{"tag is not a digest", func(t *testing.T) error {
			_, err := s.GetManifest(t.Context(), repo.ID, "latest")
			return err
		}, db.ErrNotFound},
		{"unknown repository", func(t *testing.T) error {
			_, err := s.GetTaggedManifest(t.Context(), repo.ID+1000, "latest")
			return err
		}, db.ErrNotFound},
	})
}

func testPutManifestErrors(t *testing.T, s db.Store) {
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	sibling := f.repo(t, "library", "busybox")
	mounted := f.blob(t, repo, "mounted here")
	attempted := f.blob(t, repo, "only in failed manifests")
	elsewhere := f.blob(t, sibling, "mounted in sibling")
	child := f.manifest(t, repo, "child", []models.Blob{mounted}, nil, "")
	siblingChild := f.manifest(t, sibling, "sibling child", nil, nil, "")

	cases := []struct {
		name     string
		repoID   int64
		blobIDs  []int64
		children []string
	}{
		{"blob mounted only in another repository", repo.ID, []int64{attempted.ID, elsewhere.ID}, nil},
		{"unknown blob", repo.ID, []int64{mounted.ID + elsewhere.ID + 1000}, nil},
		{"unknown child", repo.ID, []int64{attempted.ID}, []string{child.Digest, digestOf("unknown")}},
		{"child only in another repository", repo.ID, nil, []string{siblingChild.Digest}},
		{"unknown repository", sibling.ID + 1000, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := f.newManifest(repo, "broken: "+c.name)
			m.RepositoryID = c.repoID
			err := s.PutManifest(t.Context(), m, c.blobIDs, c.children, "broken")
			wantErr(t, "PutManifest", err, db.ErrReferenceMissing)

			// nothing of it was stored
			_, err = s.GetManifest(t.Context(), c.repoID, m.Digest)
			wantErr(t, "GetManifest after failed PutManifest", err, db.ErrNotFound)
			_, err = s.GetTaggedManifest(t.Context(), c.repoID, "broken")
			wantErr(t, "GetTaggedManifest after failed PutManifest", err, db.ErrNotFound)
		})
	}
	// no reference of the failed attempts survived
	if err := s.UnmountBlob(t.Context(), attempted.ID, repo.ID); err != nil {
		t.Fatalf("UnmountBlob: %v", err)
	}
}

func testTagMove(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	m1 := f.manifest(t, repo, "v1", nil, nil, "latest")
	m2 := f.manifest(t, repo, "v2", nil, nil, "latest")

	got, err := s.GetTaggedManifest(ctx, repo.ID, "latest")
	if err != nil {
		t.Fatalf("GetTaggedManifest: %v", err)
	}
	wantEqual(t, "tag after move", got, m2)
	tags, err := s.ListTags(ctx, repo.ID, "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	wantEqual(t, "ListTags after move", tags, []string{"latest"})
	// the previous manifest stays, untagged
	got, err = s.GetManifest(ctx, repo.ID, m1.Digest)
	if err != nil {
		t.Fatalf("GetManifest(m1): %v", err)
	}
	wantEqual(t, "previous manifest", got, m1)

	// moving the tag back with a re-put of m1
	again := m1
	again.PushedAt = f.tick()
	if err := s.PutManifest(ctx, again, nil, nil, "latest"); err != nil {
		t.Fatalf("PutManifest(m1 again): %v", err)
	}
	got, err = s.GetTaggedManifest(ctx, repo.ID, "latest")
	if err != nil {
		t.Fatalf("GetTaggedManifest: %v", err)
	}
	wantEqual(t, "tag moved back", got, m1)
}

func testRePutManifest(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	b := f.blob(t, repo, "layer")
	child := f.manifest(t, repo, "child", nil, nil, "")
	m := f.manifest(t, repo, "parent", []models.Blob{b}, []string{child.Digest}, "v1")

	// Storing it again, even with other metadata and no references, only
	// adds the tag.
	again := m
	again.PushedAt = f.tick()
	again.LabelsJSON = `{"changed":"yes"}`
	if err := s.PutManifest(ctx, again, nil, nil, "v2"); err != nil {
		t.Fatalf("PutManifest(again): %v", err)
	}
	if err := s.PutManifest(ctx, again, []int64{b.ID}, []string{child.Digest}, ""); err != nil {
		t.Fatalf("PutManifest(again, no tag): %v", err)
	}
	for _, tag := range []string{"v1", "v2"} {
		got, err := s.GetTaggedManifest(ctx, repo.ID, tag)
		if err != nil {
			t.Fatalf("GetTaggedManifest(%s): %v", tag, err)
		}
		wantEqual(t, "manifest tagged "+tag, got, m)
	}

	// the references of the first put are still in place
	wantErr(t, "UnmountBlob of referenced blob", s.UnmountBlob(ctx, b.ID, repo.ID), db.ErrStillReferenced)
	wantErr(t, "DeleteManifest of referenced child", s.DeleteManifest(ctx, repo.ID, child.Digest), db.ErrStillReferenced)
}

func testDeleteManifest(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	b := f.blob(t, repo, "layer")
	m := f.manifest(t, repo, "doomed", []models.Blob{b}, nil, "a")
	if err := s.PutManifest(ctx, m, nil, nil, "b"); err != nil {
		t.Fatalf("PutManifest(tag b): %v", err)
	}
	keep := f.manifest(t, repo, "kept", []models.Blob{b}, nil, "c")

	if err := s.DeleteManifest(ctx, repo.ID, m.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	runErrCases(t, []errCase{
		{"get deleted", func(t *testing.T) error {
			_, err := s.GetManifest(t.Context(), repo.ID, m.Digest)
			return err
		}, db.ErrNotFound},
		{"get by deleted tag", func(t *testing.T) error {
			_, err := s.GetTaggedManifest(t.Context(), repo.ID, "a")
			return err
		}, db.ErrNotFound},
		{"delete deleted", func(t *testing.T) error {
			return s.DeleteManifest(t.Context(), repo.ID, m.Digest)
		}, db.ErrNotFound},
		{"delete unknown", func(t *testing.T) error {
			return s.DeleteManifest(t.Context(), repo.ID, digestOf("unknown"))
		}, db.ErrNotFound},
		{"delete deleted tag", func(t *testing.T) error {
			return s.DeleteTag(t.Context(), repo.ID, "b")
		}, db.ErrNotFound},
		// the other manifest still references the blob
		{"unmount blob", func(t *testing.T) error {
			return s.UnmountBlob(t.Context(), b.ID, repo.ID)
		}, db.ErrStillReferenced},
	})
	tags, err := s.ListTags(ctx, repo.ID, "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	wantEqual(t, "tags after DeleteManifest", tags, []string{"c"})
	got, err := s.GetTaggedManifest(ctx, repo.ID, "c")
	if err != nil {
		t.Fatalf("GetTaggedManifest(c): %v", err)
	}
	wantEqual(t, "kept manifest", got, keep)

	// deleting the last reference frees the blob
	if err := s.DeleteManifest(ctx, repo.ID, keep.Digest); err != nil {
		t.Fatalf("DeleteManifest(kept): %v", err)
	}
	if err := s.UnmountBlob(ctx, b.ID, repo.ID); err != nil {
		t.Fatalf("UnmountBlob after deleting all manifests: %v", err)
	}

	// a deleted manifest can be pushed again
	if err := s.MountBlob(ctx, b.ID, repo.ID); err != nil {
		t.Fatalf("MountBlob: %v", err)
	}
	if err := s.PutManifest(ctx, m, []int64{b.ID}, nil, "a"); err != nil {
		t.Fatalf("PutManifest after delete: %v", err)
	}
	got, err = s.GetTaggedManifest(ctx, repo.ID, "a")
	if err != nil {
		t.Fatalf("GetTaggedManifest after re-push: %v", err)
	}
	wantEqual(t, "re-pushed manifest", got, m)
}

func testDeleteManifestParent(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	sibling := f.repo(t, "library", "busybox")
	c1 := f.manifest(t, repo, "child 1", nil, nil, "")
	c2 := f.manifest(t, repo, "child 2", nil, nil, "")
	idx1 := f.manifest(t, repo, "index 1", nil, []string{c1.Digest, c2.Digest}, "")
	idx2 := f.manifest(t, repo, "index 2", nil, []string{c2.Digest}, "")
	// the same child in another repository is not referenced there
	c1Sibling := f.manifest(t, sibling, "child 1", nil, nil, "")

	steps := []struct {
		name   string
		repoID int64
		digest string
		want   error
	}{
		{"child of index 1", repo.ID, c1.Digest, db.ErrStillReferenced},
		{"child of both indexes", repo.ID, c2.Digest, db.ErrStillReferenced},
		{"same child in other repository", sibling.ID, c1Sibling.Digest, nil},
		{"index 1", repo.ID, idx1.Digest, nil},
		{"child 1 after its index", repo.ID, c1.Digest, nil},
		{"child 2 still in index 2", repo.ID, c2.Digest, db.ErrStillReferenced},
		{"index 2", repo.ID, idx2.Digest, nil},
		{"child 2 after both indexes", repo.ID, c2.Digest, nil},
	}
	for _, step := range steps {
		err := s.DeleteManifest(ctx, step.repoID, step.digest)
		wantErr(t, "DeleteManifest("+step.name+")", err, step.want)
		_, err = s.GetManifest(ctx, step.repoID, step.digest)
		if step.want == nil {
			wantErr(t, "GetManifest after deleting "+step.name, err, db.ErrNotFound)
		} else {
			wantErr(t, "GetManifest after refusing to delete "+step.name, err, nil)
		}
	}
}

func testRepositoryIsolation(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	r1 := f.repo(t, "library", "alpine")
	r2 := f.repo(t, "library", "busybox")
	m1 := f.manifest(t, r1, "same", nil, nil, "latest")
	m2 := f.manifest(t, r2, "same", nil, nil, "stable")

	if err := s.DeleteManifest(ctx, r1.ID, m1.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	got, err := s.GetManifest(ctx, r2.ID, m2.Digest)
	if err != nil {
		t.Fatalf("GetManifest in other repository: %v", err)
	}
	wantEqual(t, "manifest in other repository", got, m2)
	_, err = s.GetTaggedManifest(ctx, r2.ID, "latest")
	wantErr(t, "tag of other repository", err, db.ErrNotFound)
	tags, err := s.ListTags(ctx, r2.ID, "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	wantEqual(t, "tags of other repository", tags, []string{"stable"})
}

func testManifestsInStorage(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.accountIn(t, "copies", "tenant-c")
	repo := f.repo(t, "copies", "app")
	m1 := f.manifest(t, repo, "first", nil, nil, "")
	m2 := f.manifest(t, repo, "second", nil, nil, "v2")

	// Both lack their copy; the cutoff excludes younger manifests.
	got, err := s.ListManifestsNotInStorage(ctx, m2.PushedAt, 10)
	if err != nil {
		t.Fatalf("ListManifestsNotInStorage: %v", err)
	}
	wantEqual(t, "manifests pushed before the second", got, []db.ManifestCopy{{
		ManifestKey: db.ManifestKey{RepositoryID: repo.ID, Digest: m1.Digest},
		Storage:     models.StorageRef{AuthTenantID: "tenant-c", AccountName: "copies"},
		RepoName:    "app", Content: m1.Content,
	}})
	got, err = s.ListManifestsNotInStorage(ctx, m2.PushedAt.Add(time.Second), 1)
	if err != nil || len(got) != 1 || got[0].Digest != m1.Digest {
		t.Fatalf("ListManifestsNotInStorage(limit 1) = %+v, %v; want the oldest", got, err)
	}

	// Marking: a deleted manifest is reported as missing.
	if err := s.DeleteManifest(ctx, repo.ID, m2.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	keys := []db.ManifestKey{{RepositoryID: repo.ID, Digest: m1.Digest}, {RepositoryID: repo.ID, Digest: m2.Digest}}
	missing, err := s.MarkManifestsInStorage(ctx, keys)
	if err != nil {
		t.Fatalf("MarkManifestsInStorage: %v", err)
	}
	wantEqual(t, "missing", missing, keys[1:])
	got, err = s.ListManifestsNotInStorage(ctx, m2.PushedAt.Add(time.Hour), 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("after marking: %+v, %v; want none", got, err)
	}
	// Marking again changes nothing; marking nothing does nothing.
	if missing, err := s.MarkManifestsInStorage(ctx, keys[:1]); err != nil || len(missing) != 0 {
		t.Fatalf("marking again: %v, %v", missing, err)
	}
	if missing, err := s.MarkManifestsInStorage(ctx, nil); err != nil || len(missing) != 0 {
		t.Fatalf("marking nothing: %v, %v", missing, err)
	}
}

// testPutManifestEvents: the audit events of a push are stored with it, and
// not at all when the push fails.
func testPutManifestEvents(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "audited")
	repo := f.repo(t, "audited", "app")
	event := func(action string) models.AuditEvent {
		return models.AuditEvent{Time: f.tick(), Actor: "pusher", Action: action, Target: "audited/app", Outcome: "success"}
	}
	broken := f.newManifest(repo, "broken")
	err := s.PutManifest(ctx, broken, nil, []string{digestOf("missing child")}, "v0", event("manifest.push"))
	wantErr(t, "PutManifest with a missing child", err, db.ErrReferenceMissing)
	if got := listAudit(t, s, db.AuditFilter{Actor: "pusher"}); len(got) != 0 {
		t.Fatalf("a failed push stored its events: %+v", got)
	}
	m := f.newManifest(repo, "fine")
	if err := s.PutManifest(ctx, m, nil, nil, "v1", event("manifest.push"), event("tag.create")); err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	got := listAudit(t, s, db.AuditFilter{Actor: "pusher"})
	if len(got) != 2 || got[0].Action != "tag.create" || got[1].Action != "manifest.push" {
		t.Fatalf("events of the push: %+v", got)
	}
}
