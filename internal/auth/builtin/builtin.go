// Package builtin is the credential driver backed by the users table of the
// metadata store, with bcrypt password hashes.
package builtin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"keppel/internal/auth"
	"keppel/internal/db"
	"keppel/internal/models"
)

// AdminUsername is the name of the administrator created on first start.
const AdminUsername = "admin"

// Driver authenticates users of the built-in user store.
type Driver struct {
	users db.UserStore
	// dummyHash is compared against for unknown users, so that a wrong
	// username takes as long as a wrong password.
	dummyHash []byte
}

// New returns a driver over the user store.
func New(users db.UserStore) *Driver {
	h, _ := bcrypt.GenerateFromPassword([]byte("dummy password for timing"), bcrypt.DefaultCost)
	return &Driver{users: users, dummyHash: h}
}

// Authenticate implements auth.Driver.
func (d *Driver) Authenticate(ctx context.Context, username, password string) (auth.Identity, error) {
	u, err := d.users.GetUser(ctx, username)
	if errors.Is(err, db.ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword(d.dummyHash, []byte(password))
		return auth.Identity{}, auth.ErrBadCredentials
	}
	if err != nil {
		return auth.Identity{}, fmt.Errorf("looking up user: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return auth.Identity{}, auth.ErrBadCredentials
	}
	return auth.Identity{Username: u.Name, IsAdmin: u.IsAdmin}, nil
}

// SetPassword creates or updates a user with the given password.
func SetPassword(ctx context.Context, users db.UserStore, username, password string, isAdmin bool, now time.Time) error {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hashing password: %w", err)
	}
	return users.PutUser(ctx, models.User{Name: username, PasswordHash: string(h), IsAdmin: isAdmin, CreatedAt: now})
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
