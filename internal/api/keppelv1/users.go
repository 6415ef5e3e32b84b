package keppelv1

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"keppel/internal/auth"
	"keppel/internal/db"
	"keppel/internal/errcode"
	"keppel/internal/models"
)

// UserManager is the optional capability of a credential driver that keeps
// its own users, their roles per auth tenant and their API keys (the
// built-in driver has it). With other drivers, the user endpoints answer
// 404. Methods that find no user or key return errors wrapping
// db.ErrNotFound or db.ErrReferenceMissing, and errors.ErrUnsupported when
// the driver cannot manage users after all.
type UserManager interface {
	GetUser(ctx context.Context, name string) (models.User, error)
	ListUsers(ctx context.Context) ([]models.User, error)
	// PutUser creates or updates a user; an empty password keeps the
	// current one.
	PutUser(ctx context.Context, name, password string, isAdmin bool) (created bool, err error)
	DeleteUser(ctx context.Context, name string) error
	ListRoles(ctx context.Context, username string) (map[string]models.Role, error)
	// SetRole sets a role; the empty role removes it.
	SetRole(ctx context.Context, username, tenantID string, role models.Role) error
	ListTenantMembers(ctx context.Context, tenantID string) (map[string]models.Role, error)
	// CreateAPIKey returns the stored key and the plain key (validFor 0:
	// until revoked).
	CreateAPIKey(ctx context.Context, username, name string, validFor time.Duration) (models.APIKey, string, error)
	ListAPIKeys(ctx context.Context, username string) ([]models.APIKey, error)
	RevokeAPIKey(ctx context.Context, username, id string) error
}

// bootstrapAdmin is the administrator that the server creates at start
// (builtin.AdminUsername). It can be neither deleted nor demoted, so that
// there is always an administrator.
const bootstrapAdmin = "admin"

// minPasswordLength and maxPasswordLength bound passwords (bcrypt reads at
// most 72 bytes).
const (
	minPasswordLength = 12
	maxPasswordLength = 72
)

// maxKeyDays bounds the lifetime of API keys (ten years).
const maxKeyDays = 3650

var (
	userNameRx = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)
	apiKeyIDRx = regexp.MustCompile(`^[0-9a-f]{12}$`)
	validRoles = []models.Role{models.RoleViewer, models.RolePusher, models.RoleAdmin}
)

// userManager returns the driver's user management, or answers 404.
func (h *Handler) userManager(w http.ResponseWriter) (UserManager, bool) {
	m, ok := h.driver.(UserManager)
	if !ok {
		errcode.Write(w, errcode.New(errcode.NotFound, "the credential driver does not manage users"))
	}
	return m, ok
}

// userError answers for an error of the UserManager: 404 for missing users
// (or keys), 500 otherwise.
func (h *Handler) userError(w http.ResponseWriter, msg, what string, err error) {
	switch {
	case errors.Is(err, db.ErrNotFound), errors.Is(err, db.ErrReferenceMissing):
		notVisible(w, what)
	case errors.Is(err, errors.ErrUnsupported):
		errcode.Write(w, errcode.New(errcode.NotFound, "the credential driver does not manage users"))
	default:
		h.internalError(w, msg, err)
	}
}

// decodeBody reads a JSON request body into v, refusing unknown fields and
// trailing data; it answers 400 itself.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	if err != nil {
		errcode.Write(w, errcode.New(errcode.BadRequest, "malformed request body: %s", err.Error()))
		return false
	}
	return true
}

func auditDetails(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// userPath validates the {user} path element; it answers 400 itself.
func userPath(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("user")
	if !userNameRx.MatchString(name) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "invalid user name: use 1-64 characters of a-z, 0-9, '.', '_', '@' and '-', starting with a letter or digit"))
		return "", false
	}
	return name, true
}

// requireServerAdmin is requireIdentity for endpoints of server
// administrators; it answers 403 to everybody else.
func (h *Handler) requireServerAdmin(w http.ResponseWriter, r *http.Request) (*auth.Identity, bool) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return nil, false
	}
	if !id.IsAdmin {
		forbidden(w, "only server administrators can manage users")
		return nil, false
	}
	return id, true
}

type userJSON struct {
	Name    string                 `json:"name"`
	IsAdmin bool                   `json:"is_admin"`
	Roles   map[string]models.Role `json:"roles"`
}

