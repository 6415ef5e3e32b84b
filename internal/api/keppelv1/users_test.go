package keppelv1_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"keppel/internal/models"
	"keppel/internal/test"
)

// These tests create few users and log in with basic credentials rarely:
// every password hash and check is a bcrypt run, which is slow under -race.
// Most requests use bearer tokens.

func jsonBody(t *testing.T, v any) *bytes.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func wantStatus(t *testing.T, r test.Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.Status, status, r.Body)
	}
}

// createUser creates a user through the API with the admin's token.
func createUser(t *testing.T, s *test.Server, admin, name, password string, isAdmin bool) {
	t.Helper()
	r := s.Do(t, http.MethodPut, "/keppel/v1/users/"+name, admin, nil,
		jsonBody(t, map[string]any{"user": map[string]any{"password": password, "is_admin": isAdmin}}))
	wantStatus(t, r, http.StatusCreated)
}

// setRole gives a user a role through the API.
func setRole(t *testing.T, s *test.Server, token, user, tenant string, role models.Role) {
	t.Helper()
	r := s.Do(t, http.MethodPut, "/keppel/v1/users/"+user+"/roles/"+tenant, token, nil, jsonBody(t, map[string]any{"role": role}))
	wantStatus(t, r, http.StatusOK)
}

// login fetches a token with basic credentials (the roles in it are those
// of the moment).
func login(t *testing.T, s *test.Server, user, password string, scopes ...string) string {
	t.Helper()
	tr, claims := decodeToken(t, s.Do(t, http.MethodGet, tokenQuery(s, scopes...), "", basic(user, password), nil))
	if claims.Subject != user {
		t.Fatalf("token subject = %q, want %q", claims.Subject, user)
	}
	return tr.Token
}

type userListJSON struct {
	Users []struct {
		Name    string                 `json:"name"`
		IsAdmin bool                   `json:"is_admin"`
		Roles   map[string]models.Role `json:"roles"`
	} `json:"users"`
}

func TestUserEndpointsNeedCredentials(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	admin := s.Token(t)
	createUser(t, s, admin, "alice", "alice-password", false)
	alice := login(t, s, "alice", "alice-password")

	endpoints := []struct {
		method, path, body string
		// adminOnly endpoints answer 403 to alice, who has no role anywhere;
		// the others are about alice herself (allowed) or about a tenant
		// she cannot see (404).
		adminOnly bool
	}{
		{http.MethodGet, "/keppel/v1/users", "", true},
		{http.MethodPut, "/keppel/v1/users/bob", `{"user":{"password":"bob-password"}}`, true},
		{http.MethodDelete, "/keppel/v1/users/bob", "", true},
		{http.MethodPut, "/keppel/v1/users/alice/roles/tenant1", `{"role":"admin"}`, false},
		{http.MethodDelete, "/keppel/v1/users/alice/roles/tenant1", "", false},
		{http.MethodGet, "/keppel/v1/tenants/tenant1/members", "", false},
		{http.MethodGet, "/keppel/v1/users/bob/api_keys", "", true},
		{http.MethodPost, "/keppel/v1/users/bob/api_keys", `{"name":"ci"}`, true},
		{http.MethodDelete, "/keppel/v1/users/bob/api_keys/0123456789ab", "", true},
	}
	for _, ep := range endpoints {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			t.Parallel()
			body := func() *strings.Reader { return strings.NewReader(ep.body) }
			r := s.Do(t, ep.method, ep.path, "", nil, body())
			wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
			if r.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without a challenge")
			}
			r = s.Do(t, ep.method, ep.path, "not-a-token", nil, body())
			wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
			r = s.Do(t, ep.method, ep.path, "", basic("admin", "wrong"), body())
			wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")

			r = s.Do(t, ep.method, ep.path, alice, nil, body())
			if ep.adminOnly {
				wantError(t, r, http.StatusForbidden, "DENIED")
			} else {
				// Alice has no role in tenant1: she must not learn that it exists.
				wantError(t, r, http.StatusNotFound, "NOT_FOUND")
			}
		})
	}
}

