package dbtest

import (
	"slices"
	"strings"
	"testing"

	"keppel/internal/db"
	"keppel/internal/models"
)

func testRepositoryStats(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	f.account(t, "other")
	empty := f.repo(t, "library", "empty")
	img := f.repo(t, "library", "img")
	// the same name in another account, with content, is not listed
	foreign := f.repo(t, "other", "img")
	f.manifest(t, foreign, "foreign", []models.Blob{f.blob(t, foreign, "foreign layer")}, nil, "x")

	shared := f.blob(t, img, "shared layer")   // referenced by two manifests
	config := f.blob(t, img, "config")         // by one
	only := f.blob(t, img, "layer of m2 only") // by one
	f.blob(t, img, "mounted, unreferenced")    // by none: not counted
	m1 := f.manifest(t, img, "m1", []models.Blob{shared, config}, nil, "latest")
	if err := s.PutManifest(ctx, m1, nil, nil, "v1"); err != nil {
		t.Fatalf("PutManifest(tag v1): %v", err)
	}
	m2 := f.manifest(t, img, "m2", []models.Blob{shared, only}, nil, "v2")
	idx := f.manifest(t, img, "index", nil, []string{m1.Digest, m2.Digest}, "")
	// a repository with nothing but an upload has empty statistics
	withUpload := f.repo(t, "library", "img2")
	if err := s.CreateUpload(ctx, models.Upload{RepositoryID: withUpload.ID, UUID: "u", StorageID: "s", DigestAlgorithm: "sha256", UpdatedAt: f.tick()}); err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}

	list, err := s.ListRepositoryStats(ctx, "library", "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListRepositoryStats: %v", err)
	}
	pushed := idx.PushedAt
	wantEqual(t, "ListRepositoryStats", list, []models.RepositoryStats{
		{Repository: empty},
		{
			Repository:    img,
			ManifestCount: 3,
			TagCount:      3,
			SizeBytes:     shared.SizeBytes + config.SizeBytes + only.SizeBytes,
			PushedAt:      &pushed,
		},
		{Repository: withUpload},
	})

	// deleting a manifest updates the statistics
	if err := s.DeleteManifest(ctx, img.ID, idx.Digest); err != nil {
		t.Fatalf("DeleteManifest(index): %v", err)
	}
	if err := s.DeleteManifest(ctx, img.ID, m2.Digest); err != nil {
		t.Fatalf("DeleteManifest(m2): %v", err)
	}
	list, err = s.ListRepositoryStats(ctx, "library", "empty", 1)
	if err != nil {
		t.Fatalf("ListRepositoryStats: %v", err)
	}
	pushed = m1.PushedAt
	wantEqual(t, "ListRepositoryStats after deletes", list, []models.RepositoryStats{{
		Repository:    img,
		ManifestCount: 1,
		TagCount:      2,
		SizeBytes:     shared.SizeBytes + config.SizeBytes,
		PushedAt:      &pushed,
	}})

	list, err = s.ListRepositoryStats(ctx, "unknown", "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListRepositoryStats(unknown account): %v", err)
	}
	if list == nil || len(list) != 0 {
		t.Fatalf("ListRepositoryStats(unknown account) = %#v, want an empty list", list)
	}
}

func testRepositoryStatsPagination(t *testing.T, s db.Store) {
	f := newFixture(s)
	f.account(t, "a")
	f.account(t, "a-b")
	// bytewise order of names within the account
	want := []string{"B", "a", "a-b", "a.b", "a/b", "a/b/c", "a0", "b"}
	for _, i := range []int{3, 7, 0, 5, 1, 6, 2, 4} {
		f.repo(t, "a", want[i])
	}
	f.repo(t, "a-b", "x") // another account
	cases := []struct {
		name  string
		after string
		limit int
		want  []string
	}{
		{"everything", "", db.NoLimit, want},
		{"limit", "", 2, want[:2]},
		{"limit zero", "", 0, nil},
		{"after first", "B", 3, want[1:4]},
		{"after prefix", "a/", db.NoLimit, want[4:]},
		{"after nested", "a/b", 1, want[5:6]},
		{"after last", "b", db.NoLimit, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list, err := s.ListRepositoryStats(t.Context(), "a", c.after, c.limit)
			if err != nil {
				t.Fatalf("ListRepositoryStats(%q, %d): %v", c.after, c.limit, err)
			}
			var names []string
			for _, st := range list {
				if st.AccountName != "a" {
					t.Fatalf("repository of account %q listed", st.AccountName)
				}
				names = append(names, st.Name)
			}
			wantEqual(t, "names", names, c.want)
		})
	}
	if !slices.IsSorted(want) {
		t.Fatal("test bug: want is not sorted")
	}
}