func renderUser(u models.User, roles map[string]models.Role) userJSON {
	if roles == nil {
		roles = map[string]models.Role{}
	}
	return userJSON{Name: u.Name, IsAdmin: u.IsAdmin, Roles: roles}
}

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.requireServerAdmin(w, r); !ok {
		return
	}
	m, ok := h.userManager(w)
	if !ok {
		return
	}
	users, err := m.ListUsers(r.Context())
	if err != nil {
		h.userError(w, "cannot list users", "user", err)
		return
	}
	out := make([]userJSON, len(users))
	for i, u := range users {
		roles, err := m.ListRoles(r.Context(), u.Name)
		if err != nil {
			h.userError(w, "cannot list roles", "user", err)
			return
		}
		out[i] = renderUser(u, roles)
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (h *Handler) putUser(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireServerAdmin(w, r)
	if !ok {
		return
	}
	name, ok := userPath(w, r)
	if !ok {
		return
	}
	m, ok := h.userManager(w)
	if !ok {
		return
	}
	var req struct {
		User *struct {
			Password *string `json:"password"`
			IsAdmin  *bool   `json:"is_admin"`
		} `json:"user"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.User == nil {
		errcode.Write(w, errcode.New(errcode.BadRequest, `the request body needs a "user" object`))
		return
	}
	password := ""
	if p := req.User.Password; p != nil {
		if utf8.RuneCountInString(*p) < minPasswordLength || len(*p) > maxPasswordLength {
			errcode.Write(w, errcode.New(errcode.BadRequest, "the password must have at least %d characters and at most %d bytes", minPasswordLength, maxPasswordLength))
			return
		}
		password = *p
	}
	current, err := m.GetUser(r.Context(), name)
	exists := err == nil
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		h.internalError(w, "cannot get user", err)
		return
	}
	if !exists && password == "" {
		errcode.Write(w, errcode.New(errcode.BadRequest, "creating a user needs a password"))
		return
	}
	isAdmin := current.IsAdmin
	if req.User.IsAdmin != nil {
		isAdmin = *req.User.IsAdmin
	}
	if exists && current.IsAdmin && !isAdmin && (name == bootstrapAdmin || name == id.Username) {
		errcode.Write(w, errcode.New(errcode.Conflict, "user %s cannot stop being an administrator: it is you or the bootstrap administrator", name))
		return
	}
	created, err := m.PutUser(r.Context(), name, password, isAdmin)
	if err != nil {
		h.userError(w, "cannot store user", "user", err)
		return
	}
	roles, err := m.ListRoles(r.Context(), name)
	if err != nil {
		h.userError(w, "cannot list roles", "user", err)
		return
	}
	action, status := "user.update", http.StatusOK
	if created {
		action, status = "user.create", http.StatusCreated
	}
	h.record(r, id, models.AuditEvent{Action: action, Target: name,
		DetailsJSON: auditDetails(map[string]bool{"is_admin": isAdmin, "password_changed": password != ""})})
	writeJSON(w, status, map[string]any{"user": renderUser(models.User{Name: name, IsAdmin: isAdmin}, roles)})
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireServerAdmin(w, r)
	if !ok {
		return
	}
	name, ok := userPath(w, r)
	if !ok {
		return
	}
	m, ok := h.userManager(w)
	if !ok {
		return
	}
	// With the bootstrap administrator undeletable (and never demoted),
	// the last administrator cannot go either.
	switch name {
	case id.Username:
		errcode.Write(w, errcode.New(errcode.Conflict, "you cannot delete yourself"))
		return
	case bootstrapAdmin:
		errcode.Write(w, errcode.New(errcode.Conflict, "the bootstrap administrator %s cannot be deleted", name))
		return
	}
	if err := m.DeleteUser(r.Context(), name); err != nil {
		h.userError(w, "cannot delete user", "user", err)
		return
	}
	h.record(r, id, models.AuditEvent{Action: "user.delete", Target: name})
	w.WriteHeader(http.StatusNoContent)
}

// roleTarget checks the path of a role endpoint and that the caller may
// change the tenant's roles (server and tenant administrators); callers
// without any role in the tenant learn nothing about it.
func (h *Handler) roleTarget(w http.ResponseWriter, r *http.Request) (id *auth.Identity, m UserManager, user, tenant string, ok bool) {
	if id, ok = h.requireIdentity(w, r); !ok {
		return
	}
	if user, ok = userPath(w, r); !ok {
		return
	}
	tenant = r.PathValue("tenant")
	if !validTenantID(tenant) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "invalid auth tenant ID"))
		return nil, nil, "", "", false
	}
	if !canChange(id, tenant) {
		if canView(id, tenant) {
			forbidden(w, "changing roles in auth tenant %s requires the admin role there", tenant)
		} else {
			notVisible(w, "auth tenant")
		}
		return nil, nil, "", "", false
	}
	if m, ok = h.userManager(w); !ok {
		return
	}
	return id, m, user, tenant, true
}

func (h *Handler) putRole(w http.ResponseWriter, r *http.Request) {
	id, m, user, tenant, ok := h.roleTarget(w, r)
	if !ok {
		return
	}
	var req struct {
		Role models.Role `json:"role"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if !slices.Contains(validRoles, req.Role) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "role must be one of viewer, pusher, admin"))
		return
	}
	if err := m.SetRole(r.Context(), user, tenant, req.Role); err != nil {
		h.userError(w, "cannot set role", "user", err)
		return
	}
	h.record(r, id, models.AuditEvent{Action: "role.set", AuthTenantID: tenant, Target: user,
		DetailsJSON: auditDetails(map[string]models.Role{"role": req.Role})})
	writeJSON(w, http.StatusOK, map[string]any{"role": map[string]any{"user": user, "auth_tenant_id": tenant, "role": req.Role}})
}

