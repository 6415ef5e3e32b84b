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

// Grant decides which of the requested scopes an identity gets (id is nil
// for anonymous requests). Server administrators get every scope they ask
// for; per-tenant roles and account RBAC policies are not part of this
// decision yet, so other users get nothing.
func Grant(id *Identity, requested []Scope) Grants {
	if id == nil || !id.IsAdmin {
		return Grants{}
	}
	granted := make(Grants, 0, len(requested))
	for _, s := range requested {
		switch s.Type {
		case "repository", "registry", "keppel_account", "keppel_auth_tenant", "keppel_api":
			granted = append(granted, s)
		}
	}
	return granted
}
