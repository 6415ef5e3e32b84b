package dbtest

import (
	"fmt"
	"testing"

	"keppel/internal/db"
	"keppel/internal/models"
)

func testUpdateAccount(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	orig := f.accountIn(t, "library", "tenant1")
	f.accountIn(t, "other", "tenant1")

	changed := models.Account{
		Name:               "library",
		AuthTenantID:       "tenant1",
		IsDeleting:         true,
		RBACPoliciesJSON:   `[{"match_repository":".*","permissions":["anonymous_pull"]}]`,
		GCPoliciesJSON:     `[{"action":"delete"}]`,
		TagPoliciesJSON:    `[{"match_tag":".*"}]`,
		ValidationRule:     `{"required_labels":["a"]}`,
		PlatformFilterJSON: `[{"os":"linux"}]`,
		IsManaged:          true,
		IsProtected:        true,
		// the creation time cannot change
		CreatedAt: ts(1_000),
	}
	if err := s.UpdateAccount(ctx, changed); err != nil {
		t.Fatalf("UpdateAccount: %v", err)
	}
	got, err := s.GetAccount(ctx, "library")
	if err != nil {
		t.Fatalf("GetAccount: %v", err)
	}
	want := changed
	want.CreatedAt = orig.CreatedAt
	wantEqual(t, "account after UpdateAccount", got, want)

	// and back; an empty tenant is not checked
	back := orig
	back.AuthTenantID = ""
	if err := s.UpdateAccount(ctx, back); err != nil {
		t.Fatalf("UpdateAccount(back): %v", err)
	}
	got, err = s.GetAccount(ctx, "library")
	if err != nil {
		t.Fatalf("GetAccount: %v", err)
	}
	wantEqual(t, "account after second UpdateAccount", got, orig)

	runErrCases(t, []errCase{
		{"unknown account", func(t *testing.T) error {
			return s.UpdateAccount(t.Context(), models.Account{Name: "unknown", AuthTenantID: "tenant1"})
		}, db.ErrNotFound},
		{"other tenant", func(t *testing.T) error {
			return s.UpdateAccount(t.Context(), models.Account{Name: "library", AuthTenantID: "tenant2", IsDeleting: true})
		}, db.ErrConflict},
	})
	got, err = s.GetAccount(ctx, "library")
	if err != nil {
		t.Fatalf("GetAccount: %v", err)
	}
	wantEqual(t, "account after failed updates", got, orig)
	other, err := s.GetAccount(ctx, "other")
	if err != nil {
		t.Fatalf("GetAccount(other): %v", err)
	}
	if other.IsDeleting || other.IsManaged || other.RBACPoliciesJSON != "" {
		t.Fatalf("UpdateAccount changed another account: %+v", other)
	}
}

