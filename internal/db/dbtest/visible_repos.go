package dbtest

import (
	"testing"

	"keppel/internal/db"
	"keppel/internal/models"
)

func testRepositoriesOfTenants(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	// f.account creates the account in tenant "tenant-<name>".
	f.account(t, "alpha")
	f.account(t, "beta")
	if err := s.CreateAccount(ctx, models.Account{Name: "gamma", AuthTenantID: "tenant-alpha", CreatedAt: f.tick()}); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{{"alpha", "a"}, {"alpha", "b"}, {"beta", "a"}, {"gamma", "z"}, {"gamma", "a/b"}} {
		f.repo(t, r[0], r[1])
	}
	names := func(repos []models.Repository) []string {
		out := []string{}
		for _, r := range repos {
			out = append(out, r.FullName())
		}
		return out
	}
	cases := []struct {
		tenants []string
		after   string
		limit   int
		want    []string
	}{
		{[]string{"tenant-alpha"}, "", db.NoLimit, []string{"alpha/a", "alpha/b", "gamma/a/b", "gamma/z"}},
		{[]string{"tenant-alpha"}, "alpha/b", 1, []string{"gamma/a/b"}},
		{[]string{"tenant-beta", "tenant-beta"}, "", db.NoLimit, []string{"beta/a"}},
		{[]string{"tenant-alpha", "tenant-beta"}, "alpha/a", 2, []string{"alpha/b", "beta/a"}},
		{[]string{"tenant-nobody"}, "", db.NoLimit, []string{}},
		{nil, "", db.NoLimit, []string{}},
	}
	for _, c := range cases {
		got, err := s.ListRepositoriesOfTenants(ctx, c.tenants, c.after, c.limit)
		if err != nil {
			t.Fatalf("ListRepositoriesOfTenants(%v): %v", c.tenants, err)
		}
		wantEqual(t, "ListRepositoriesOfTenants", names(got), c.want)
	}
}
