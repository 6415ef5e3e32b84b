package keppelv1_test

import (
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"keppel/internal/models"
	"keppel/internal/test"
)

// TestTokenScopesLimitManagement: what a bearer token may do on the
// management API depends on the scopes it was issued for.
func TestTokenScopesLimitManagement(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{"ts-a": "ts", "ts-b": "ts"}})
	ctx := t.Context()
	hash, _ := bcrypt.GenerateFromPassword([]byte("ts-password"), bcrypt.MinCost)
	if err := s.Store().PutUser(ctx, models.User{Name: "ts-admin", PasswordHash: string(hash), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Store().SetRole(ctx, "ts-admin", "ts", models.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	session := s.TokenAs(t, "ts-admin", "ts-password")
	registryOnly := s.TokenAs(t, "ts-admin", "ts-password", "repository:ts-a/app:pull")
	viewA := s.TokenAs(t, "ts-admin", "ts-password", "keppel_account:ts-a:view")
	changeA := s.TokenAs(t, "ts-admin", "ts-password", "keppel_account:ts-a:change")
	quota := s.TokenAs(t, "ts-admin", "ts-password", "keppel_auth_tenant:ts:viewquota")

	cases := []struct {
		name, token, method, path string
		want                      int
	}{
		{"session token views", session, "GET", "/keppel/v1/accounts/ts-a", 200},
		{"session token deletes", session, "DELETE", "/keppel/v1/accounts/ts-b", 202},
		{"registry token cannot view", registryOnly, "GET", "/keppel/v1/accounts/ts-a", 404},
		{"registry token cannot delete", registryOnly, "DELETE", "/keppel/v1/accounts/ts-a", 404},
		{"view scope views", viewA, "GET", "/keppel/v1/accounts/ts-a", 200},
		{"view scope cannot delete", viewA, "DELETE", "/keppel/v1/accounts/ts-a", 403},
		{"change scope deletes", changeA, "DELETE", "/keppel/v1/accounts/ts-a", 202},
		{"quota scope shows quota", quota, "GET", "/keppel/v1/quotas/ts", 200},
		{"quota scope views the tenant read-only", quota, "DELETE", "/keppel/v1/accounts/ts-a", 403},
	}
	for _, c := range cases {
		r := s.Do(t, c.method, c.path, c.token, nil, nil)
		if r.Status != c.want {
			t.Errorf("%s: %s %s: %d %s, want %d", c.name, c.method, c.path, r.Status, r.Body, c.want)
		}
	}
}
