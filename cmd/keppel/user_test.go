package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"keppel/internal/test"
)

// These tests set environment variables, so they do not run in parallel.

func TestUserCommands(t *testing.T) {
	isolateClient(t)
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	t.Setenv("KEPPEL_REGISTRY_URL", s.URL)
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)

	t.Setenv("KEPPEL_NEW_PASSWORD", "alice-password")
	if out := mustRun(t, "", "user", "create", "alice"); !strings.Contains(out, "user alice created") {
		t.Errorf("user create printed %q", out)
	}
	t.Setenv("KEPPEL_NEW_PASSWORD", "")
	// With --password-stdin, the first line is the caller's password and
	// the second the new user's.
	if out := mustRun(t, test.AdminPassword+"\ncarol-password\n", "user", "create", "carol", "--admin", "--password-stdin"); !strings.Contains(out, "admin: true") {
		t.Errorf("user create --admin printed %q", out)
	}
	out := mustRun(t, "", "user", "create", "bob", "--generate-password")
	m := regexp.MustCompile(`password: (\S{20,})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("user create --generate-password printed %q", out)
	}
	bobPassword := m[1]
	// Updating an existing user.
	if out := mustRun(t, "alice-password-2\n", "user", "create", "alice"); !strings.Contains(out, "user alice updated") {
		t.Errorf("second user create printed %q", out)
	}

	mustRun(t, "", "user", "set-role", "alice", "tenant1", "pusher")
	mustRun(t, "", "user", "set-role", "bob", "tenant1", "admin")
	mustRun(t, "", "user", "set-role", "bob", "tenant2", "viewer")

	out = mustRun(t, "", "user", "list")
	for _, want := range []string{"NAME", "ADMIN", "ROLES", "alice", "tenant1=pusher", "tenant1=admin,tenant2=viewer", "carol"} {
		if !strings.Contains(out, want) {
			t.Errorf("user list %q does not contain %q", out, want)
		}
	}
	var users []userJSON
	if err := json.Unmarshal([]byte(mustRun(t, "", "user", "list", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != 4 || users[1].Name != "alice" || users[1].Roles["tenant1"] != "pusher" || !users[3].IsAdmin {
		t.Errorf("user list --json = %+v", users)
	}

	out = mustRun(t, "", "tenant", "members", "tenant1")
	if !regexp.MustCompile(`alice\s+pusher`).MatchString(out) || !regexp.MustCompile(`bob\s+admin`).MatchString(out) {
		t.Errorf("tenant members printed %q", out)
	}
	var members map[string]string
	if err := json.Unmarshal([]byte(mustRun(t, "", "tenant", "members", "tenant1", "--json")), &members); err != nil || len(members) != 2 {
		t.Errorf("tenant members --json: %v %v", members, err)
	}

	// Bob, a tenant admin, manages roles in his tenant, with his password.
	t.Setenv("KEPPEL_PASSWORD", bobPassword)
	mustRun(t, "", "user", "remove-role", "alice", "tenant1", "--username", "bob")
	wantRunError(t, "DENIED", "", "user", "set-role", "alice", "tenant2", "viewer", "--username", "bob")
	wantRunError(t, "NOT_FOUND", "", "user", "set-role", "alice", "tenant3", "viewer", "--username", "bob")
	wantRunError(t, "DENIED", "", "user", "list", "--username", "bob")
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)
	if out := mustRun(t, "", "tenant", "members", "tenant1"); strings.Contains(out, "alice") {
		t.Errorf("alice is still a member: %q", out)
	}

	failures := []struct {
		want  string
		stdin string
		args  []string
	}{
		{"BAD_REQUEST", "", []string{"user", "set-role", "alice", "tenant1", "owner"}},
		{"NOT_FOUND", "", []string{"user", "set-role", "nobody", "tenant1", "viewer"}},
		{"CONFLICT", "", []string{"user", "delete", "admin"}},
		{"NOT_FOUND", "", []string{"user", "delete", "nobody"}},
		{"BAD_REQUEST", "short\n", []string{"user", "create", "dave"}},
		{"BAD_REQUEST", "dave-password\n", []string{"user", "create", "Dave"}},
		{"KEPPEL_NEW_PASSWORD", "", []string{"user", "create", "dave"}},
		{"arg", "", []string{"user", "set-role", "alice", "tenant1"}},
	}
	for _, tc := range failures {
		wantRunError(t, tc.want, tc.stdin, tc.args...)
	}

	if out := mustRun(t, "", "user", "delete", "bob"); !strings.Contains(out, "deleted") {
		t.Errorf("user delete printed %q", out)
	}
	if out := mustRun(t, "", "user", "list"); strings.Contains(out, "bob") {
		t.Errorf("bob is still listed: %q", out)
	}
}

func TestAPIKeyCommands(t *testing.T) {
	isolateClient(t)
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)
	t.Setenv("KEPPEL_NEW_PASSWORD", "alice-password")
	mustRun(t, "", "user", "create", "alice", "--registry", s.URL)
	t.Setenv("KEPPEL_NEW_PASSWORD", "")
	t.Setenv("KEPPEL_PASSWORD", "")

	mustRun(t, "alice-password\n", "login", "--registry", s.URL, "--username", "alice")
	// The key goes to standard output on a line of its own.
	out := mustRun(t, "", "user", "api-key", "create", "ci", "--expires-in-days", "30")
	keyRx := regexp.MustCompile(`(?m)^(keppel_([0-9a-f]{12})_[A-Za-z0-9_-]{43})$`)
	m := keyRx.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "cannot be shown again") {
		t.Fatalf("api-key create printed %q", out)
	}
	key, keyID := m[1], m[2]

	var created apiKeyJSON
	if err := json.Unmarshal([]byte(mustRun(t, "", "user", "api-key", "create", "other", "--json")), &created); err != nil ||
		!keyRx.MatchString(created.Secret) || created.Name != "other" || created.ExpiresAt != nil {
		t.Errorf("api-key create --json: %+v (%v)", created, err)
	}

	out = mustRun(t, "", "user", "api-key", "list")
	for _, want := range []string{"ID", "STATE", keyID, "ci", "other", "active"} {
		if !strings.Contains(out, want) {
			t.Errorf("api-key list %q does not contain %q", out, want)
		}
	}
	if strings.Contains(out, key) {
		t.Errorf("api-key list shows a secret: %q", out)
	}

	// The key logs in like a password.
	out = mustRun(t, key+"\n", "login", "--registry", s.URL, "--username", "alice")
	if !strings.Contains(out, "logged in") {
		t.Errorf("login with the key printed %q", out)
	}
	// Alice may not touch the admin's keys; the admin may list hers.
	wantRunError(t, "DENIED", "", "user", "api-key", "list", "--user", "admin")
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)
	if out := mustRun(t, "", "user", "api-key", "list", "--user", "alice", "--username", "admin"); !strings.Contains(out, keyID) {
		t.Errorf("admin's api-key list --user alice: %q", out)
	}
	t.Setenv("KEPPEL_PASSWORD", "")

	if out := mustRun(t, "", "user", "api-key", "revoke", keyID); !strings.Contains(out, "revoked") {
		t.Errorf("api-key revoke printed %q", out)
	}
	// The stored login is the revoked key now: it no longer works.
	wantRunError(t, "UNAUTHORIZED", "", "user", "api-key", "list")
	wantRunError(t, "UNAUTHORIZED", key+"\n", "login", "--registry", s.URL, "--username", "alice")
	mustRun(t, "alice-password\n", "login", "--registry", s.URL, "--username", "alice")
	var keys []apiKeyJSON
	if err := json.Unmarshal([]byte(mustRun(t, "", "user", "api-key", "list", "--json")), &keys); err != nil || len(keys) != 2 {
		t.Fatalf("api-key list --json: %+v (%v)", keys, err)
	}
	for _, k := range keys {
		if (k.ID == keyID) != (k.RevokedAt != nil) {
			t.Errorf("key %s revoked_at %v", k.ID, k.RevokedAt)
		}
	}
	wantRunError(t, "NOT_FOUND", "", "user", "api-key", "revoke", "0123456789ab")
	wantRunError(t, "BAD_REQUEST", "", "user", "api-key", "create", "x", "--expires-in-days", "0")
}

func TestQuotaCommands(t *testing.T) {
	isolateClient(t)
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	t.Setenv("KEPPEL_REGISTRY_URL", s.URL)
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)

	out := mustRun(t, "", "quota", "show", "tenant1")
	if !strings.Contains(out, "RESOURCE") || !strings.Contains(out, "manifests") || !strings.Contains(out, "bytes") {
		t.Errorf("quota show printed %q", out)
	}
	out = mustRun(t, "", "quota", "set", "tenant1", "--manifests", "10", "--bytes", "-1")
	if !regexp.MustCompile(`manifests\s+10\s+0`).MatchString(out) || !regexp.MustCompile(`bytes\s+unlimited\s+0`).MatchString(out) {
		t.Errorf("quota set printed %q", out)
	}
	// Setting one value keeps the other.
	mustRun(t, "", "quota", "set", "tenant1", "--bytes", "1000")
	var q quotaJSON
	if err := json.Unmarshal([]byte(mustRun(t, "", "quota", "show", "tenant1", "--json")), &q); err != nil ||
		q.Manifests.Quota != 10 || q.Bytes.Quota != 1000 || q.IsDefault {
		t.Errorf("quota show --json: %+v (%v)", q, err)
	}
	wantRunError(t, "--manifests", "", "quota", "set", "tenant1")
	wantRunError(t, "BAD_REQUEST", "", "quota", "set", "tenant1", "--manifests", "-2")
	wantRunError(t, "BAD_REQUEST", "", "quota", "show", "a b")
}

func TestAccountShowDelete(t *testing.T) {
	isolateClient(t)
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	t.Setenv("KEPPEL_REGISTRY_URL", s.URL)
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)

	out := mustRun(t, "", "account", "show", "test")
	for _, want := range []string{"test", "tenant1", "active", "RBAC policies"} {
		if !strings.Contains(out, want) {
			t.Errorf("account show %q does not contain %q", out, want)
		}
	}
	var a map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "", "account", "show", "test", "--json")), &a); err != nil || a["auth_tenant_id"] != "tenant1" {
		t.Errorf("account show --json: %v (%v)", a, err)
	}
	wantRunError(t, "NOT_FOUND", "", "account", "show", "nothing")

	if out := mustRun(t, "", "account", "delete", "test"); !strings.Contains(out, "being deleted") {
		t.Errorf("account delete printed %q", out)
	}
	// Deleted (or on its way out): it no longer shows as active.
	out, err := run(t, "", "account", "show", "test")
	if err == nil && strings.Contains(out, "active") {
		t.Errorf("account show after delete: %q", out)
	}
	wantRunError(t, "NOT_FOUND", "", "account", "delete", "nothing")
}
