package dbtest

import (
	"slices"
	"testing"

	"keppel/internal/db"
	"keppel/internal/models"
)

func testRepositories(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	f.account(t, "other")

	r, err := s.FindOrCreateRepository(ctx, "library", "alpine/edge")
	if err != nil {
		t.Fatalf("FindOrCreateRepository: %v", err)
	}
	if r.ID == 0 || r.AccountName != "library" || r.Name != "alpine/edge" {
		t.Fatalf("FindOrCreateRepository returned %+v", r)
	}
	wantEqual(t, "FullName", r.FullName(), "library/alpine/edge")

	again, err := s.FindOrCreateRepository(ctx, "library", "alpine/edge")
	if err != nil {
		t.Fatalf("FindOrCreateRepository again: %v", err)
	}
	wantEqual(t, "FindOrCreateRepository again", again, r)

	got, err := s.GetRepository(ctx, "library", "alpine/edge")
	if err != nil {
		t.Fatalf("GetRepository: %v", err)
	}
	wantEqual(t, "GetRepository", got, r)

	// same name in another account, and a name that is a prefix
	o := f.repo(t, "other", "alpine/edge")
	p := f.repo(t, "library", "alpine")
	if o.ID == r.ID || p.ID == r.ID || o.ID == p.ID {
		t.Fatalf("repositories share IDs: %d, %d, %d", r.ID, o.ID, p.ID)
	}

	runErrCases(t, []errCase{
		{"get unknown repository", func(t *testing.T) error {
			_, err := s.GetRepository(t.Context(), "library", "unknown")
			return err
		}, db.ErrNotFound},
		{"get in unknown account", func(t *testing.T) error {
			_, err := s.GetRepository(t.Context(), "unknown", "alpine/edge")
			return err
		}, db.ErrNotFound},
		{"get parent path", func(t *testing.T) error {
			_, err := s.GetRepository(t.Context(), "library", "alpine/")
			return err
		}, db.ErrNotFound},
		{"create in unknown account", func(t *testing.T) error {
			_, err := s.FindOrCreateRepository(t.Context(), "unknown", "alpine")
			return err
		}, db.ErrReferenceMissing},
	})

	_, err = s.GetRepository(ctx, "unknown", "alpine")
	wantErr(t, "repository of failed creation", err, db.ErrNotFound)
}

func testRepositoryPagination(t *testing.T, s db.Store) {
	ctx := t.Context()
	list, err := s.ListRepositories(ctx, "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListRepositories on empty store: %v", err)
	}
	if len(list) != 0 {
		t.Fatalf("ListRepositories on empty store: %+v", list)
	}

	f := newFixture(s)
	for _, a := range []string{"a", "a-b", "B"} {
		f.account(t, a)
	}
	// Full names in bytewise order. Note "a-b/…" < "a/…" because '-' < '/',
	// although account "a" < account "a-b": the order is on the full name.
	want := []string{
		"B/z",
		"a-b/x",
		"a/B",
		"a/a",
		"a/b",
		"a/b-c",
		"a/b.c",
		"a/b/c",
		"a/b/c/d",
		"a/b_c",
		"a/bc",
	}
	if !slices.IsSorted(want) {
		t.Fatal("test bug: want is not sorted")
	}
	// create in a scrambled order
	for _, i := range []int{5, 0, 9, 2, 7, 4, 10, 1, 8, 3, 6} {
		acc, name := splitFullName(want[i])
		f.repo(t, acc, name)
	}

	cases := []struct {
		name  string
		after string
		limit int
		want  []string
	}{
		{"everything", "", db.NoLimit, want},
		{"limit", "", 3, want[:3]},
		{"limit zero", "", 0, nil},
		{"limit beyond end", "", 100, want},
		{"after first", "B/z", db.NoLimit, want[1:]},
		{"after dash before slash", "a-b/x", 2, want[2:4]},
		{"after name between entries", "a/b+", 2, []string{"a/b-c", "a/b.c"}},
		{"after account prefix", "a", 1, []string{"a-b/x"}},
		{"after account with slash", "a/", 1, []string{"a/B"}},
		{"after nested path", "a/b/c", db.NoLimit, want[8:]},
		{"after last", "a/bc", db.NoLimit, nil},
		{"after everything", "z", 10, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list, err := s.ListRepositories(t.Context(), c.after, c.limit)
			if err != nil {
				t.Fatalf("ListRepositories(%q, %d): %v", c.after, c.limit, err)
			}
			wantEqual(t, "ListRepositories", fullNames(list), c.want)
		})
	}

	// paging through in steps of 2 returns every repository exactly once
	var (
		paged []string
		after string
	)
	for range len(want) {
		page, err := s.ListRepositories(ctx, after, 2)
		if err != nil {
			t.Fatalf("ListRepositories(%q, 2): %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, fullNames(page)...)
		after = page[len(page)-1].FullName()
	}
	wantEqual(t, "paged ListRepositories", paged, want)

	// returned rows are complete
	list, err = s.ListRepositories(ctx, "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListRepositories: %v", err)
	}
	for _, r := range list {
		got, err := s.GetRepository(ctx, r.AccountName, r.Name)
		if err != nil {
			t.Fatalf("GetRepository: %v", err)
		}
		wantEqual(t, "listed repository", r, got)
	}
}

func splitFullName(fullName string) (account, name string) {
	for i := range len(fullName) {
		if fullName[i] == '/' {
			return fullName[:i], fullName[i+1:]
		}
	}
	return fullName, ""
}

func fullNames(repos []models.Repository) []string {
	var out []string
	for _, r := range repos {
		out = append(out, r.FullName())
	}
	return out
}