func testDeleteAccount(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.accountIn(t, "library", "tenant1")
	f.accountIn(t, "neighbour", "tenant1")
	f.accountIn(t, "empty", "tenant1")
	repo := f.repo(t, "library", "alpine")
	sibling := f.repo(t, "library", "busybox")
	b := f.blob(t, repo, "layer")
	m := f.manifest(t, repo, "manifest", []models.Blob{b}, nil, "latest")
	neighbourRepo := f.repo(t, "neighbour", "alpine")
	nb := f.blob(t, neighbourRepo, "layer")

	runErrCases(t, []errCase{
		{"unknown account", func(t *testing.T) error {
			return s.DeleteAccount(t.Context(), "unknown")
		}, db.ErrNotFound},
		{"account with repositories", func(t *testing.T) error {
			return s.DeleteAccount(t.Context(), "library")
		}, db.ErrStillReferenced},
	})

	// an account that never had anything
	if err := s.DeleteAccount(ctx, "empty"); err != nil {
		t.Fatalf("DeleteAccount(empty): %v", err)
	}
	_, err := s.GetAccount(ctx, "empty")
	wantErr(t, "GetAccount(empty) after delete", err, db.ErrNotFound)
	wantErr(t, "DeleteAccount(empty) again", s.DeleteAccount(ctx, "empty"), db.ErrNotFound)

	// emptied step by step; the blob stays in the account until the end
	if err := s.DeleteManifest(ctx, repo.ID, m.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	for _, r := range []models.Repository{repo, sibling} {
		wantErr(t, "DeleteAccount while "+r.Name+" remains", s.DeleteAccount(ctx, "library"), db.ErrStillReferenced)
		if err := s.DeleteRepository(ctx, r.ID); err != nil {
			t.Fatalf("DeleteRepository(%s): %v", r.Name, err)
		}
	}
	if _, err := s.GetBlobInAccount(ctx, "library", b.Digest); err != nil {
		t.Fatalf("GetBlobInAccount before DeleteAccount: %v", err)
	}
	if err := s.DeleteAccount(ctx, "library"); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	_, err = s.GetAccount(ctx, "library")
	wantErr(t, "GetAccount after delete", err, db.ErrNotFound)
	_, err = s.GetBlobInAccount(ctx, "library", b.Digest)
	wantErr(t, "GetBlobInAccount after DeleteAccount", err, db.ErrNotFound)

	// the neighbour's blob with the same digest is untouched
	got, err := s.GetBlobInRepository(ctx, neighbourRepo.ID, nb.Digest)
	if err != nil {
		t.Fatalf("GetBlobInRepository(neighbour): %v", err)
	}
	wantEqual(t, "neighbour's blob", got, nb)
	list, err := s.ListAccounts(ctx)
	if err != nil {
		t.Fatalf("ListAccounts: %v", err)
	}
	wantEqual(t, "accounts after deletes", accountNames(list), []string{"neighbour"})

	// the name is free again, and the new account starts empty
	f.accountIn(t, "library", "tenant2")
	again := f.repo(t, "library", "alpine")
	_, err = s.GetBlobInRepository(ctx, again.ID, b.Digest)
	wantErr(t, "blob in recreated account", err, db.ErrNotFound)
}

func testAccountsOfTenants(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	for _, a := range []struct{ name, tenant string }{
		{"z-one", "t1"}, {"a-one", "t1"}, {"m-two", "t2"}, {"b-two", "t2"}, {"c-three", "t3"},
	} {
		f.accountIn(t, a.name, a.tenant)
	}
	cases := []struct {
		name    string
		tenants []string
		want    []string
	}{
		{"nil", nil, nil},
		{"empty", []string{}, nil},
		{"one tenant", []string{"t1"}, []string{"a-one", "z-one"}},
		{"two tenants", []string{"t2", "t1"}, []string{"a-one", "b-two", "m-two", "z-one"}},
		{"duplicates", []string{"t3", "t3"}, []string{"c-three"}},
		{"unknown tenant", []string{"t4"}, nil},
		{"tenant id is not an account name", []string{"a-one"}, nil},
		{"tenant ids differ in case", []string{"T1"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list, err := s.ListAccountsOfTenants(t.Context(), c.tenants)
			if err != nil {
				t.Fatalf("ListAccountsOfTenants(%q): %v", c.tenants, err)
			}
			if list == nil {
				t.Fatalf("ListAccountsOfTenants(%q) returned nil, want an empty list", c.tenants)
			}
			wantEqual(t, "ListAccountsOfTenants", accountNames(list), c.want)
		})
	}

	// many tenants at once (more than fit into one statement's chunk)
	var many []string
	for i := range 1200 {
		many = append(many, fmt.Sprintf("x%04d", i))
	}
	many = append(many, "t3")
	list, err := s.ListAccountsOfTenants(ctx, many)
	if err != nil {
		t.Fatalf("ListAccountsOfTenants(many): %v", err)
	}
	wantEqual(t, "ListAccountsOfTenants(many)", accountNames(list), []string{"c-three"})
	list, err = s.ListAccountsOfTenants(ctx, append(many, "t2", "t1"))
	if err != nil {
		t.Fatalf("ListAccountsOfTenants(many): %v", err)
	}
	wantEqual(t, "ListAccountsOfTenants(many)", accountNames(list),
		[]string{"a-one", "b-two", "c-three", "m-two", "z-one"})

	// complete rows
	full, err := s.GetAccount(ctx, "b-two")
	if err != nil {
		t.Fatalf("GetAccount: %v", err)
	}
	list, err = s.ListAccountsOfTenants(ctx, []string{"t2"})
	if err != nil {
		t.Fatalf("ListAccountsOfTenants: %v", err)
	}
	wantEqual(t, "listed account", list[0], full)
}

func accountNames(list []models.Account) []string {
	var out []string
	for _, a := range list {
		out = append(out, a.Name)
	}
	return out
}
