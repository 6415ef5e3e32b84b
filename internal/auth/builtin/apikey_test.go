package builtin_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"keppel/internal/auth"
	"keppel/internal/auth/builtin"
	"keppel/internal/models"
)

var apiKeyRx = regexp.MustCompile(`^keppel_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$`)

func TestGenerateAPIKey(t *testing.T) {
	t.Parallel()
	expires := now.Add(24 * time.Hour)
	k, plain, err := builtin.GenerateAPIKey("alice", "ci", &expires, now)
	if err != nil {
		t.Fatal(err)
	}
	m := apiKeyRx.FindStringSubmatch(plain)
	if m == nil {
		t.Fatalf("key %q does not have the form keppel_<12 hex>_<43 base64url>", plain)
	}
	if k.ID != m[1] || k.Username != "alice" || k.Name != "ci" || !k.CreatedAt.Equal(now) || k.ExpiresAt == nil || !k.ExpiresAt.Equal(expires) || k.RevokedAt != nil {
		t.Errorf("key = %+v", k)
	}
	sum := sha256.Sum256([]byte(m[2]))
	if k.SecretHash != hex.EncodeToString(sum[:]) {
		t.Errorf("secret hash %q is not the SHA-256 of the secret", k.SecretHash)
	}
	if strings.Contains(k.SecretHash, m[2]) {
		t.Error("the stored hash contains the secret")
	}
	k2, plain2, err := builtin.GenerateAPIKey("alice", "ci", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if k2.ID == k.ID || plain2 == plain || k2.ExpiresAt != nil {
		t.Errorf("two keys are not independent: %+v %+v", k, k2)
	}
}

// clock is a settable clock for the driver.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// addKey stores a key for the user, as the management API would.
func addKey(t *testing.T, users *fakeUsers, username string, expiresAt *time.Time) (models.APIKey, string) {
	t.Helper()
	k, plain, err := builtin.GenerateAPIKey(username, "test", expiresAt, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := users.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k, plain
}

func TestAuthenticateWithAPIKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newFakeUsers()
	putUsers(t, users, "alice", "bob")
	if err := users.SetRole(ctx, "alice", "tenant1", models.RolePusher); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: now}
	d := builtin.New(users, builtin.WithClock(clk.now))

	expires := now.Add(time.Hour)
	_, goodPlain := addKey(t, users, "alice", &expires)
	_, forever := addKey(t, users, "alice", nil)
	revoked, revokedPlain := addKey(t, users, "alice", nil)
	if err := users.RevokeAPIKey(ctx, "alice", revoked.ID, now); err != nil {
		t.Fatal(err)
	}
	_, expiredPlain := addKey(t, users, "alice", &now)
	_, bobPlain := addKey(t, users, "bob", nil)
	// The right ID with another secret, and an unknown ID with a right secret.
	wrongSecret := goodPlain[:len(goodPlain)-4] + "AAAA"
	if wrongSecret == goodPlain {
		wrongSecret = goodPlain[:len(goodPlain)-4] + "BBBB"
	}
	unknownID := "keppel_000000000000" + goodPlain[len("keppel_")+12:]

	tests := []struct {
		name, username, password string
		ok                       bool
	}{
		{"good key", "alice", goodPlain, true},
		{"key without expiry", "alice", forever, true},
		{"wrong secret", "alice", wrongSecret, false},
		{"unknown ID", "alice", unknownID, false},
		{"key of another user", "alice", bobPlain, false},
		{"key under another user name", "bob", goodPlain, false},
		{"unknown user", "carol", goodPlain, false},
		{"revoked key", "alice", revokedPlain, false},
		{"expired key", "alice", expiredPlain, false},
		{"truncated key", "alice", goodPlain[:len(goodPlain)-1], false},
		{"key with a suffix", "alice", goodPlain + "x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := d.Authenticate(ctx, tc.username, tc.password)
			if !tc.ok {
				if !errors.Is(err, auth.ErrBadCredentials) {
					t.Errorf("error = %v, want bad credentials", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if id.Username != "alice" || id.IsAdmin || id.Roles["tenant1"] != models.RolePusher || len(id.Roles) != 1 {
				t.Errorf("identity = %+v", id)
			}
		})
	}

	t.Run("expiry follows the clock", func(t *testing.T) {
		// Not parallel with the cases above: it moves the clock.
		clk.set(expires.Add(-time.Second))
		if _, err := d.Authenticate(ctx, "alice", goodPlain); err != nil {
			t.Errorf("a second before expiry: %v", err)
		}
		clk.set(expires)
		if _, err := d.Authenticate(ctx, "alice", goodPlain); !errors.Is(err, auth.ErrBadCredentials) {
			t.Errorf("at expiry: %v, want bad credentials", err)
		}
		clk.set(now)
	})
}

func TestAPIKeyShapedPasswords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := newFakeUsers()
	// A password with the prefix but not the shape of a key is a password.
	if err := builtin.SetPassword(ctx, users, "alice", "keppel_not-a-key", false, now); err != nil {
		t.Fatal(err)
	}
	d := builtin.New(users)
	if _, err := d.Authenticate(ctx, "alice", "keppel_not-a-key"); err != nil {
		t.Errorf("password with the keppel_ prefix: %v", err)
	}
}

func TestAPIKeyStoreError(t *testing.T) {
	t.Parallel()
	users := newFakeUsers()
	_, plain := addKeyForNewUser(t, users)
	broken := errors.New("database on fire")
	users.err = broken
	_, err := builtin.New(users).Authenticate(context.Background(), "alice", plain)
	if !errors.Is(err, broken) || errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("error = %v, want the store error and not bad credentials", err)
	}
}

func addKeyForNewUser(t *testing.T, users *fakeUsers) (models.APIKey, string) {
	t.Helper()
	putUsers(t, users, "alice")
	return addKey(t, users, "alice", nil)
}

// putUsers stores users without a usable password: tests of API keys need
// no bcrypt, which is slow under -race.
func putUsers(t *testing.T, users *fakeUsers, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := users.PutUser(context.Background(), models.User{Name: name, PasswordHash: "no password", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
}
