package keppelv1

import (
	"net/http"

	"keppel/internal/auth"
	"keppel/internal/errcode"
	"keppel/internal/models"
)

// identify returns the caller of a management request: the identity of a
// bearer token, of basic credentials (checked by the auth driver), or nil
// for anonymous requests. It answers 401 itself (ok=false) for credentials
// that do not check out.
func (h *Handler) identify(w http.ResponseWriter, r *http.Request) (*auth.Identity, bool) {
	if token, found := auth.BearerToken(r.Header.Get("Authorization")); found {
		claims, err := h.tokens.Verify(token)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keppel",error="invalid_token"`)
			errcode.Write(w, errcode.New(errcode.Unauthorized, "invalid or expired token"))
			return nil, false
		}
		return h.tokenIdentity(r, claims), true
	}
	return h.authenticate(w, r)
}

// tokenIdentity returns what a bearer token may do on the management API.
//
//   - A token issued without scopes (or only keppel_api:info:access) is a
//     login session: it carries the user's full rights.
//   - A token with keppel_account or keppel_auth_tenant scopes has exactly
//     those rights, as far as the user has them: view/change of an account
//     become the viewer/admin role in the account's tenant, viewquota the
//     viewer role in the tenant.
//   - A token with only repository or catalog scopes (what docker and other
//     registry clients hold) has no management rights at all.
//
// Tokens of server administrators always carry their full rights.
func (h *Handler) tokenIdentity(r *http.Request, claims *auth.Claims) *auth.Identity {
	id := claims.Identity()
	if id == nil || id.IsAdmin {
		return id
	}
	session := true
	restricted := &auth.Identity{Username: id.Username, Roles: map[string]models.Role{}, Peer: id.Peer}
	grant := func(tenant string, role models.Role) {
		if !id.IsAdmin && !id.Roles[tenant].Includes(role) {
			return // the token cannot give more than the user has
		}
		if !restricted.Roles[tenant].Includes(role) {
			restricted.Roles[tenant] = role
		}
	}
	for _, sc := range claims.Access {
		switch sc.Type {
		case "keppel_api":
			continue
		case "keppel_account":
			session = false
			a, err := h.svc.GetAccount(r.Context(), sc.Name)
			if err != nil {
				continue
			}
			if sc.Allows(sc.Type, sc.Name, "change") {
				grant(a.AuthTenantID, models.RoleAdmin)
			} else if sc.Allows(sc.Type, sc.Name, "view") {
				grant(a.AuthTenantID, models.RoleViewer)
			}
		case "keppel_auth_tenant":
			session = false
			if sc.Allows(sc.Type, sc.Name, "viewquota") {
				grant(sc.Name, models.RoleViewer)
			}
		default:
			session = false
		}
	}
	if session {
		return id
	}
	return restricted
}

// requireIdentity is identify for endpoints that anonymous callers cannot use.
func (h *Handler) requireIdentity(w http.ResponseWriter, r *http.Request) (*auth.Identity, bool) {
	id, ok := h.identify(w, r)
	if !ok {
		return nil, false
	}
	if id == nil {
		h.challenge(w)
		errcode.Write(w, errcode.New(errcode.Unauthorized, "authentication required"))
		return nil, false
	}
	return id, true
}

func (h *Handler) challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="keppel"`)
}

// canView reports whether the identity may see the tenant's accounts.
func canView(id *auth.Identity, tenant string) bool {
	return id != nil && (id.IsAdmin || id.Roles[tenant].Includes(models.RoleViewer))
}

// canChange reports whether the identity may change the tenant's accounts,
// policies and content.
func canChange(id *auth.Identity, tenant string) bool {
	return id != nil && (id.IsAdmin || id.Roles[tenant].Includes(models.RoleAdmin))
}

// viewableTenants returns the tenants the identity may see (nil for a
// server admin, who sees all).
func viewableTenants(id *auth.Identity) []string {
	if id.IsAdmin {
		return nil
	}
	var out []string
	for tenant, role := range id.Roles {
		if role.Includes(models.RoleViewer) {
			out = append(out, tenant)
		}
	}
	return out
}

// notVisible answers like for a resource that does not exist, so that
// callers learn nothing about other tenants.
func notVisible(w http.ResponseWriter, what string) {
	errcode.Write(w, errcode.New(errcode.NotFound, "no such %s", what))
}

func forbidden(w http.ResponseWriter, format string, args ...any) {
	errcode.Write(w, errcode.New(errcode.Denied, format, args...))
}