func TestUserLifecycle(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	admin := s.Token(t)

	r := s.Do(t, http.MethodPut, "/keppel/v1/users/alice@example.com", admin, nil,
		jsonBody(t, map[string]any{"user": map[string]any{"password": "alice-password"}}))
	wantStatus(t, r, http.StatusCreated)
	var created struct {
		User struct {
			Name    string                 `json:"name"`
			IsAdmin bool                   `json:"is_admin"`
			Roles   map[string]models.Role `json:"roles"`
		} `json:"user"`
	}
	if err := json.Unmarshal(r.Body, &created); err != nil || created.User.Name != "alice@example.com" || created.User.IsAdmin || created.User.Roles == nil {
		t.Errorf("created user %s (%v)", r.Body, err)
	}
	setRole(t, s, admin, "alice@example.com", "tenant1", models.RolePusher)

	r = s.Do(t, http.MethodGet, "/keppel/v1/users", admin, nil, nil)
	wantStatus(t, r, http.StatusOK)
	var list userListJSON
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Users) != 2 || list.Users[0].Name != "admin" || !list.Users[0].IsAdmin || len(list.Users[0].Roles) != 0 ||
		list.Users[1].Name != "alice@example.com" || list.Users[1].IsAdmin || list.Users[1].Roles["tenant1"] != models.RolePusher {
		t.Errorf("users = %s", r.Body)
	}
	if bytes.Contains(r.Body, []byte("password")) || bytes.Contains(r.Body, []byte("$2")) {
		t.Errorf("the user list shows password hashes: %s", r.Body)
	}

	// Updating: the admin flag alone keeps the password; 200, not 201.
	r = s.Do(t, http.MethodPut, "/keppel/v1/users/alice@example.com", admin, nil, strings.NewReader(`{"user":{"is_admin":true}}`))
	wantStatus(t, r, http.StatusOK)
	aliceAdmin := login(t, s, "alice@example.com", "alice-password")
	r = s.Do(t, http.MethodGet, "/keppel/v1/users", aliceAdmin, nil, nil)
	wantStatus(t, r, http.StatusOK)

	// An administrator can neither demote nor delete herself, and nobody
	// can delete or demote the bootstrap administrator.
	r = s.Do(t, http.MethodPut, "/keppel/v1/users/alice@example.com", aliceAdmin, nil, strings.NewReader(`{"user":{"is_admin":false}}`))
	wantError(t, r, http.StatusConflict, "CONFLICT")
	r = s.Do(t, http.MethodDelete, "/keppel/v1/users/alice@example.com", aliceAdmin, nil, nil)
	wantError(t, r, http.StatusConflict, "CONFLICT")
	r = s.Do(t, http.MethodDelete, "/keppel/v1/users/admin", aliceAdmin, nil, nil)
	wantError(t, r, http.StatusConflict, "CONFLICT")
	r = s.Do(t, http.MethodPut, "/keppel/v1/users/admin", aliceAdmin, nil, strings.NewReader(`{"user":{"is_admin":false}}`))
	wantError(t, r, http.StatusConflict, "CONFLICT")

	// Deleting takes the user with roles and keys; the password no longer works.
	r = s.Do(t, http.MethodDelete, "/keppel/v1/users/alice@example.com", admin, nil, nil)
	wantStatus(t, r, http.StatusNoContent)
	r = s.Do(t, http.MethodDelete, "/keppel/v1/users/alice@example.com", admin, nil, nil)
	wantError(t, r, http.StatusNotFound, "NOT_FOUND")
	r = s.Do(t, http.MethodGet, tokenQuery(s), "", basic("alice@example.com", "alice-password"), nil)
	wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
	r = s.Do(t, http.MethodGet, "/keppel/v1/tenants/tenant1/members", admin, nil, nil)
	if got := strings.TrimSpace(string(r.Body)); r.Status != http.StatusOK || got != `{"members":{}}` {
		t.Errorf("members after deletion: %d %s", r.Status, got)
	}

	// The changes are audited, without secrets.
	r = s.Do(t, http.MethodGet, "/keppel/v1/audit?limit=100", admin, nil, nil)
	wantStatus(t, r, http.StatusOK)
	for _, action := range []string{"user.create", "user.update", "user.delete", "role.set"} {
		if !bytes.Contains(r.Body, []byte(`"`+action+`"`)) {
			t.Errorf("no %s event in %s", action, r.Body)
		}
	}
	if bytes.Contains(r.Body, []byte("alice-password")) {
		t.Errorf("an audit event contains the password: %s", r.Body)
	}
}

