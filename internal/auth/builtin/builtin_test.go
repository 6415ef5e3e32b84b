package builtin_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"keppel/internal/auth"
	"keppel/internal/auth/builtin"
	"keppel/internal/db"
	"keppel/internal/models"
)

// fakeUsers is an in-memory builtin.ManagementStore. If err is set, every
// call fails with it.
type fakeUsers struct {
	mu    sync.Mutex
	users map[string]models.User
	roles map[string]map[string]models.Role
	keys  map[string]models.APIKey
	puts  int
	err   error
}

var _ builtin.ManagementStore = (*fakeUsers)(nil)

func newFakeUsers() *fakeUsers {
	return &fakeUsers{users: map[string]models.User{}, roles: map[string]map[string]models.Role{}, keys: map[string]models.APIKey{}}
}

func (f *fakeUsers) GetUser(_ context.Context, name string) (models.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return models.User{}, f.err
	}
	u, ok := f.users[name]
	if !ok {
		return models.User{}, db.ErrNotFound
	}
	return u, nil
}

func (f *fakeUsers) PutUser(_ context.Context, u models.User) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if old, ok := f.users[u.Name]; ok {
		u.CreatedAt = old.CreatedAt
	}
	f.users[u.Name] = u
	f.puts++
	return nil
}

func (f *fakeUsers) ListUsers(context.Context) ([]models.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []models.User{}
	for _, u := range f.users {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b models.User) int { return strings.Compare(a.Name, b.Name) })
	return out, f.err
}

func (f *fakeUsers) DeleteUser(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[name]; !ok {
		return db.ErrNotFound
	}
	delete(f.users, name)
	delete(f.roles, name)
	for id, k := range f.keys {
		if k.Username == name {
			delete(f.keys, id)
		}
	}
	return nil
}

func (f *fakeUsers) SetRole(_ context.Context, username, tenantID string, role models.Role) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[username]; !ok {
		return db.ErrReferenceMissing
	}
	if f.roles[username] == nil {
		f.roles[username] = map[string]models.Role{}
	}
	if role == "" {
		delete(f.roles[username], tenantID)
	} else {
		f.roles[username][tenantID] = role
	}
	return nil
}

func (f *fakeUsers) ListRoles(_ context.Context, username string) (map[string]models.Role, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := map[string]models.Role{}
	maps.Copy(out, f.roles[username])
	return out, nil
}

func (f *fakeUsers) ListTenantMembers(_ context.Context, tenantID string) (map[string]models.Role, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]models.Role{}
	for user, roles := range f.roles {
		if r, ok := roles[tenantID]; ok {
			out[user] = r
		}
	}
	return out, nil
}

func (f *fakeUsers) CreateAPIKey(_ context.Context, k models.APIKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[k.Username]; !ok {
		return db.ErrReferenceMissing
	}
	if _, ok := f.keys[k.ID]; ok {
		return db.ErrConflict
	}
	f.keys[k.ID] = k
	return nil
}

func (f *fakeUsers) GetAPIKey(_ context.Context, id string) (models.APIKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return models.APIKey{}, f.err
	}
	k, ok := f.keys[id]
	if !ok {
		return models.APIKey{}, db.ErrNotFound
	}
	return k, nil
}

func (f *fakeUsers) ListAPIKeys(_ context.Context, username string) ([]models.APIKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []models.APIKey{}
	for _, k := range f.keys {
		if k.Username == username {
			out = append(out, k)
		}
	}
	return out, nil
}

func (f *fakeUsers) RevokeAPIKey(_ context.Context, username, id string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[id]
	if !ok || k.Username != username {
		return db.ErrNotFound
	}
	if k.RevokedAt == nil {
		k.RevokedAt = &at
	}
	f.keys[id] = k
	return nil
}

func (f *fakeUsers) get(t *testing.T, name string) models.User {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[name]
	if !ok {
		t.Fatalf("user %s does not exist", name)
	}
	return u
}

