package dbtest

import (
	"errors"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

func (f *fixture) user(t *testing.T, name string) models.User {
	t.Helper()
	u := models.User{Name: name, PasswordHash: "hash-of-" + name, CreatedAt: f.tick()}
	if err := f.s.PutUser(t.Context(), u); err != nil {
		t.Fatalf("PutUser(%q): %v", name, err)
	}
	return u
}

func (f *fixture) setRole(t *testing.T, user, tenant string, role models.Role) {
	t.Helper()
	if err := f.s.SetRole(t.Context(), user, tenant, role); err != nil {
		t.Fatalf("SetRole(%q, %q, %q): %v", user, tenant, role, err)
	}
}

func wantRoles(t *testing.T, s db.Store, user string, want map[string]models.Role) {
	t.Helper()
	got, err := s.ListRoles(t.Context(), user)
	if err != nil {
		t.Fatalf("ListRoles(%q): %v", user, err)
	}
	wantEqual(t, "ListRoles("+user+")", got, want)
}

func wantMembers(t *testing.T, s db.Store, tenant string, want map[string]models.Role) {
	t.Helper()
	got, err := s.ListTenantMembers(t.Context(), tenant)
	if err != nil {
		t.Fatalf("ListTenantMembers(%q): %v", tenant, err)
	}
	wantEqual(t, "ListTenantMembers("+tenant+")", got, want)
}

func testUserAdministration(t *testing.T, s db.Store) {
	ctx := t.Context()
	list, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("ListUsers on empty store: %v", err)
	}
	wantEqual(t, "ListUsers on empty store", list, []models.User{})

	f := newFixture(s)
	carol := f.user(t, "carol")
	alice := f.user(t, "alice")
	bob := f.user(t, "Bob")
	list, err = s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	wantEqual(t, "ListUsers", list, []models.User{bob, alice, carol})

	f.setRole(t, "alice", "t1", models.RoleAdmin)
	f.setRole(t, "carol", "t1", models.RoleViewer)
	key := models.APIKey{ID: "k1", Username: "alice", Name: "ci", SecretHash: "h", CreatedAt: f.tick()}
	if err := s.CreateAPIKey(ctx, key); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}

	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	runErrCases(t, []errCase{
		{"get deleted", func(t *testing.T) error {
			_, err := s.GetUser(t.Context(), "alice")
			return err
		}, db.ErrNotFound},
		{"delete deleted", func(t *testing.T) error {
			return s.DeleteUser(t.Context(), "alice")
		}, db.ErrNotFound},
		{"delete other case", func(t *testing.T) error {
			return s.DeleteUser(t.Context(), "bob")
		}, db.ErrNotFound},
		{"API key of deleted", func(t *testing.T) error {
			_, err := s.GetAPIKey(t.Context(), "k1")
			return err
		}, db.ErrNotFound},
	})
	wantMembers(t, s, "t1", map[string]models.Role{"carol": models.RoleViewer})
	list, err = s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	wantEqual(t, "ListUsers after delete", list, []models.User{bob, carol})

	// a new user of the same name inherits nothing
	f.user(t, "alice")
	wantRoles(t, s, "alice", map[string]models.Role{})
	keys, err := s.ListAPIKeys(ctx, "alice")
	if err != nil {
		t.Fatalf("ListAPIKeys: %v", err)
	}
	wantEqual(t, "API keys of recreated user", keys, []models.APIKey{})
}

func testRoles(t *testing.T, s db.Store) {
	f := newFixture(s)
	f.user(t, "alice")
	f.user(t, "bob")
	wantRoles(t, s, "alice", map[string]models.Role{})
	wantRoles(t, s, "unknown", map[string]models.Role{})
	wantMembers(t, s, "t1", map[string]models.Role{})

	f.setRole(t, "alice", "t1", models.RoleViewer)
	f.setRole(t, "alice", "t2", models.RoleAdmin)
	f.setRole(t, "bob", "t1", models.RolePusher)
	wantRoles(t, s, "alice", map[string]models.Role{"t1": models.RoleViewer, "t2": models.RoleAdmin})
	wantMembers(t, s, "t1", map[string]models.Role{"alice": models.RoleViewer, "bob": models.RolePusher})
	wantMembers(t, s, "t2", map[string]models.Role{"alice": models.RoleAdmin})

	// change, remove, remove again
	f.setRole(t, "alice", "t1", models.RoleAdmin)
	wantMembers(t, s, "t1", map[string]models.Role{"alice": models.RoleAdmin, "bob": models.RolePusher})
	f.setRole(t, "bob", "t1", "")
	f.setRole(t, "bob", "t1", "")
	f.setRole(t, "bob", "t3", "")
	wantMembers(t, s, "t1", map[string]models.Role{"alice": models.RoleAdmin})
	wantRoles(t, s, "bob", map[string]models.Role{})

	runErrCases(t, []errCase{
		{"unknown user", func(t *testing.T) error {
			return s.SetRole(t.Context(), "unknown", "t1", models.RoleViewer)
		}, db.ErrReferenceMissing},
		{"remove role of unknown user", func(t *testing.T) error {
			return s.SetRole(t.Context(), "unknown", "t1", "")
		}, db.ErrReferenceMissing},
		{"user name in other case", func(t *testing.T) error {
			return s.SetRole(t.Context(), "Alice", "t1", models.RoleViewer)
		}, db.ErrReferenceMissing},
	})
	for _, bad := range []models.Role{"owner", "Admin", " admin"} {
		err := s.SetRole(t.Context(), "alice", "t1", bad)
		if err == nil {
			t.Fatalf("SetRole(%q) succeeded", bad)
		}
		for _, sentinel := range []error{db.ErrNotFound, db.ErrConflict, db.ErrStillReferenced, db.ErrReferenceMissing} {
			if errors.Is(err, sentinel) {
				t.Fatalf("SetRole(%q): error %q matches %v", bad, err, sentinel)
			}
		}
	}
	wantRoles(t, s, "alice", map[string]models.Role{"t1": models.RoleAdmin, "t2": models.RoleAdmin})
	wantMembers(t, s, "unknown", map[string]models.Role{})
}

