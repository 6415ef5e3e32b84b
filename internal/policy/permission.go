package policy

import (
	"strings"

	"keppel/internal/models"
)

// Permission is a permission that an RBAC policy grants or forbids.
type Permission string

// The permissions that RBAC policies know.
const (
	// PermPull allows pulling manifests and blobs from matching repositories.
	PermPull Permission = "pull"
	// PermPush allows pushing into matching repositories. It must be granted
	// together with PermPull.
	PermPush Permission = "push"
	// PermDelete allows deleting manifests and tags in matching repositories.
	// It must be granted together with PermPull.
	PermDelete Permission = "delete"
	// PermAnonymousPull allows everyone, including anonymous users, to pull
	// from matching repositories.
	PermAnonymousPull Permission = "anonymous_pull"
	// PermAnonymousFirstPull allows anonymous users to pull images that are
	// not yet replicated into a replica account, which makes the account
	// fetch them from upstream. It has an effect only on replica accounts.
	PermAnonymousFirstPull Permission = "anonymous_first_pull"
)

// allPermissions lists the permissions in their canonical order, which is
// the order in which [PermissionSet.List] and the canonical JSON give them.
var allPermissions = [...]Permission{
	PermPull, PermPush, PermDelete, PermAnonymousPull, PermAnonymousFirstPull,
}

// bit returns the bit of p in a PermissionSet, or 0 for an unknown permission.
func (p Permission) bit() PermissionSet {
	for i, q := range allPermissions {
		if p == q {
			return 1 << i
		}
	}
	return 0
}

// IsValid reports whether p is one of the known permissions.
func (p Permission) IsValid() bool {
	return p.bit() != 0
}

// PermissionSet is a set of permissions. The zero value is the empty set.
// It is a small value type: copy it freely and compare it with ==.
type PermissionSet uint8

// NewPermissionSet returns the set of the given permissions; unknown
// permissions are ignored.
func NewPermissionSet(perms ...Permission) PermissionSet {
	var s PermissionSet
	for _, p := range perms {
		s |= p.bit()
	}
	return s
}

// Has reports whether p is in s. It is false for unknown permissions.
func (s PermissionSet) Has(p Permission) bool {
	b := p.bit()
	return b != 0 && s&b != 0
}

// With returns s with the given permissions added.
func (s PermissionSet) With(perms ...Permission) PermissionSet {
	return s | NewPermissionSet(perms...)
}

// Union returns the permissions that are in s or in other.
func (s PermissionSet) Union(other PermissionSet) PermissionSet {
	return s | other
}

// Without returns the permissions of s that are not in other.
func (s PermissionSet) Without(other PermissionSet) PermissionSet {
	return s &^ other
}

// IsEmpty reports whether s has no permission.
func (s PermissionSet) IsEmpty() bool {
	return s == 0
}

// List returns the permissions of s in canonical order.
func (s PermissionSet) List() []Permission {
	out := []Permission{}
	for _, p := range allPermissions {
		if s.Has(p) {
			out = append(out, p)
		}
	}
	return out
}

// String returns the permissions of s in canonical order, separated by
// commas ("pull,push"), or "" for the empty set.
func (s PermissionSet) String() string {
	var b strings.Builder
	for _, p := range s.List() {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(p))
	}
	return b.String()
}

// RolePermissions returns the repository permissions that a role in the
// account's auth tenant gives: a viewer may pull, a pusher may also push, an
// admin may also delete. An unknown or empty role gives nothing.
func RolePermissions(role models.Role) PermissionSet {
	switch {
	case role.Includes(models.RoleAdmin):
		return NewPermissionSet(PermPull, PermPush, PermDelete)
	case role.Includes(models.RolePusher):
		return NewPermissionSet(PermPull, PermPush)
	case role.Includes(models.RoleViewer):
		return NewPermissionSet(PermPull)
	default:
		return 0
	}
}