func TestPutUserBadRequests(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	admin := s.Token(t)
	tests := []struct {
		name, user, body string
		status           int
	}{
		{"upper case name", "Alice", `{"user":{"password":"long-enough-password"}}`, http.StatusBadRequest},
		{"leading dot", ".alice", `{"user":{"password":"long-enough-password"}}`, http.StatusBadRequest},
		{"space in name", "a%20b", `{"user":{"password":"long-enough-password"}}`, http.StatusBadRequest},
		{"65 characters", strings.Repeat("a", 65), `{"user":{"password":"long-enough-password"}}`, http.StatusBadRequest},
		{"short password", "alice", `{"user":{"password":"short"}}`, http.StatusBadRequest},
		{"11 characters", "alice", `{"user":{"password":"elevenchars"}}`, http.StatusBadRequest},
		{"73 bytes", "alice", `{"user":{"password":"` + strings.Repeat("p", 73) + `"}}`, http.StatusBadRequest},
		{"no password on create", "alice", `{"user":{"is_admin":false}}`, http.StatusBadRequest},
		{"no user object", "alice", `{}`, http.StatusBadRequest},
		{"empty body", "alice", ``, http.StatusBadRequest},
		{"malformed JSON", "alice", `{"user":`, http.StatusBadRequest},
		{"unknown field", "alice", `{"user":{"password":"long-enough-password","roles":{}}}`, http.StatusBadRequest},
		{"unknown top-level field", "alice", `{"user":{"password":"long-enough-password"},"x":1}`, http.StatusBadRequest},
		{"trailing data", "alice", `{"user":{"password":"long-enough-password"}} {}`, http.StatusBadRequest},
		{"wrong type", "alice", `{"user":{"password":12345678901234}}`, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := s.Do(t, http.MethodPut, "/keppel/v1/users/"+tc.user, admin, nil, strings.NewReader(tc.body))
			wantError(t, r, tc.status, "BAD_REQUEST")
		})
	}
	// None of them created a user.
	r := s.Do(t, http.MethodGet, "/keppel/v1/users", admin, nil, nil)
	var list userListJSON
	if err := json.Unmarshal(r.Body, &list); err != nil || len(list.Users) != 1 {
		t.Errorf("users after bad requests: %s", r.Body)
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	admin := s.Token(t)
	createUser(t, s, admin, "boss", "boss-password", false)
	createUser(t, s, admin, "carol", "carol-password", false)
	setRole(t, s, admin, "boss", "tenant1", models.RoleAdmin)
	setRole(t, s, admin, "boss", "tenant2", models.RoleViewer)
	boss := login(t, s, "boss", "boss-password")

	// A tenant admin manages the roles of her tenant.
	setRole(t, s, boss, "carol", "tenant1", models.RoleViewer)
	setRole(t, s, boss, "carol", "tenant1", models.RolePusher)
	r := s.Do(t, http.MethodGet, "/keppel/v1/tenants/tenant1/members", boss, nil, nil)
	wantStatus(t, r, http.StatusOK)
	var members struct {
		Members map[string]models.Role `json:"members"`
	}
	if err := json.Unmarshal(r.Body, &members); err != nil || len(members.Members) != 2 ||
		members.Members["boss"] != models.RoleAdmin || members.Members["carol"] != models.RolePusher {
		t.Errorf("members = %s", r.Body)
	}

	// As a viewer in tenant2, she sees the members but cannot change roles;
	// in tenant3, where she has no role, the tenant does not exist for her.
	r = s.Do(t, http.MethodGet, "/keppel/v1/tenants/tenant2/members", boss, nil, nil)
	wantStatus(t, r, http.StatusOK)
	r = s.Do(t, http.MethodPut, "/keppel/v1/users/carol/roles/tenant2", boss, nil, strings.NewReader(`{"role":"viewer"}`))
	wantError(t, r, http.StatusForbidden, "DENIED")
	r = s.Do(t, http.MethodDelete, "/keppel/v1/users/boss/roles/tenant2", boss, nil, nil)
	wantError(t, r, http.StatusForbidden, "DENIED")
	r = s.Do(t, http.MethodPut, "/keppel/v1/users/carol/roles/tenant3", boss, nil, strings.NewReader(`{"role":"viewer"}`))
	wantError(t, r, http.StatusNotFound, "NOT_FOUND")
	r = s.Do(t, http.MethodGet, "/keppel/v1/tenants/tenant3/members", boss, nil, nil)
	wantError(t, r, http.StatusNotFound, "NOT_FOUND")
	// A server admin sees every tenant, also one without members.
	r = s.Do(t, http.MethodGet, "/keppel/v1/tenants/tenant3/members", admin, nil, nil)
	if got := strings.TrimSpace(string(r.Body)); r.Status != http.StatusOK || got != `{"members":{}}` {
		t.Errorf("members of an empty tenant: %d %s", r.Status, got)
	}

	bad := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"unknown role", "carol/roles/tenant1", `{"role":"owner"}`, http.StatusBadRequest, "BAD_REQUEST"},
		{"empty role", "carol/roles/tenant1", `{"role":""}`, http.StatusBadRequest, "BAD_REQUEST"},
		{"no role", "carol/roles/tenant1", `{}`, http.StatusBadRequest, "BAD_REQUEST"},
		{"malformed JSON", "carol/roles/tenant1", `{"role":`, http.StatusBadRequest, "BAD_REQUEST"},
		{"unknown field", "carol/roles/tenant1", `{"role":"viewer","tenant":"x"}`, http.StatusBadRequest, "BAD_REQUEST"},
		{"bad tenant", "carol/roles/a%20b", `{"role":"viewer"}`, http.StatusBadRequest, "BAD_REQUEST"},
		{"bad user name", "Carol/roles/tenant1", `{"role":"viewer"}`, http.StatusBadRequest, "BAD_REQUEST"},
		{"unknown user", "dave/roles/tenant1", `{"role":"viewer"}`, http.StatusNotFound, "NOT_FOUND"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := s.Do(t, http.MethodPut, "/keppel/v1/users/"+tc.path, boss, nil, strings.NewReader(tc.body))
			wantError(t, r, tc.status, tc.code)
		})
	}
	t.Run("removing a role", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodDelete, "/keppel/v1/users/dave/roles/tenant1", boss, nil, nil)
		wantError(t, r, http.StatusNotFound, "NOT_FOUND")
		r = s.Do(t, http.MethodDelete, "/keppel/v1/users/carol/roles/tenant1", boss, nil, nil)
		wantStatus(t, r, http.StatusNoContent)
		r = s.Do(t, http.MethodGet, "/keppel/v1/tenants/tenant1/members", boss, nil, nil)
		if strings.Contains(string(r.Body), "carol") {
			t.Errorf("carol is still a member: %s", r.Body)
		}
		r = s.Do(t, http.MethodGet, "/keppel/v1/audit?action=role.remove", admin, nil, nil)
		if !bytes.Contains(r.Body, []byte(`"tenant1"`)) || !bytes.Contains(r.Body, []byte(`"boss"`)) {
			t.Errorf("role.remove events = %s", r.Body)
		}
	})
}

