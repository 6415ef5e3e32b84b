package policy

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// RBACPolicy grants or forbids permissions in the repositories of one
// account. It is an element of the account's `rbac_policies`.
//
// A policy applies to a request if every match_* field that it has matches
// (an empty field matches everything, but a policy needs at least one).
type RBACPolicy struct {
	// MatchRepository is a regular expression over the repository name
	// without the account name, anchored at both ends.
	MatchRepository string `json:"match_repository,omitempty"`
	// MatchUsername is a regular expression over the user name, anchored at
	// both ends. A policy with it never applies to anonymous requests.
	MatchUsername string `json:"match_username,omitempty"`
	// MatchCIDR is a network in CIDR notation (IPv4 or IPv6) that the
	// client's address must be in. A policy with it never applies to a
	// request whose address is unknown.
	MatchCIDR string `json:"match_cidr,omitempty"`
	// Permissions are granted to the requests that the policy applies to.
	Permissions []string `json:"permissions"`
	// ForbiddenPermissions are denied to the requests that the policy
	// applies to, whatever grants them otherwise (including the user's role
	// in the auth tenant).
	ForbiddenPermissions []string `json:"forbidden_permissions,omitempty"`
}

// RBACRequest is what RBAC policies are evaluated against.
type RBACRequest struct {
	// RepoName is the repository name without the account name.
	RepoName string
	// Username is the authenticated user, or "" for an anonymous request.
	Username string
	// RemoteIP is the client's address, or nil if unknown.
	RemoteIP net.IP
}

// IsAnonymous reports whether the request is unauthenticated.
func (req RBACRequest) IsAnonymous() bool {
	return req.Username == ""
}

const rbacList = "rbac_policies"

// userPermissions are the permissions that RBAC policies grant only to
// authenticated users.
var userPermissions = NewPermissionSet(PermPull, PermPush, PermDelete)

// Matches reports whether the policy applies to req: every match_* field
// that the policy has must match. Invalid fields (which validation refuses)
// match nothing.
func (p RBACPolicy) Matches(req RBACRequest) bool {
	if p.MatchCIDR != "" {
		prefix, err := parseCIDR(p.MatchCIDR)
		if err != nil || req.RemoteIP == nil {
			return false
		}
		addr, ok := netip.AddrFromSlice(req.RemoteIP)
		if !ok || !prefix.Contains(addr.Unmap()) {
			return false
		}
	}
	if p.MatchRepository != "" && !matchAnchored(p.MatchRepository, req.RepoName) {
		return false
	}
	if p.MatchUsername != "" && (req.IsAnonymous() || !matchAnchored(p.MatchUsername, req.Username)) {
		return false
	}
	return true
}

// EvaluateRBAC returns the union of the permissions that the policies
// applying to req grant, and the union of those that they forbid. Unknown
// permission names are ignored. Use [EffectivePermissions] to combine the
// result with the user's role.
func EvaluateRBAC(policies []RBACPolicy, req RBACRequest) (granted, forbidden PermissionSet) {
	for _, p := range policies {
		if !p.Matches(req) {
			continue
		}
		for _, perm := range p.Permissions {
			granted |= Permission(perm).bit()
		}
		for _, perm := range p.ForbiddenPermissions {
			forbidden |= Permission(perm).bit()
		}
	}
	return granted, forbidden
}

