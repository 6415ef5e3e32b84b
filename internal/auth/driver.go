package auth

import (
	"context"
	"errors"
	"fmt"

	"keppel/internal/models"
)

// ErrBadCredentials is returned by a Driver for a wrong username or password.
// It does not say which of the two was wrong.
var ErrBadCredentials = errors.New("wrong username or password")

// ErrRefused is returned (possibly wrapped) by a Driver for wrong
// credentials of a user name that only this driver may accept. It matches
// ErrBadCredentials as well, but a Chain asks no further driver, so that
// such a name can never be logged in with elsewhere.
var ErrRefused = fmt.Errorf("%w (the name is reserved by its credential driver)", ErrBadCredentials)

// Identity is an authenticated user.
type Identity struct {
	Username string
	// IsAdmin marks a server administrator, who may do everything.
	IsAdmin bool
	// Roles are the user's roles by auth tenant ID.
	Roles map[string]models.Role
	// Peer marks another registry of the federation, logged in with the
	// service password this registry issued to it: it may pull from every
	// account and do nothing else.
	Peer bool
}

// Driver checks credentials against a user store or identity provider.
type Driver interface {
	// Authenticate returns the identity for valid credentials and
	// ErrBadCredentials (possibly wrapped) otherwise.
	Authenticate(ctx context.Context, username, password string) (Identity, error)
}

// Chain is a Driver that asks several drivers in order: the first that
// accepts the credentials wins; ErrBadCredentials from one lets the next
// try, unless it is ErrRefused; any other error stops the chain (so that
// an unreachable identity provider is not reported as a wrong password).
type Chain []Driver

// Authenticate implements Driver.
func (c Chain) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	for _, d := range c {
		id, err := d.Authenticate(ctx, username, password)
		if err == nil || !errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrRefused) {
			return id, err
		}
	}
	return Identity{}, ErrBadCredentials
}