type apiKeyResponse struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	CreatedAt string  `json:"created_at"`
	ExpiresAt *string `json:"expires_at"`
	RevokedAt *string `json:"revoked_at"`
	Secret    string  `json:"secret"`
}

var apiKeyRx = regexp.MustCompile(`^keppel_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$`)

func createAPIKey(t *testing.T, s *test.Server, token, user, body string) apiKeyResponse {
	t.Helper()
	r := s.Do(t, http.MethodPost, "/keppel/v1/users/"+user+"/api_keys", token, nil, strings.NewReader(body))
	wantStatus(t, r, http.StatusCreated)
	var out struct {
		APIKey apiKeyResponse `json:"api_key"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatal(err)
	}
	m := apiKeyRx.FindStringSubmatch(out.APIKey.Secret)
	if m == nil || m[1] != out.APIKey.ID {
		t.Fatalf("created key %s", r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", r.Header.Get("Cache-Control"))
	}
	return out.APIKey
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	admin := s.Token(t)
	createUser(t, s, admin, "alice", "alice-password", false)
	createUser(t, s, admin, "bob", "bob-password", false)
	alice := login(t, s, "alice", "alice-password")

	key := createAPIKey(t, s, alice, "alice", `{"name":"ci"}`)
	if key.Name != "ci" || key.ExpiresAt != nil || key.RevokedAt != nil {
		t.Errorf("key = %+v", key)
	}
	if created, err := time.Parse(time.RFC3339, key.CreatedAt); err != nil || time.Since(created) > time.Minute {
		t.Errorf("created_at %q", key.CreatedAt)
	}
	expiring := createAPIKey(t, s, admin, "alice", `{"name":"deploy bot","expires_in_days":7}`)
	if expiring.ExpiresAt == nil {
		t.Fatalf("key without expiry: %+v", expiring)
	}
	if exp, err := time.Parse(time.RFC3339, *expiring.ExpiresAt); err != nil || time.Until(exp) < 6*24*time.Hour || time.Until(exp) > 8*24*time.Hour {
		t.Errorf("expires_at %q", *expiring.ExpiresAt)
	}

	// The key is the password: for the token endpoint, as docker login uses it.
	tok := login(t, s, "alice", key.Secret)
	r := s.Do(t, http.MethodGet, "/keppel/v1/users/alice/api_keys", tok, nil, nil)
	wantStatus(t, r, http.StatusOK)
	var list struct {
		APIKeys []apiKeyResponse `json:"api_keys"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, k := range list.APIKeys {
		ids = append(ids, k.ID)
		if k.Secret != "" {
			t.Errorf("the listing shows a secret: %s", r.Body)
		}
	}
	slices.Sort(ids)
	want := []string{key.ID, expiring.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("listed keys %v, want %v", ids, want)
	}
	if bytes.Contains(r.Body, []byte(key.Secret[len("keppel_")+13:])) {
		t.Errorf("the listing contains a secret")
	}

	// Others' keys are off limits for everybody but server admins.
	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/keppel/v1/users/bob/api_keys", ""},
		{http.MethodPost, "/keppel/v1/users/bob/api_keys", `{"name":"x"}`},
		{http.MethodDelete, "/keppel/v1/users/bob/api_keys/" + key.ID, ""},
		{http.MethodGet, "/keppel/v1/users/nobody/api_keys", ""},
	} {
		r := s.Do(t, req.method, req.path, alice, nil, strings.NewReader(req.body))
		wantError(t, r, http.StatusForbidden, "DENIED")
	}
	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/keppel/v1/users/nobody/api_keys", ""},
		{http.MethodPost, "/keppel/v1/users/nobody/api_keys", `{"name":"x"}`},
		{http.MethodDelete, "/keppel/v1/users/nobody/api_keys/" + key.ID, ""},
		// Bob has no key with that ID: it is alice's.
		{http.MethodDelete, "/keppel/v1/users/bob/api_keys/" + key.ID, ""},
		{http.MethodDelete, "/keppel/v1/users/alice/api_keys/0123456789ab", ""},
		{http.MethodDelete, "/keppel/v1/users/alice/api_keys/not-an-id", ""},
	} {
		r := s.Do(t, req.method, req.path, admin, nil, strings.NewReader(req.body))
		wantError(t, r, http.StatusNotFound, "NOT_FOUND")
	}
	for _, body := range []string{
		``, `{`, `{}`, `{"name":""}`, `{"name":"   "}`, `{"name":"` + strings.Repeat("n", 65) + `"}`,
		`{"name":"a\nb"}`, `{"name":"ci","expires_in_days":0}`, `{"name":"ci","expires_in_days":-1}`,
		`{"name":"ci","expires_in_days":3651}`, `{"name":"ci","expires_in_days":"7"}`, `{"name":"ci","scope":"all"}`,
	} {
		r := s.Do(t, http.MethodPost, "/keppel/v1/users/alice/api_keys", alice, nil, strings.NewReader(body))
		wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
	}
	r = s.Do(t, http.MethodPost, "/keppel/v1/users/Alice/api_keys", admin, nil, strings.NewReader(`{"name":"x"}`))
	wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")

	// Revoking: by the owner, then the key no longer logs in.
	r = s.Do(t, http.MethodDelete, "/keppel/v1/users/alice/api_keys/"+key.ID, alice, nil, nil)
	wantStatus(t, r, http.StatusNoContent)
	r = s.Do(t, http.MethodGet, tokenQuery(s), "", basic("alice", key.Secret), nil)
	wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
	r = s.Do(t, http.MethodGet, "/keppel/v1/users/alice/api_keys", admin, nil, nil)
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	for _, k := range list.APIKeys {
		if (k.ID == key.ID) != (k.RevokedAt != nil) {
			t.Errorf("revoked_at of %s: %v", k.ID, k.RevokedAt)
		}
	}
	// Somebody else's key is no password for alice.
	bobKey := createAPIKey(t, s, admin, "bob", `{"name":"bob's"}`)
	r = s.Do(t, http.MethodGet, tokenQuery(s), "", basic("alice", bobKey.Secret), nil)
	wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")

	// Audit events name the key, never the secret.
	r = s.Do(t, http.MethodGet, "/keppel/v1/audit?limit=100", admin, nil, nil)
	wantStatus(t, r, http.StatusOK)
	for _, want := range []string{`"api_key.create"`, `"api_key.revoke"`, key.ID} {
		if !bytes.Contains(r.Body, []byte(want)) {
			t.Errorf("audit events do not contain %s: %s", want, r.Body)
		}
	}
	for _, secret := range []string{key.Secret, expiring.Secret, bobKey.Secret} {
		part := secret[len("keppel_")+13:]
		if bytes.Contains(r.Body, []byte(part)) || bytes.Contains(r.Body, []byte(hexSum([]byte(part)))) {
			t.Errorf("an audit event contains a secret: %s", r.Body)
		}
	}
}