func testDeleteRepository(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	sibling := f.repo(t, "library", "busybox")
	b := f.blob(t, repo, "layer")
	if err := s.MountBlob(ctx, b.ID, sibling.ID); err != nil {
		t.Fatalf("MountBlob: %v", err)
	}
	child := f.manifest(t, repo, "child", []models.Blob{b}, nil, "")
	idx := f.manifest(t, repo, "index", nil, []string{child.Digest}, "latest")
	siblingManifest := f.manifest(t, sibling, "child", []models.Blob{b}, nil, "latest")
	u := models.Upload{RepositoryID: repo.ID, UUID: "u", StorageID: "s", DigestAlgorithm: "sha256", UpdatedAt: f.tick()}
	if err := s.CreateUpload(ctx, u); err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}

	runErrCases(t, []errCase{
		{"with manifests", func(t *testing.T) error {
			return s.DeleteRepository(t.Context(), repo.ID)
		}, db.ErrStillReferenced},
		{"unknown", func(t *testing.T) error {
			return s.DeleteRepository(t.Context(), sibling.ID+1000)
		}, db.ErrNotFound},
	})
	if err := s.DeleteManifest(ctx, repo.ID, idx.Digest); err != nil {
		t.Fatalf("DeleteManifest(index): %v", err)
	}
	wantErr(t, "DeleteRepository with one manifest left", s.DeleteRepository(ctx, repo.ID), db.ErrStillReferenced)
	if _, err := s.GetManifest(ctx, repo.ID, child.Digest); err != nil {
		t.Fatalf("GetManifest after refused DeleteRepository: %v", err)
	}
	if err := s.DeleteManifest(ctx, repo.ID, child.Digest); err != nil {
		t.Fatalf("DeleteManifest(child): %v", err)
	}
	usage, err := s.GetUsage(ctx, "tenant-library")
	if err != nil {
		t.Fatalf("GetUsage: %v", err)
	}

	// empty, but with a blob mount and an upload
	if err := s.DeleteRepository(ctx, repo.ID); err != nil {
		t.Fatalf("DeleteRepository: %v", err)
	}
	runErrCases(t, []errCase{
		{"get deleted", func(t *testing.T) error {
			_, err := s.GetRepository(t.Context(), "library", "alpine")
			return err
		}, db.ErrNotFound},
		{"upload of deleted", func(t *testing.T) error {
			_, err := s.GetUpload(t.Context(), repo.ID, u.UUID)
			return err
		}, db.ErrNotFound},
		{"blob in deleted", func(t *testing.T) error {
			_, err := s.GetBlobInRepository(t.Context(), repo.ID, b.Digest)
			return err
		}, db.ErrNotFound},
		{"delete deleted", func(t *testing.T) error {
			return s.DeleteRepository(t.Context(), repo.ID)
		}, db.ErrNotFound},
	})
	// the blob stays in the account and in the sibling, and counts
	if _, err := s.GetBlobInAccount(ctx, "library", b.Digest); err != nil {
		t.Fatalf("GetBlobInAccount: %v", err)
	}
	got, err := s.GetManifest(ctx, sibling.ID, siblingManifest.Digest)
	if err != nil {
		t.Fatalf("GetManifest(sibling): %v", err)
	}
	wantEqual(t, "sibling's manifest", got, siblingManifest)
	wantUsage(t, s, "tenant-library", usage.ManifestCount, usage.SizeBytes)

	// the name can be used again, with a new ID and nothing in it
	again := f.repo(t, "library", "alpine")
	if again.ID == repo.ID {
		t.Fatalf("recreated repository has the old ID %d", repo.ID)
	}
	tags, err := s.ListTags(ctx, again.ID, "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	wantEqual(t, "tags of recreated repository", len(tags), 0)
	if err := s.MountBlob(ctx, b.ID, again.ID); err != nil {
		t.Fatalf("MountBlob into recreated repository: %v", err)
	}
	list, err := s.ListRepositories(ctx, "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListRepositories: %v", err)
	}
	wantEqual(t, "repositories", fullNames(list), []string{"library/alpine", "library/busybox"})
}

