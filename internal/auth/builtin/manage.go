package builtin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

// ManagementStore is what managing users, roles and API keys needs beyond
// Store (db.Store has it).
type ManagementStore interface {
	Store
	ListUsers(ctx context.Context) ([]models.User, error)
	DeleteUser(ctx context.Context, name string) error
	SetRole(ctx context.Context, username, tenantID string, role models.Role) error
	ListTenantMembers(ctx context.Context, tenantID string) (map[string]models.Role, error)
	CreateAPIKey(ctx context.Context, k models.APIKey) error
	ListAPIKeys(ctx context.Context, username string) ([]models.APIKey, error)
	RevokeAPIKey(ctx context.Context, username, id string, at time.Time) error
}

// The management methods below fail with an error wrapping
// errors.ErrUnsupported when the driver's store is not a ManagementStore.

func (d *Driver) management() (ManagementStore, error) {
	if d.manage == nil {
		return nil, fmt.Errorf("the store of the built-in driver cannot manage users: %w", errors.ErrUnsupported)
	}
	return d.manage, nil
}

// GetUser returns a user; db.ErrNotFound if absent.
func (d *Driver) GetUser(ctx context.Context, name string) (models.User, error) {
	return d.store.GetUser(ctx, name)
}

// ListUsers returns all users by name.
func (d *Driver) ListUsers(ctx context.Context) ([]models.User, error) {
	m, err := d.management()
	if err != nil {
		return nil, err
	}
	return m.ListUsers(ctx)
}

// PutUser creates a user or updates its admin flag and, unless password is
// empty, its password; created tells which. Creating a user needs a
// password (the error wraps db.ErrNotFound otherwise).
func (d *Driver) PutUser(ctx context.Context, name, password string, isAdmin bool) (created bool, err error) {
	u, err := d.store.GetUser(ctx, name)
	switch {
	case errors.Is(err, db.ErrNotFound):
		if password == "" {
			return false, fmt.Errorf("user %q does not exist and no password was given: %w", name, db.ErrNotFound)
		}
		u, created = models.User{Name: name, CreatedAt: d.now()}, true
	case err != nil:
		return false, fmt.Errorf("looking up user: %w", err)
	}
	if password != "" {
		if u.PasswordHash, err = hashPassword(password); err != nil {
			return false, err
		}
	}
	u.IsAdmin = isAdmin
	return created, d.store.PutUser(ctx, u)
}

// DeleteUser removes a user with its roles and API keys; db.ErrNotFound if
// absent. Tokens issued to the user stay valid until they expire.
func (d *Driver) DeleteUser(ctx context.Context, name string) error {
	m, err := d.management()
	if err != nil {
		return err
	}
	return m.DeleteUser(ctx, name)
}

// ListRoles returns a user's roles by auth tenant.
func (d *Driver) ListRoles(ctx context.Context, username string) (map[string]models.Role, error) {
	return d.store.ListRoles(ctx, username)
}

// SetRole gives a user a role in an auth tenant, or takes it away (empty
// role); db.ErrReferenceMissing if the user does not exist.
func (d *Driver) SetRole(ctx context.Context, username, tenantID string, role models.Role) error {
	m, err := d.management()
	if err != nil {
		return err
	}
	return m.SetRole(ctx, username, tenantID, role)
}

// ListTenantMembers returns the users with a role in the auth tenant.
func (d *Driver) ListTenantMembers(ctx context.Context, tenantID string) (map[string]models.Role, error) {
	m, err := d.management()
	if err != nil {
		return nil, err
	}
	return m.ListTenantMembers(ctx, tenantID)
}

// CreateAPIKey generates a key for the user, valid for validFor (0: until
// revoked), and stores it. It returns the stored key and the plain key,
// which is kept nowhere; db.ErrReferenceMissing if the user does not exist.
func (d *Driver) CreateAPIKey(ctx context.Context, username, name string, validFor time.Duration) (models.APIKey, string, error) {
	m, err := d.management()
	if err != nil {
		return models.APIKey{}, "", err
	}
	// The store keeps whole seconds.
	now := d.now().UTC().Truncate(time.Second)
	var expiresAt *time.Time
	if validFor > 0 {
		t := now.Add(validFor)
		expiresAt = &t
	}
	for attempt := 0; ; attempt++ {
		k, plain, err := GenerateAPIKey(username, name, expiresAt, now)
		if err != nil {
			return models.APIKey{}, "", err
		}
		err = m.CreateAPIKey(ctx, k)
		// IDs have 48 random bits: a collision is rare, two in a row are not
		// a coincidence.
		if errors.Is(err, db.ErrConflict) && attempt < 2 {
			continue
		}
		if err != nil {
			return models.APIKey{}, "", err
		}
		return k, plain, nil
	}
}

// ListAPIKeys returns a user's keys, revoked ones too, newest first.
func (d *Driver) ListAPIKeys(ctx context.Context, username string) ([]models.APIKey, error) {
	m, err := d.management()
	if err != nil {
		return nil, err
	}
	return m.ListAPIKeys(ctx, username)
}

// RevokeAPIKey revokes a key of the user; db.ErrNotFound if the user has no
// such key.
func (d *Driver) RevokeAPIKey(ctx context.Context, username, id string) error {
	m, err := d.management()
	if err != nil {
		return err
	}
	return m.RevokeAPIKey(ctx, username, id, d.now())
}
