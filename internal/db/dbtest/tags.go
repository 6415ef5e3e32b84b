package dbtest

import (
	"slices"
	"testing"

	"keppel/internal/db"
	"keppel/internal/models"
)

func testReferrers(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	sibling := f.repo(t, "library", "busybox")
	subject := f.manifest(t, repo, "subject", nil, nil, "latest")

	var referrers []models.Manifest
	for _, content := range []string{"signature", "sbom", "attestation"} {
		m := f.newManifest(repo, content)
		m.SubjectDigest = subject.Digest
		m.ArtifactType = "application/vnd.example." + content
		m.AnnotationsJSON = `{"kind":"` + content + `"}`
		if err := s.PutManifest(ctx, m, nil, nil, ""); err != nil {
			t.Fatalf("PutManifest(%s): %v", content, err)
		}
		referrers = append(referrers, m.Manifest)
	}
	slices.SortFunc(referrers, func(a, b models.Manifest) int {
		switch {
		case a.Digest < b.Digest:
			return -1
		case a.Digest > b.Digest:
			return 1
		}
		return 0
	})
	// a referrer of the same subject digest in another repository
	other := f.newManifest(sibling, "signature in sibling")
	other.SubjectDigest = subject.Digest
	if err := s.PutManifest(ctx, other, nil, nil, ""); err != nil {
		t.Fatalf("PutManifest(other): %v", err)
	}
	// a referrer may arrive before its subject
	early := f.newManifest(repo, "early signature")
	early.SubjectDigest = digestOf("subject pushed later")
	if err := s.PutManifest(ctx, early, nil, nil, ""); err != nil {
		t.Fatalf("PutManifest(referrer without subject): %v", err)
	}

	cases := []struct {
		name    string
		repoID  int64
		subject string
		want    []models.Manifest
	}{
		{"all referrers in digest order", repo.ID, subject.Digest, referrers},
		{"other repository", sibling.ID, subject.Digest, []models.Manifest{other.Manifest}},
		{"subject not pushed yet", repo.ID, early.SubjectDigest, []models.Manifest{early.Manifest}},
		{"no referrers", repo.ID, referrers[0].Digest, []models.Manifest{}},
		{"unknown subject", repo.ID, digestOf("unknown"), []models.Manifest{}},
		{"empty subject", repo.ID, "", []models.Manifest{}},
		{"unknown repository", sibling.ID + 1000, subject.Digest, []models.Manifest{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.ListReferrers(t.Context(), c.repoID, c.subject)
			if err != nil {
				t.Fatalf("ListReferrers: %v", err)
			}
			if len(c.want) == 0 {
				if len(got) != 0 {
					t.Fatalf("ListReferrers: got %+v, want none", got)
				}
				return
			}
			wantEqual(t, "ListReferrers", got, c.want)
		})
	}

	// deleted referrers disappear
	if err := s.DeleteManifest(ctx, repo.ID, referrers[1].Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	got, err := s.ListReferrers(ctx, repo.ID, subject.Digest)
	if err != nil {
		t.Fatalf("ListReferrers: %v", err)
	}
	wantEqual(t, "ListReferrers after delete", got, []models.Manifest{referrers[0], referrers[2]})

	// deleting the subject leaves its referrers
	if err := s.DeleteManifest(ctx, repo.ID, subject.Digest); err != nil {
		t.Fatalf("DeleteManifest(subject): %v", err)
	}
	got, err = s.ListReferrers(ctx, repo.ID, subject.Digest)
	if err != nil {
		t.Fatalf("ListReferrers: %v", err)
	}
	wantEqual(t, "ListReferrers after subject deletion", got, []models.Manifest{referrers[0], referrers[2]})
}

func testTags(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	m := f.manifest(t, repo, "manifest", nil, nil, "v1")
	if err := s.PutManifest(ctx, m, nil, nil, "v2"); err != nil {
		t.Fatalf("PutManifest(v2): %v", err)
	}

	tags, err := s.ListTags(ctx, repo.ID+1000, "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListTags(unknown repository): %v", err)
	}
	if len(tags) != 0 {
		t.Fatalf("ListTags(unknown repository): %q", tags)
	}

	runErrCases(t, []errCase{
		{"delete", func(t *testing.T) error {
			return s.DeleteTag(t.Context(), repo.ID, "v1")
		}, nil},
		{"resolve deleted", func(t *testing.T) error {
			_, err := s.GetTaggedManifest(t.Context(), repo.ID, "v1")
			return err
		}, db.ErrNotFound},
		{"delete deleted", func(t *testing.T) error {
			return s.DeleteTag(t.Context(), repo.ID, "v1")
		}, db.ErrNotFound},
		{"delete unknown", func(t *testing.T) error {
			return s.DeleteTag(t.Context(), repo.ID, "unknown")
		}, db.ErrNotFound},
		{"delete in wrong repository", func(t *testing.T) error {
			return s.DeleteTag(t.Context(), repo.ID+1000, "v2")
		}, db.ErrNotFound},
	})

	// the manifest and its other tag remain
	got, err := s.GetTaggedManifest(ctx, repo.ID, "v2")
	if err != nil {
		t.Fatalf("GetTaggedManifest(v2): %v", err)
	}
	wantEqual(t, "manifest after tag deletion", got, m)
	got, err = s.GetManifest(ctx, repo.ID, m.Digest)
	if err != nil {
		t.Fatalf("GetManifest: %v", err)
	}
	wantEqual(t, "manifest after tag deletion", got, m)
}