// checkHash asserts that hash is a bcrypt hash of password and not the password itself.
func checkHash(t *testing.T, hash, password string) {
	t.Helper()
	if hash == password || strings.Contains(hash, password) {
		t.Fatalf("the stored hash contains the plain password")
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		t.Fatalf("stored hash %q is not bcrypt: %v", hash, err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil {
		t.Fatalf("stored hash does not match the password: %v", err)
	}
}

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newFakeUsers()
	if err := builtin.SetPassword(ctx, users, "admin", "admin-secret", true, now); err != nil {
		t.Fatal(err)
	}
	if err := builtin.SetPassword(ctx, users, "alice", "alice-secret", false, now); err != nil {
		t.Fatal(err)
	}
	if err := builtin.SetPassword(ctx, users, "empty", "", false, now); err != nil {
		t.Fatal(err)
	}
	if err := users.SetRole(ctx, "alice", "tenant1", models.RolePusher); err != nil {
		t.Fatal(err)
	}
	if err := users.SetRole(ctx, "alice", "tenant2", models.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	d := builtin.New(users)
	alice := auth.Identity{Username: "alice", Roles: map[string]models.Role{"tenant1": models.RolePusher, "tenant2": models.RoleAdmin}}

	tests := []struct {
		name               string
		username, password string
		want               auth.Identity
		wantErr            error
	}{
		{"admin", "admin", "admin-secret", auth.Identity{Username: "admin", IsAdmin: true, Roles: map[string]models.Role{}}, nil},
		{"non-admin with roles", "alice", "alice-secret", alice, nil},
		{"user with empty password", "empty", "", auth.Identity{Username: "empty", Roles: map[string]models.Role{}}, nil},
		{"wrong password", "alice", "admin-secret", auth.Identity{}, auth.ErrBadCredentials},
		{"password of another user", "admin", "alice-secret", auth.Identity{}, auth.ErrBadCredentials},
		{"empty password", "alice", "", auth.Identity{}, auth.ErrBadCredentials},
		{"password with a suffix", "alice", "alice-secret ", auth.Identity{}, auth.ErrBadCredentials},
		{"unknown user", "bob", "alice-secret", auth.Identity{}, auth.ErrBadCredentials},
		{"empty user name", "", "", auth.Identity{}, auth.ErrBadCredentials},
		{"user name in another case", "Alice", "alice-secret", auth.Identity{}, auth.ErrBadCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := d.Authenticate(ctx, tc.username, tc.password)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if got.Username != tc.want.Username || got.IsAdmin != tc.want.IsAdmin || !maps.Equal(got.Roles, tc.want.Roles) {
				t.Errorf("identity = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAuthenticateStoreError(t *testing.T) {
	t.Parallel()
	broken := errors.New("database on fire")
	users := newFakeUsers()
	users.err = broken
	_, err := builtin.New(users).Authenticate(context.Background(), "admin", "x")
	if err == nil {
		t.Fatal("Authenticate succeeded with a broken store")
	}
	// A broken store is not a wrong password: the caller must answer 5xx, not 401.
	if errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("store error reported as bad credentials: %v", err)
	}
	if !errors.Is(err, broken) {
		t.Errorf("error %v does not wrap the store error", err)
	}
}

func TestSetPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newFakeUsers()
	if err := builtin.SetPassword(ctx, users, "alice", "first", false, now); err != nil {
		t.Fatal(err)
	}
	u := users.get(t, "alice")
	checkHash(t, u.PasswordHash, "first")
	if u.IsAdmin || !u.CreatedAt.Equal(now) {
		t.Errorf("user = %+v", u)
	}
	// Changing the password and the admin flag.
	if err := builtin.SetPassword(ctx, users, "alice", "second", true, now); err != nil {
		t.Fatal(err)
	}
	u = users.get(t, "alice")
	checkHash(t, u.PasswordHash, "second")
	if !u.IsAdmin {
		t.Error("admin flag not updated")
	}
	d := builtin.New(users)
	if _, err := d.Authenticate(ctx, "alice", "first"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("the old password still works (err %v)", err)
	}
	if id, err := d.Authenticate(ctx, "alice", "second"); err != nil || !id.IsAdmin {
		t.Errorf("the new password does not work: %+v, %v", id, err)
	}

	// Salted: the same password gives different hashes.
	_ = builtin.SetPassword(ctx, users, "bob", "second", false, now)
	if users.get(t, "bob").PasswordHash == users.get(t, "alice").PasswordHash {
		t.Error("two users with the same password have the same hash")
	}
}

func TestEnsureAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("generated password", func(t *testing.T) {
		t.Parallel()
		users := newFakeUsers()
		generated, err := builtin.EnsureAdmin(ctx, users, "", now)
		if err != nil {
			t.Fatal(err)
		}
		if len(generated) < 16 {
			t.Fatalf("generated password %q is too short", generated)
		}
		admin := users.get(t, builtin.AdminUsername)
		if !admin.IsAdmin {
			t.Error("the admin user is not an admin")
		}
		checkHash(t, admin.PasswordHash, generated)
		if id, err := builtin.New(users).Authenticate(ctx, "admin", generated); err != nil || !id.IsAdmin {
			t.Errorf("cannot log in with the generated password: %+v, %v", id, err)
		}

		// The second start keeps the admin as it is.
		again, err := builtin.EnsureAdmin(ctx, users, "", now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if again != "" {
			t.Errorf("second call generated another password %q", again)
		}
		after := users.get(t, builtin.AdminUsername)
		if after.PasswordHash != admin.PasswordHash || !after.CreatedAt.Equal(now) {
			t.Error("second call changed the admin user")
		}
		if users.puts != 1 {
			t.Errorf("%d writes to the store, want 1", users.puts)
		}
	})

	t.Run("generated passwords differ between stores", func(t *testing.T) {
		t.Parallel()
		a, errA := builtin.EnsureAdmin(ctx, newFakeUsers(), "", now)
		b, errB := builtin.EnsureAdmin(ctx, newFakeUsers(), "", now)
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if a == b {
			t.Errorf("two generated passwords are both %q", a)
		}
	})

	t.Run("explicit password is set every time", func(t *testing.T) {
		t.Parallel()
		users := newFakeUsers()
		for i, password := range []string{"first-password", "first-password", "second-password"} {
			generated, err := builtin.EnsureAdmin(ctx, users, password, now)
			if err != nil {
				t.Fatal(err)
			}
			if generated != "" {
				t.Errorf("call %d: a password was generated although one was given", i)
			}
			admin := users.get(t, builtin.AdminUsername)
			checkHash(t, admin.PasswordHash, password)
			if !admin.IsAdmin {
				t.Errorf("call %d: admin flag not set", i)
			}
		}
		if _, err := builtin.New(users).Authenticate(ctx, "admin", "first-password"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Errorf("the replaced password still works (err %v)", err)
		}
	})

	t.Run("explicit password replaces a generated one", func(t *testing.T) {
		t.Parallel()
		users := newFakeUsers()
		generated, err := builtin.EnsureAdmin(ctx, users, "", now)
		if err != nil || generated == "" {
			t.Fatal(generated, err)
		}
		if _, err := builtin.EnsureAdmin(ctx, users, "chosen", now); err != nil {
			t.Fatal(err)
		}
		checkHash(t, users.get(t, builtin.AdminUsername).PasswordHash, "chosen")
	})

	t.Run("explicit password makes an existing user admin", func(t *testing.T) {
		t.Parallel()
		users := newFakeUsers()
		if err := builtin.SetPassword(ctx, users, builtin.AdminUsername, "old", false, now); err != nil {
			t.Fatal(err)
		}
		if _, err := builtin.EnsureAdmin(ctx, users, "new", now); err != nil {
			t.Fatal(err)
		}
		if !users.get(t, builtin.AdminUsername).IsAdmin {
			t.Error("admin flag not set")
		}
	})

	t.Run("store errors are returned", func(t *testing.T) {
		t.Parallel()
		broken := errors.New("database on fire")
		for _, password := range []string{"", "chosen"} {
			users := newFakeUsers()
			users.err = broken
			if _, err := builtin.EnsureAdmin(ctx, users, password, now); !errors.Is(err, broken) {
				t.Errorf("password %q: error = %v, want the store error", password, err)
			}
		}
	})
}