func testManifestInfos(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	other := f.repo(t, "library", "other")
	var ms []models.ManifestWithContent
	for _, content := range []string{"one", "two", "three", "four"} {
		ms = append(ms, f.manifest(t, repo, content, nil, nil, ""))
	}
	f.manifest(t, other, "one", nil, nil, "elsewhere")
	slices.SortFunc(ms, func(a, b models.ManifestWithContent) int { return strings.Compare(a.Digest, b.Digest) })
	// tags on the first and third manifest, in scrambled order
	tagged := map[int][]string{0: {"z", "a", "m"}, 2: {"latest"}}
	want := make([]models.ManifestInfo, len(ms))
	for i, m := range ms {
		want[i] = models.ManifestInfo{Manifest: m.Manifest}
		for _, name := range tagged[i] {
			at := f.tick()
			m.PushedAt = at
			if err := s.PutManifest(ctx, m, nil, nil, name); err != nil {
				t.Fatalf("PutManifest(tag %s): %v", name, err)
			}
			want[i].Tags = append(want[i].Tags, models.Tag{RepositoryID: repo.ID, Name: name, Digest: m.Digest, PushedAt: at})
		}
		slices.SortFunc(want[i].Tags, func(a, b models.Tag) int { return strings.Compare(a.Name, b.Name) })
	}

	cases := []struct {
		name  string
		after string
		limit int
		want  []models.ManifestInfo
	}{
		{"everything", "", db.NoLimit, want},
		{"limit", "", 1, want[:1]},
		{"limit zero", "", 0, []models.ManifestInfo{}},
		{"after first", ms[0].Digest, 2, want[1:3]},
		{"after second", ms[1].Digest, db.NoLimit, want[2:]},
		{"after last", ms[3].Digest, db.NoLimit, []models.ManifestInfo{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.ListManifestInfos(t.Context(), repo.ID, c.after, c.limit)
			if err != nil {
				t.Fatalf("ListManifestInfos: %v", err)
			}
			wantEqual(t, "ListManifestInfos", got, c.want)
		})
	}
	got, err := s.ListManifestInfos(ctx, other.ID+1000, "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListManifestInfos(unknown repository): %v", err)
	}
	wantEqual(t, "ListManifestInfos(unknown repository)", got, []models.ManifestInfo{})
}

func testGetTag(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	other := f.repo(t, "library", "other")
	m1 := f.manifest(t, repo, "one", nil, nil, "latest")
	got, err := s.GetTag(ctx, repo.ID, "latest")
	if err != nil {
		t.Fatalf("GetTag: %v", err)
	}
	wantEqual(t, "GetTag", got, models.Tag{RepositoryID: repo.ID, Name: "latest", Digest: m1.Digest, PushedAt: m1.PushedAt})

	m2 := f.manifest(t, repo, "two", nil, nil, "latest")
	got, err = s.GetTag(ctx, repo.ID, "latest")
	if err != nil {
		t.Fatalf("GetTag after move: %v", err)
	}
	wantEqual(t, "GetTag after move", got, models.Tag{RepositoryID: repo.ID, Name: "latest", Digest: m2.Digest, PushedAt: m2.PushedAt})

	runErrCases(t, []errCase{
		{"unknown tag", func(t *testing.T) error {
			_, err := s.GetTag(t.Context(), repo.ID, "unknown")
			return err
		}, db.ErrNotFound},
		{"other repository", func(t *testing.T) error {
			_, err := s.GetTag(t.Context(), other.ID, "latest")
			return err
		}, db.ErrNotFound},
		{"other case", func(t *testing.T) error {
			_, err := s.GetTag(t.Context(), repo.ID, "Latest")
			return err
		}, db.ErrNotFound},
		{"deleted", func(t *testing.T) error {
			if err := s.DeleteTag(t.Context(), repo.ID, "latest"); err != nil {
				t.Fatalf("DeleteTag: %v", err)
			}
			_, err := s.GetTag(t.Context(), repo.ID, "latest")
			return err
		}, db.ErrNotFound},
	})
}