func testTagPagination(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	sibling := f.repo(t, "library", "busybox")
	f.manifest(t, sibling, "sibling", nil, nil, "sibling-tag")

	// bytewise order: uppercase before lowercase, '-' < '.' < digits < '_'
	want := []string{"B", "Latest", "a", "a-b", "a.b", "a0", "a_b", "latest", "v1", "v1.0", "v10", "v2"}
	if !slices.IsSorted(want) {
		t.Fatal("test bug: want is not sorted")
	}
	m1 := f.manifest(t, repo, "m1", nil, nil, "")
	m2 := f.manifest(t, repo, "m2", nil, nil, "")
	for i, j := range []int{7, 3, 11, 0, 9, 5, 1, 10, 2, 8, 4, 6} {
		m := m1
		if i%2 == 1 {
			m = m2
		}
		if err := s.PutManifest(ctx, m, nil, nil, want[j]); err != nil {
			t.Fatalf("PutManifest(tag %q): %v", want[j], err)
		}
	}

	cases := []struct {
		name  string
		after string
		limit int
		want  []string
	}{
		{"everything", "", db.NoLimit, want},
		{"limit", "", 4, want[:4]},
		{"limit zero", "", 0, nil},
		{"limit beyond end", "", 100, want},
		{"after uppercase", "Latest", 2, []string{"a", "a-b"}},
		{"after existing", "a-b", 3, []string{"a.b", "a0", "a_b"}},
		{"after missing", "a1", 2, []string{"a_b", "latest"}},
		{"after prefix", "v1", db.NoLimit, []string{"v1.0", "v10", "v2"}},
		{"after last", "v2", db.NoLimit, nil},
		{"after everything", "zzz", 5, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.ListTags(t.Context(), repo.ID, c.after, c.limit)
			if err != nil {
				t.Fatalf("ListTags(%q, %d): %v", c.after, c.limit, err)
			}
			if len(c.want) == 0 {
				if len(got) != 0 {
					t.Fatalf("ListTags(%q, %d): got %q, want none", c.after, c.limit, got)
				}
				return
			}
			wantEqual(t, "ListTags", got, c.want)
		})
	}

	var (
		paged []string
		after string
	)
	for range len(want) {
		page, err := s.ListTags(ctx, repo.ID, after, 5)
		if err != nil {
			t.Fatalf("ListTags(%q, 5): %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1]
	}
	wantEqual(t, "paged ListTags", paged, want)
}
