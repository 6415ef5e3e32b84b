package builtin_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"keppel/internal/auth"
	"keppel/internal/auth/builtin"
	"keppel/internal/db"
	"keppel/internal/models"
)

// TestRolesAreReadEachTime: roles come from the store on every check, also
// when the password check itself is answered from the cache.
func TestRolesAreReadEachTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newFakeUsers()
	if err := builtin.SetPassword(ctx, users, "alice", "alice-password", false, now); err != nil {
		t.Fatal(err)
	}
	d := builtin.New(users)
	steps := []struct {
		tenant string
		role   models.Role
		want   map[string]models.Role
	}{
		{"", "", map[string]models.Role{}},
		{"tenant1", models.RoleViewer, map[string]models.Role{"tenant1": models.RoleViewer}},
		{"tenant1", models.RoleAdmin, map[string]models.Role{"tenant1": models.RoleAdmin}},
		{"tenant2", models.RolePusher, map[string]models.Role{"tenant1": models.RoleAdmin, "tenant2": models.RolePusher}},
		{"tenant1", "", map[string]models.Role{"tenant2": models.RolePusher}},
	}
	for i, step := range steps {
		if step.tenant != "" {
			if err := d.SetRole(ctx, "alice", step.tenant, step.role); err != nil {
				t.Fatal(err)
			}
		}
		id, err := d.Authenticate(ctx, "alice", "alice-password")
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if !maps.Equal(id.Roles, step.want) {
			t.Errorf("step %d: roles = %v, want %v", i, id.Roles, step.want)
		}
	}
}

func TestRoleLookupError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newFakeUsers()
	if err := builtin.SetPassword(ctx, users, "alice", "alice-password", false, now); err != nil {
		t.Fatal(err)
	}
	d := builtin.New(users)
	if _, err := d.Authenticate(ctx, "alice", "alice-password"); err != nil {
		t.Fatal(err)
	}
	broken := errors.New("database on fire")
	users.mu.Lock()
	users.err = broken
	users.mu.Unlock()
	// GetUser fails first here; either way, a store error is never "wrong password".
	if _, err := d.Authenticate(ctx, "alice", "alice-password"); !errors.Is(err, broken) || errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("error = %v, want the store error", err)
	}
}

func TestPutUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newFakeUsers()
	d := builtin.New(users, builtin.WithClock(func() time.Time { return now }))

	if _, err := d.PutUser(ctx, "alice", "", false); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("creating without a password: %v, want ErrNotFound", err)
	}
	created, err := d.PutUser(ctx, "alice", "first-password", false)
	if err != nil || !created {
		t.Fatalf("create: %v, %v", created, err)
	}
	u := users.get(t, "alice")
	checkHash(t, u.PasswordHash, "first-password")
	if u.IsAdmin || !u.CreatedAt.Equal(now) {
		t.Errorf("created user = %+v", u)
	}
	// Without a password, only the admin flag changes.
	created, err = d.PutUser(ctx, "alice", "", true)
	if err != nil || created {
		t.Fatalf("update: %v, %v", created, err)
	}
	if v := users.get(t, "alice"); !v.IsAdmin || v.PasswordHash != u.PasswordHash {
		t.Errorf("updated user = %+v", v)
	}
	if _, err := d.PutUser(ctx, "alice", "second-password", true); err != nil {
		t.Fatal(err)
	}
	checkHash(t, users.get(t, "alice").PasswordHash, "second-password")
	if id, err := d.Authenticate(ctx, "alice", "second-password"); err != nil || !id.IsAdmin {
		t.Errorf("login with the new password: %+v, %v", id, err)
	}
}

func TestManageAPIKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newFakeUsers()
	clk := &clock{t: now}
	d := builtin.New(users, builtin.WithClock(clk.now))
	putUsers(t, users, "alice")

	if _, _, err := d.CreateAPIKey(ctx, "nobody", "ci", 0); !errors.Is(err, db.ErrReferenceMissing) {
		t.Errorf("key for an unknown user: %v", err)
	}
	k, plain, err := d.CreateAPIKey(ctx, "alice", "ci", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !apiKeyRx.MatchString(plain) || k.Name != "ci" || k.Username != "alice" || k.ExpiresAt == nil || !k.ExpiresAt.Equal(now.Add(48*time.Hour)) {
		t.Errorf("key = %+v, %q", k, plain)
	}
	if id, err := d.Authenticate(ctx, "alice", plain); err != nil || id.Username != "alice" {
		t.Fatalf("login with the new key: %+v, %v", id, err)
	}
	keys, err := d.ListAPIKeys(ctx, "alice")
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID {
		t.Errorf("keys = %+v, %v", keys, err)
	}
	if err := d.RevokeAPIKey(ctx, "bob", k.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("revoking another user's key: %v", err)
	}
	clk.set(now.Add(time.Hour))
	if err := d.RevokeAPIKey(ctx, "alice", k.ID); err != nil {
		t.Fatal(err)
	}
	users.mu.Lock()
	got := users.keys[k.ID].RevokedAt
	users.mu.Unlock()
	if got == nil || !got.Equal(now.Add(time.Hour)) {
		t.Errorf("revoked at %v", got)
	}
	if _, err := d.Authenticate(ctx, "alice", plain); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("login with a revoked key: %v", err)
	}
	// Deleting the user takes its keys with it.
	k2, plain2, err := d.CreateAPIKey(ctx, "alice", "other", 0)
	if err != nil || k2.ExpiresAt != nil {
		t.Fatal(k2, err)
	}
	if err := d.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate(ctx, "alice", plain2); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("login with the key of a deleted user: %v", err)
	}
}

// authOnly has only what authentication needs, not what management does.
type authOnly struct{ builtin.Store }

func TestManagementNeedsAManagementStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := builtin.New(authOnly{newFakeUsers()})
	checks := map[string]error{
		"ListUsers":         func() error { _, err := d.ListUsers(ctx); return err }(),
		"DeleteUser":        d.DeleteUser(ctx, "alice"),
		"SetRole":           d.SetRole(ctx, "alice", "t", models.RoleViewer),
		"ListTenantMembers": func() error { _, err := d.ListTenantMembers(ctx, "t"); return err }(),
		"CreateAPIKey":      func() error { _, _, err := d.CreateAPIKey(ctx, "alice", "ci", 0); return err }(),
		"ListAPIKeys":       func() error { _, err := d.ListAPIKeys(ctx, "alice"); return err }(),
		"RevokeAPIKey":      d.RevokeAPIKey(ctx, "alice", "000000000000"),
	}
	for name, err := range checks {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%s: %v, want errors.ErrUnsupported", name, err)
		}
	}
}

func TestTenantMembers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newFakeUsers()
	d := builtin.New(users)
	putUsers(t, users, "alice", "bob")
	if err := d.SetRole(ctx, "nobody", "t", models.RoleViewer); !errors.Is(err, db.ErrReferenceMissing) {
		t.Errorf("role for an unknown user: %v", err)
	}
	_ = d.SetRole(ctx, "alice", "t", models.RoleAdmin)
	_ = d.SetRole(ctx, "bob", "t", models.RoleViewer)
	_ = d.SetRole(ctx, "bob", "u", models.RolePusher)
	members, err := d.ListTenantMembers(ctx, "t")
	want := map[string]models.Role{"alice": models.RoleAdmin, "bob": models.RoleViewer}
	if err != nil || !maps.Equal(members, want) {
		t.Errorf("members = %v, %v; want %v", members, err, want)
	}
}