// EffectivePermissions combines what a request may do in a repository:
//
//   - An authenticated request gets the permissions of the user's role in
//     the account's auth tenant (fromRole, see [RolePermissions]) and the
//     pull, push and delete permissions that RBAC policies grant.
//   - An anonymous request gets neither: fromRole and RBAC grants of pull,
//     push and delete are ignored for it.
//   - Every request, anonymous or not, gets pull if a policy grants
//     anonymous_pull.
//   - The anonymous_pull and anonymous_first_pull grants are kept in the
//     result as markers. A caller that would replicate a missing image into
//     a replica account for an anonymous request checks for
//     PermAnonymousFirstPull in addition to PermPull; an authenticated user
//     with pull may always trigger replication.
//   - Forbidden permissions win over everything, the role included: a
//     forbidden anonymous_pull removes the pull that came from it (but not a
//     pull from the role or a pull grant), and a forbidden pull, push or
//     delete removes that permission whatever granted it.
//
// Each permission is decided on its own: forbidding pull does not take away
// push from a pusher.
func EffectivePermissions(req RBACRequest, fromRole, granted, forbidden PermissionSet) PermissionSet {
	granted = granted.Without(forbidden)
	var eff PermissionSet
	if !req.IsAnonymous() {
		eff = fromRole.Union(granted & userPermissions)
	}
	if granted.Has(PermAnonymousPull) {
		eff = eff.With(PermPull)
	}
	eff |= granted & NewPermissionSet(PermAnonymousPull, PermAnonymousFirstPull)
	return eff.Without(forbidden)
}

// Authorize evaluates the policies for req and returns its effective
// permissions, as [EvaluateRBAC] followed by [EffectivePermissions].
func Authorize(policies []RBACPolicy, req RBACRequest, fromRole PermissionSet) PermissionSet {
	granted, forbidden := EvaluateRBAC(policies, req)
	return EffectivePermissions(req, fromRole, granted, forbidden)
}

// Allowed reports whether req may do perm, given the account's policies and
// the permissions of the user's role (see [Authorize]).
func (req RBACRequest) Allowed(policies []RBACPolicy, fromRole PermissionSet, perm Permission) bool {
	return Authorize(policies, req, fromRole).Has(perm)
}

// parseCIDR parses a network in CIDR notation. An IPv4 network written as
// an IPv4-mapped IPv6 network ("::ffff:10.0.0.0/104") becomes the IPv4
// network, so that it matches IPv4 clients.
func parseCIDR(s string) (netip.Prefix, error) {
	prefix, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if addr := prefix.Addr(); addr.Is4In6() && prefix.Bits() >= 96 {
		prefix = netip.PrefixFrom(addr.Unmap(), prefix.Bits()-96)
	}
	return prefix.Masked(), nil
}

// ValidateRBACPolicies checks the policies and returns them in canonical
// form: networks masked ("10.1.2.3/8" becomes "10.0.0.0/8"), permissions
// without duplicates in canonical order (pull, push, delete, anonymous_pull,
// anonymous_first_pull), and Permissions non-nil. The first problem found is
// returned as a *ValidationError.
//
// The rules (those of SAP Keppel): a policy needs at least one match_*
// field and at least one granted or forbidden permission; regexes must
// compile and CIDRs parse (and not match every address); permissions must be
// known, and none both granted and forbidden; granting pull, push or delete
// needs match_username or match_cidr; granting or forbidding anonymous_pull
// or anonymous_first_pull needs match_username to be empty; granting push or
// delete needs pull as well; granting anonymous_first_pull needs pull or
// anonymous_pull as well. (That anonymous_first_pull only makes sense in
// replica accounts is for the caller, which knows the account, to check.)
func ValidateRBACPolicies(policies []RBACPolicy) ([]RBACPolicy, error) {
	out := make([]RBACPolicy, 0, len(policies))
	for i, p := range policies {
		norm, err := validateRBACPolicy(i, p)
		if err != nil {
			return nil, err
		}
		out = append(out, norm)
	}
	return out, nil
}