func (h *Handler) deleteRole(w http.ResponseWriter, r *http.Request) {
	id, m, user, tenant, ok := h.roleTarget(w, r)
	if !ok {
		return
	}
	if err := m.SetRole(r.Context(), user, tenant, ""); err != nil {
		h.userError(w, "cannot remove role", "user", err)
		return
	}
	h.record(r, id, models.AuditEvent{Action: "role.remove", AuthTenantID: tenant, Target: user})
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) listTenantMembers(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	tenant := r.PathValue("tenant")
	if !validTenantID(tenant) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "invalid auth tenant ID"))
		return
	}
	if !canView(id, tenant) {
		notVisible(w, "auth tenant")
		return
	}
	m, ok := h.userManager(w)
	if !ok {
		return
	}
	members, err := m.ListTenantMembers(r.Context(), tenant)
	if err != nil {
		h.userError(w, "cannot list tenant members", "auth tenant", err)
		return
	}
	if members == nil {
		members = map[string]models.Role{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": members})
}

// keyOwner checks the {user} path element of an API key endpoint and that
// the caller is that user or a server administrator.
func (h *Handler) keyOwner(w http.ResponseWriter, r *http.Request) (id *auth.Identity, m UserManager, user string, ok bool) {
	if id, ok = h.requireIdentity(w, r); !ok {
		return
	}
	if user, ok = userPath(w, r); !ok {
		return
	}
	if !id.IsAdmin && id.Username != user {
		forbidden(w, "only %s and server administrators can manage the API keys of %s", user, user)
		return nil, nil, "", false
	}
	if m, ok = h.userManager(w); !ok {
		return
	}
	return id, m, user, true
}

type apiKeyJSON struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	CreatedAt string  `json:"created_at"`
	ExpiresAt *string `json:"expires_at"`
	RevokedAt *string `json:"revoked_at,omitempty"`
	// Secret is the whole key, in the answer to its creation only.
	Secret string `json:"secret,omitempty"`
}

func formatTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func renderAPIKey(k models.APIKey) apiKeyJSON {
	return apiKeyJSON{ID: k.ID, Name: k.Name, CreatedAt: *formatTime(&k.CreatedAt),
		ExpiresAt: formatTime(k.ExpiresAt), RevokedAt: formatTime(k.RevokedAt)}
}

// validKeyName accepts 1-64 printable characters that are not all spaces.
func validKeyName(s string) bool {
	if !utf8.ValidString(s) || strings.TrimSpace(s) == "" || utf8.RuneCountInString(s) > 64 {
		return false
	}
	return !strings.ContainsFunc(s, func(c rune) bool { return !unicode.IsPrint(c) })
}

func (h *Handler) createAPIKey(w http.ResponseWriter, r *http.Request) {
	id, m, user, ok := h.keyOwner(w, r)
	if !ok {
		return
	}
	var req struct {
		Name          string `json:"name"`
		ExpiresInDays *int   `json:"expires_in_days"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if !validKeyName(req.Name) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "name must have 1-64 printable characters"))
		return
	}
	var validFor time.Duration
	if req.ExpiresInDays != nil {
		if *req.ExpiresInDays < 1 || *req.ExpiresInDays > maxKeyDays {
			errcode.Write(w, errcode.New(errcode.BadRequest, "expires_in_days must be between 1 and %d", maxKeyDays))
			return
		}
		validFor = time.Duration(*req.ExpiresInDays) * 24 * time.Hour
	}
	k, plain, err := m.CreateAPIKey(r.Context(), user, req.Name, validFor)
	if err != nil {
		h.userError(w, "cannot create API key", "user", err)
		return
	}
	h.record(r, id, models.AuditEvent{Action: "api_key.create", Target: user,
		DetailsJSON: auditDetails(map[string]any{"id": k.ID, "name": k.Name, "expires_at": formatTime(k.ExpiresAt)})})
	out := renderAPIKey(k)
	out.Secret = plain
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"api_key": out})
}

func (h *Handler) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	_, m, user, ok := h.keyOwner(w, r)
	if !ok {
		return
	}
	// Listing the keys of an unknown user is not an empty list.
	if _, err := m.GetUser(r.Context(), user); err != nil {
		h.userError(w, "cannot get user", "user", err)
		return
	}
	keys, err := m.ListAPIKeys(r.Context(), user)
	if err != nil {
		h.userError(w, "cannot list API keys", "user", err)
		return
	}
	out := make([]apiKeyJSON, len(keys))
	for i, k := range keys {
		out[i] = renderAPIKey(k)
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_keys": out})
}

func (h *Handler) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	id, m, user, ok := h.keyOwner(w, r)
	if !ok {
		return
	}
	keyID := r.PathValue("id")
	if !apiKeyIDRx.MatchString(keyID) {
		notVisible(w, "API key")
		return
	}
	if err := m.RevokeAPIKey(r.Context(), user, keyID); err != nil {
		h.userError(w, "cannot revoke API key", "API key", err)
		return
	}
	h.record(r, id, models.AuditEvent{Action: "api_key.revoke", Target: user, DetailsJSON: auditDetails(map[string]string{"id": keyID})})
	w.WriteHeader(http.StatusNoContent)
}
