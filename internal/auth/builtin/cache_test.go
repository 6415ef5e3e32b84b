package builtin

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"keppel/internal/auth"
	"keppel/internal/db"
	"keppel/internal/models"
)

// cacheTestUsers is a minimal in-memory Store without roles and API keys.
type cacheTestUsers struct {
	mu    sync.Mutex
	users map[string]models.User
}

func (c *cacheTestUsers) GetUser(_ context.Context, name string) (models.User, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.users[name]
	if !ok {
		return models.User{}, db.ErrNotFound
	}
	return u, nil
}

func (c *cacheTestUsers) ListRoles(context.Context, string) (map[string]models.Role, error) {
	return map[string]models.Role{}, nil
}

func (c *cacheTestUsers) GetAPIKey(context.Context, string) (models.APIKey, error) {
	return models.APIKey{}, db.ErrNotFound
}

func (c *cacheTestUsers) PutUser(_ context.Context, u models.User) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users[u.Name] = u
	return nil
}

// TestVerificationCacheFollowsPasswordChanges: a remembered successful check
// must not outlive a password change or the user's deletion.
func TestVerificationCacheFollowsPasswordChanges(t *testing.T) {
	ctx := context.Background()
	users := &cacheTestUsers{users: map[string]models.User{}}
	if err := SetPassword(ctx, users, "alice", "first", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	d := New(users)
	for range 2 { // the second check is answered from the cache
		if _, err := d.Authenticate(ctx, "alice", "first"); err != nil {
			t.Fatalf("first password: %v", err)
		}
	}
	if _, err := d.Authenticate(ctx, "alice", "wrong"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := SetPassword(ctx, users, "alice", "second", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate(ctx, "alice", "first"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("old password still accepted after the change: %v", err)
	}
	if _, err := d.Authenticate(ctx, "alice", "second"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	users.mu.Lock()
	delete(users.users, "alice")
	users.mu.Unlock()
	if _, err := d.Authenticate(ctx, "alice", "second"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("deleted user still accepted: %v", err)
	}
}