func validateRBACPolicy(i int, p RBACPolicy) (RBACPolicy, error) {
	if p.MatchRepository == "" && p.MatchUsername == "" && p.MatchCIDR == "" {
		return p, invalid(rbacList, i, "",
			`a policy needs at least one of "match_repository", "match_username" and "match_cidr"`)
	}
	if p.MatchRepository != "" {
		if msg := validateRegex(p.MatchRepository); msg != "" {
			return p, invalid(rbacList, i, "match_repository", "%s", msg)
		}
	}
	if p.MatchUsername != "" {
		if msg := validateRegex(p.MatchUsername); msg != "" {
			return p, invalid(rbacList, i, "match_username", "%s", msg)
		}
	}
	if p.MatchCIDR != "" {
		prefix, err := parseCIDR(p.MatchCIDR)
		if err != nil {
			return p, invalid(rbacList, i, "match_cidr",
				`%q is not a valid CIDR (like "10.0.0.0/8" or "2001:db8::/32")`, p.MatchCIDR)
		}
		if prefix.Bits() == 0 {
			return p, invalid(rbacList, i, "match_cidr",
				`%q matches every address; leave "match_cidr" out instead`, p.MatchCIDR)
		}
		p.MatchCIDR = prefix.String()
	}

	granted, err := parsePermissions(i, "permissions", p.Permissions)
	if err != nil {
		return p, err
	}
	forbidden, err := parsePermissions(i, "forbidden_permissions", p.ForbiddenPermissions)
	if err != nil {
		return p, err
	}
	if both := granted & forbidden; !both.IsEmpty() {
		return p, invalid(rbacList, i, "forbidden_permissions",
			"%q is both granted and forbidden by the same policy", string(both.List()[0]))
	}
	if granted.IsEmpty() && forbidden.IsEmpty() {
		return p, invalid(rbacList, i, "permissions", "a policy must grant or forbid at least one permission")
	}

	for _, perm := range []Permission{PermPull, PermPush, PermDelete} {
		if granted.Has(perm) && p.MatchUsername == "" && p.MatchCIDR == "" {
			return p, invalid(rbacList, i, "permissions",
				`granting %q needs "match_username" or "match_cidr"`, string(perm))
		}
	}
	for _, perm := range []Permission{PermAnonymousPull, PermAnonymousFirstPull} {
		if (granted | forbidden).Has(perm) && p.MatchUsername != "" {
			return p, invalid(rbacList, i, "match_username",
				`must be empty in a policy that grants or forbids %q`, string(perm))
		}
	}
	for _, perm := range []Permission{PermPush, PermDelete} {
		if granted.Has(perm) && !granted.Has(PermPull) {
			return p, invalid(rbacList, i, "permissions", `granting %q needs "pull" as well`, string(perm))
		}
	}
	if granted.Has(PermAnonymousFirstPull) && !granted.Has(PermPull) && !granted.Has(PermAnonymousPull) {
		return p, invalid(rbacList, i, "permissions",
			`granting "anonymous_first_pull" needs "anonymous_pull" or "pull" as well`)
	}

	p.Permissions = permissionStrings(granted)
	p.ForbiddenPermissions = permissionStrings(forbidden)
	if len(p.ForbiddenPermissions) == 0 {
		p.ForbiddenPermissions = nil
	}
	return p, nil
}

// parsePermissions turns permission names into a set, refusing unknown names.
func parsePermissions(i int, field string, names []string) (PermissionSet, error) {
	var s PermissionSet
	for _, name := range names {
		b := Permission(name).bit()
		if b == 0 {
			return 0, invalid(rbacList, i, field, "%q is not a permission (known are: %s)",
				name, knownPermissions())
		}
		s |= b
	}
	return s, nil
}

func knownPermissions() string {
	names := make([]string, len(allPermissions))
	for i, p := range allPermissions {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// permissionStrings lists s in canonical order as strings (never nil).
func permissionStrings(s PermissionSet) []string {
	list := s.List()
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = string(p)
	}
	return out
}

// String describes the policy by its match fields, for messages:
// `match_repository "prod/.*", match_cidr "10.0.0.0/8"`.
func (p RBACPolicy) String() string {
	return describeFields(
		"match_repository", p.MatchRepository,
		"match_username", p.MatchUsername,
		"match_cidr", p.MatchCIDR,
	)
}

// describeFields renders the non-empty name/value pairs as `name "value"`,
// separated by commas.
func describeFields(pairs ...string) string {
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			parts = append(parts, fmt.Sprintf("%s %q", pairs[i], pairs[i+1]))
		}
	}
	return strings.Join(parts, ", ")
}
