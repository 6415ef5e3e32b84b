// Package builtin is the credential driver backed by the metadata store:
// users with bcrypt password hashes, their roles per auth tenant, and
// per-user API keys that can stand in for the password.
package builtin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"keppel/internal/auth"
	"keppel/internal/db"
	"keppel/internal/models"
)

// AdminUsername is the name of the administrator created on first start.
const AdminUsername = "admin"

// verifiedTTL is how long a successful password check is remembered.
const verifiedTTL = time.Minute

// Store is what the driver reads to check credentials (db.Store has it).
type Store interface {
	db.UserStore
	// ListRoles returns a user's roles by auth tenant (empty map if none).
	ListRoles(ctx context.Context, username string) (map[string]models.Role, error)
	// GetAPIKey returns a key by ID, revoked ones too; db.ErrNotFound if absent.
	GetAPIKey(ctx context.Context, id string) (models.APIKey, error)
}

// Driver authenticates users of the built-in user store. When its store is
// a ManagementStore as well, it also manages users, roles and API keys
// (see manage.go).
type Driver struct {
	store  Store
	manage ManagementStore
	now    func() time.Time
	// dummyHash is compared against for unknown users, so that a wrong
	// username takes as long as a wrong password.
	dummyHash []byte
	dummyOnce sync.Once
	// cacheKey keys the HMACs of the verification cache; it never leaves
	// the process.
	cacheKey [32]byte
	mu       sync.Mutex
	// verified remembers recent successful checks, so that clients that
	// fetch a token per request do not pay for bcrypt each time. An entry
	// holds the password hash it was checked against: a changed password
	// or a deleted user invalidates it at once, because the user is always
	// read from the store. Roles are never cached.
	verified map[[32]byte]verifiedEntry
}

type verifiedEntry struct {
	passwordHash string
	expires      time.Time
}

// Option configures a Driver.
type Option func(*Driver)

// WithClock injects the clock that API key expiry and creation times are
// measured with.
func WithClock(now func() time.Time) Option { return func(d *Driver) { d.now = now } }

// New returns a driver over the store.
func New(store Store, opts ...Option) *Driver {
	d := &Driver{store: store, now: time.Now, verified: map[[32]byte]verifiedEntry{}}
	if m, ok := store.(ManagementStore); ok {
		d.manage = m
	}
	for _, o := range opts {
		o(d)
	}
	_, _ = rand.Read(d.cacheKey[:])
	return d
}

func (d *Driver) cacheSlot(username, password string) [32]byte {
	m := hmac.New(sha256.New, d.cacheKey[:])
	m.Write([]byte(username))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

// Authenticate implements auth.Driver. The password is either the user's
// password or one of the user's API keys; the identity carries the user's
// roles as they are now.
func (d *Driver) Authenticate(ctx context.Context, username, password string) (auth.Identity, error) {
	if keyID, secret, ok := parseAPIKey(password); ok {
		return d.authenticateAPIKey(ctx, username, keyID, secret)
	}
	u, err := d.store.GetUser(ctx, username)
	if errors.Is(err, db.ErrNotFound) {
		d.dummyOnce.Do(func() {
			d.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("dummy password for timing"), bcrypt.DefaultCost)
		})
		_ = bcrypt.CompareHashAndPassword(d.dummyHash, []byte(password))
		return auth.Identity{}, auth.ErrBadCredentials
	}
	if err != nil {
		return auth.Identity{}, fmt.Errorf("looking up user: %w", err)
	}
	slot := d.cacheSlot(username, password)
	now := time.Now()
	d.mu.Lock()
	entry, ok := d.verified[slot]
	d.mu.Unlock()
	if !ok || entry.passwordHash != u.PasswordHash || !now.Before(entry.expires) {
		if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
			return auth.Identity{}, auth.ErrBadCredentials
		}
		d.mu.Lock()
		for k, e := range d.verified {
			if now.After(e.expires) {
				delete(d.verified, k)
			}
		}
		d.verified[slot] = verifiedEntry{passwordHash: u.PasswordHash, expires: now.Add(verifiedTTL)}
		d.mu.Unlock()
	}
	return d.identity(ctx, u)
}

// identity returns the identity of an authenticated user with the roles
// read from the store (one query, so that a changed role counts at once).
func (d *Driver) identity(ctx context.Context, u models.User) (auth.Identity, error) {
	roles, err := d.store.ListRoles(ctx, u.Name)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("looking up roles: %w", err)
	}
	return auth.Identity{Username: u.Name, IsAdmin: u.IsAdmin, Roles: roles}, nil
}

// hashPassword returns the bcrypt hash of a password.
func hashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return string(h), nil
}

// SetPassword creates or updates a user with the given password.
func SetPassword(ctx context.Context, users db.UserStore, username, password string, isAdmin bool, now time.Time) error {
	h, err := hashPassword(password)
	if err != nil {
		return err
	}
	return users.PutUser(ctx, models.User{Name: username, PasswordHash: h, IsAdmin: isAdmin, CreatedAt: now})
}

// EnsureAdmin makes sure the admin user exists. If password is set, the
// admin's password is set to it; otherwise an admin that exists is left
// alone, and a missing one is created with a generated password, which is
// returned (empty when nothing was generated).
func EnsureAdmin(ctx context.Context, users db.UserStore, password string, now time.Time) (generated string, err error) {
	if password != "" {
		return "", SetPassword(ctx, users, AdminUsername, password, true, now)
	}
	_, err = users.GetUser(ctx, AdminUsername)
	if err == nil {
		return "", nil
	}
	if !errors.Is(err, db.ErrNotFound) {
		return "", fmt.Errorf("looking up admin user: %w", err)
	}
	var buf [18]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("generating admin password: %w", err)
	}
	generated = base64.RawURLEncoding.EncodeToString(buf[:])
	return generated, SetPassword(ctx, users, AdminUsername, generated, true, now)
}