func testAPIKeys(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.user(t, "alice")
	f.user(t, "bob")

	expires := ts(1_900_000_000)
	k1 := models.APIKey{ID: "k1", Username: "alice", Name: "laptop", SecretHash: "$argon2id$one", CreatedAt: f.tick(), ExpiresAt: &expires}
	k2 := models.APIKey{ID: "k2", Username: "alice", Name: "ci", SecretHash: "$argon2id$two", CreatedAt: f.tick()}
	// the same second as k2: the higher ID is listed first
	k0 := models.APIKey{ID: "k0", Username: "alice", SecretHash: "$argon2id$zero", CreatedAt: k2.CreatedAt}
	kb := models.APIKey{ID: "kb", Username: "bob", Name: "bob's", SecretHash: "$argon2id$bob", CreatedAt: f.tick()}
	for _, k := range []models.APIKey{k1, k2, k0, kb} {
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatalf("CreateAPIKey(%s): %v", k.ID, err)
		}
	}
	got, err := s.GetAPIKey(ctx, "k1")
	if err != nil {
		t.Fatalf("GetAPIKey: %v", err)
	}
	wantEqual(t, "GetAPIKey", got, k1)
	keys, err := s.ListAPIKeys(ctx, "alice")
	if err != nil {
		t.Fatalf("ListAPIKeys: %v", err)
	}
	wantEqual(t, "ListAPIKeys", keys, []models.APIKey{k2, k0, k1})

	// a zero creation time means now
	before := time.Now().Add(-time.Second)
	if err := s.CreateAPIKey(ctx, models.APIKey{ID: "now", Username: "bob", SecretHash: "h"}); err != nil {
		t.Fatalf("CreateAPIKey(now): %v", err)
	}
	got, err = s.GetAPIKey(ctx, "now")
	if err != nil {
		t.Fatalf("GetAPIKey(now): %v", err)
	}
	if got.CreatedAt.Before(before.Truncate(time.Second)) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("CreatedAt = %v, want about now", got.CreatedAt)
	}

	runErrCases(t, []errCase{
		{"duplicate ID", func(t *testing.T) error {
			return s.CreateAPIKey(t.Context(), models.APIKey{ID: "k1", Username: "bob", SecretHash: "x", CreatedAt: f.tick()})
		}, db.ErrConflict},
		{"unknown user", func(t *testing.T) error {
			return s.CreateAPIKey(t.Context(), models.APIKey{ID: "k9", Username: "unknown", SecretHash: "x", CreatedAt: f.tick()})
		}, db.ErrReferenceMissing},
		{"get unknown", func(t *testing.T) error {
			_, err := s.GetAPIKey(t.Context(), "k9")
			return err
		}, db.ErrNotFound},
		{"revoke another user's key", func(t *testing.T) error {
			return s.RevokeAPIKey(t.Context(), "bob", "k1", f.tick())
		}, db.ErrNotFound},
		{"revoke unknown key", func(t *testing.T) error {
			return s.RevokeAPIKey(t.Context(), "alice", "k9", f.tick())
		}, db.ErrNotFound},
	})
	got, err = s.GetAPIKey(ctx, "k1")
	if err != nil {
		t.Fatalf("GetAPIKey: %v", err)
	}
	wantEqual(t, "key after failed calls", got, k1)

	// revoking keeps the key, and the first revocation time
	revoked := f.tick()
	if err := s.RevokeAPIKey(ctx, "alice", "k1", revoked); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	if err := s.RevokeAPIKey(ctx, "alice", "k1", f.tick()); err != nil {
		t.Fatalf("RevokeAPIKey again: %v", err)
	}
	want := k1
	want.RevokedAt = &revoked
	got, err = s.GetAPIKey(ctx, "k1")
	if err != nil {
		t.Fatalf("GetAPIKey(revoked): %v", err)
	}
	wantEqual(t, "revoked key", got, want)
	keys, err = s.ListAPIKeys(ctx, "alice")
	if err != nil {
		t.Fatalf("ListAPIKeys: %v", err)
	}
	wantEqual(t, "ListAPIKeys after revocation", keys, []models.APIKey{k2, k0, want})
	keys, err = s.ListAPIKeys(ctx, "unknown")
	if err != nil {
		t.Fatalf("ListAPIKeys(unknown): %v", err)
	}
	wantEqual(t, "ListAPIKeys(unknown)", keys, []models.APIKey{})
}