// TestTenantRolesEndToEnd: a pusher in tenant1 gets push but not delete on
// the tenant's account and nothing on another tenant's, with the password
// and with an API key, through the Docker token flow.
func TestTenantRolesEndToEnd(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{"test": "tenant1", "other": "tenant2"}})
	admin := s.Token(t)
	createUser(t, s, admin, "pusher", "pusher-password", false)
	setRole(t, s, admin, "pusher", "tenant1", models.RolePusher)

	scopes := []string{"repository:test/x:pull,push,delete", "repository:other/x:pull,push,delete"}
	_, claims := decodeToken(t, s.Do(t, http.MethodGet, tokenQuery(s, scopes...), "", basic("pusher", "pusher-password"), nil))
	got := map[string][]string{}
	for _, a := range claims.Access {
		got[a.Name] = a.Actions
	}
	if !slices.Equal(got["test/x"], []string{"pull", "push"}) || len(got["other/x"]) != 0 {
		t.Errorf("granted %+v, want pull and push on test/x only", claims.Access)
	}
	if claims.Roles["tenant1"] != models.RolePusher {
		t.Errorf("token roles = %v", claims.Roles)
	}

	// docker login with an API key: /v2/ challenges, the key gets a token
	// with basic credentials, and the token works for pushing.
	tok := login(t, s, "pusher", "pusher-password")
	key := createAPIKey(t, s, tok, "pusher", `{"name":"ci"}`)
	r := s.Do(t, http.MethodGet, "/v2/", "", nil, nil)
	if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), "/keppel/v1/auth") {
		t.Fatalf("/v2/: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	_, keyClaims := decodeToken(t, s.Do(t, http.MethodGet, tokenQuery(s, scopes...), "", basic("pusher", key.Secret), nil))
	got = map[string][]string{}
	for _, a := range keyClaims.Access {
		got[a.Name] = a.Actions
	}
	if keyClaims.Subject != "pusher" || !slices.Equal(got["test/x"], []string{"pull", "push"}) || len(got["other/x"]) != 0 {
		t.Errorf("API key token: subject %q, access %+v", keyClaims.Subject, keyClaims.Access)
	}
	// The same with the form post of OAuth2 clients.
	form := url.Values{"grant_type": {"password"}, "username": {"pusher"}, "password": {key.Secret},
		"service": {s.Host}, "scope": {"repository:test/x:pull,push"}}
	r = s.Do(t, http.MethodPost, "/keppel/v1/auth", "", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(form.Encode()))
	wantStatus(t, r, http.StatusOK)
	pushToken := decodeTokenString(t, r)

	if r := s.Do(t, http.MethodGet, "/v2/", pushToken, nil, nil); r.Status != http.StatusOK {
		t.Errorf("/v2/ with the token: %d %s", r.Status, r.Body)
	}
	content := []byte("pushed with an API key")
	digest := "sha256:" + hexSum(content)
	r = s.Do(t, http.MethodPost, "/v2/test/x/blobs/uploads/?digest="+digest, pushToken,
		http.Header{"Content-Type": {"application/octet-stream"}}, bytes.NewReader(content))
	wantStatus(t, r, http.StatusCreated)
	r = s.Do(t, http.MethodDelete, "/v2/test/x/blobs/"+digest, pushToken, nil, nil)
	if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
		t.Errorf("a pusher deleted a blob: %d %s", r.Status, r.Body)
	}
}

func hexSum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
