package auth

import (
	"context"
	"errors"

	"keppel/internal/models"
)

// ErrBadCredentials is returned by a Driver for a wrong username or password.
// It does not say which of the two was wrong.
var ErrBadCredentials = errors.New("wrong username or password")

// Identity is an authenticated user.
type Identity struct {
	Username string
	// IsAdmin marks a server administrator, who may do everything.
	IsAdmin bool
	// Roles are the user's roles by auth tenant ID.
	Roles map[string]models.Role
}

// Driver checks credentials against a user store or identity provider.
type Driver interface {
	// Authenticate returns the identity for valid credentials and
	// ErrBadCredentials (possibly wrapped) otherwise.
	Authenticate(ctx context.Context, username, password string) (Identity, error)
}

// Chain is a Driver that asks several drivers in order: the first that
// accepts the credentials wins; ErrBadCredentials from one lets the next
// try; any other error stops the chain (so that an unreachable identity
// provider is not reported as a wrong password).
type Chain []Driver

// Authenticate implements Driver.
func (c Chain) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	for _, d := range c {
		id, err := d.Authenticate(ctx, username, password)
		if err == nil || !errors.Is(err, ErrBadCredentials) {
			return id, err
		}
	}
	return Identity{}, ErrBadCredentials
}
