package auth_test

import (
	"context"
	"net"
	"reflect"
	"regexp"
	"testing"

	"keppel/internal/auth"
	"keppel/internal/models"
)

func testAuthorizer() *auth.Authorizer {
	accounts := map[string]models.Account{
		"test":     {Name: "test", AuthTenantID: "tenant1"},
		"other":    {Name: "other", AuthTenantID: "tenant2"},
		"deleting": {Name: "deleting", AuthTenantID: "tenant1", IsDeleting: true},
	}
	return &auth.Authorizer{
		Accounts: func(_ context.Context, name string) (models.Account, error) {
			a, ok := accounts[name]
			if !ok {
				return a, auth.ErrAccountNotFound
			}
			return a, nil
		},
		// A stand-in for the account's RBAC policies: public/* is
		// anonymously pullable, bob may push to "special", nobody may
		// delete in "locked", and "office" is pullable from 10.0.0.0/8.
		RBAC: func(a models.Account, repo, user string, ip net.IP) (auth.RBACDecision, error) {
			d := auth.RBACDecision{Granted: map[string]bool{}, Forbidden: map[string]bool{}}
			if a.Name != "test" {
				return d, nil
			}
			if regexp.MustCompile(`^public/.*$`).MatchString(repo) {
				d.Granted["anonymous_pull"] = true
			}
			if repo == "special" && user == "bob" {
				d.Granted["pull"], d.Granted["push"] = true, true
			}
			if repo == "locked" {
				d.Forbidden["delete"] = true
				d.Forbidden["push"] = true
			}
			if repo == "office" && user != "" && ip != nil && ip.IsPrivate() {
				d.Granted["pull"] = true
			}
			return d, nil
		},
	}
}

func repo(name string, actions ...string) auth.Scope { return auth.RepositoryScope(name, actions...) }

func TestAuthorizerGrant(t *testing.T) {
	t.Parallel()
	admin := &auth.Identity{Username: "admin", IsAdmin: true}
	alice := &auth.Identity{Username: "alice", Roles: map[string]models.Role{"tenant1": models.RolePusher}}
	bob := &auth.Identity{Username: "bob", Roles: map[string]models.Role{"tenant1": models.RoleViewer}}
	carol := &auth.Identity{Username: "carol", Roles: map[string]models.Role{"tenant2": models.RoleAdmin, "tenant1": models.RoleAdmin}}
	dave := &auth.Identity{Username: "dave"}
	office := net.ParseIP("10.1.2.3")
	outside := net.ParseIP("203.0.113.9")

	cases := []struct {
		name      string
		id        *auth.Identity
		ip        net.IP
		requested []auth.Scope
		want      auth.Grants
	}{
		{"pusher gets pull and push", alice, nil, []auth.Scope{repo("test/app", "pull", "push", "delete")}, auth.Grants{repo("test/app", "pull", "push")}},
		{"viewer gets pull", bob, nil, []auth.Scope{repo("test/app", "pull", "push")}, auth.Grants{repo("test/app", "pull")}},
		{"\"*\" is no repository action", carol, nil, []auth.Scope{repo("test/app", "*")}, auth.Grants{}},
		{"tenant admin asking explicitly", carol, nil, []auth.Scope{repo("test/app", "pull", "push", "delete")}, auth.Grants{repo("test/app", "pull", "push", "delete")}},
		{"no role in the tenant", alice, nil, []auth.Scope{repo("other/app", "pull")}, auth.Grants{}},
		{"no role anywhere", dave, nil, []auth.Scope{repo("test/app", "pull")}, auth.Grants{}},
		{"RBAC grant beyond the role", bob, nil, []auth.Scope{repo("test/special", "pull", "push")}, auth.Grants{repo("test/special", "pull", "push")}},
		{"forbid wins over the role", carol, nil, []auth.Scope{repo("test/locked", "pull", "push", "delete")}, auth.Grants{repo("test/locked", "pull")}},
		{"server admin is not bound by policies", admin, nil, []auth.Scope{repo("test/locked", "pull", "push", "delete")}, auth.Grants{repo("test/locked", "pull", "push", "delete")}},
		{"anonymous pull of a public repository", nil, nil, []auth.Scope{repo("test/public/x", "pull", "push")}, auth.Grants{repo("test/public/x", "pull")}},
		{"anonymous on a private repository", nil, nil, []auth.Scope{repo("test/app", "pull")}, auth.Grants{}},
		{"CIDR grant from inside", dave, office, []auth.Scope{repo("test/office", "pull")}, auth.Grants{repo("test/office", "pull")}},
		{"CIDR grant from outside", dave, outside, []auth.Scope{repo("test/office", "pull")}, auth.Grants{}},
		{"unknown account reveals nothing", alice, nil, []auth.Scope{repo("nosuch/app", "pull", "push")}, auth.Grants{}},
		{"unknown account for the server admin", admin, nil, []auth.Scope{repo("nosuch/app", "pull", "push")}, auth.Grants{repo("nosuch/app", "pull", "push")}},
		{"no push into a deleting account", carol, nil, []auth.Scope{repo("deleting/app", "pull", "push")}, auth.Grants{repo("deleting/app", "pull")}},
		{"malformed repository scope", admin, nil, []auth.Scope{repo("noslash", "pull")}, auth.Grants{}},
		{"catalog for users", dave, nil, []auth.Scope{auth.CatalogScope}, auth.Grants{auth.CatalogScope}},
		{"no catalog for anonymous", nil, nil, []auth.Scope{auth.CatalogScope}, auth.Grants{}},
		{"account view for a viewer", bob, nil, []auth.Scope{{Type: "keppel_account", Name: "test", Actions: []string{"view", "change"}}},
			auth.Grants{{Type: "keppel_account", Name: "test", Actions: []string{"view"}}}},
		{"account change for a tenant admin", carol, nil, []auth.Scope{{Type: "keppel_account", Name: "other", Actions: []string{"view", "change"}}},
			auth.Grants{{Type: "keppel_account", Name: "other", Actions: []string{"view", "change"}}}},
		{"account of another tenant", bob, nil, []auth.Scope{{Type: "keppel_account", Name: "other", Actions: []string{"view"}}}, auth.Grants{}},
		{"quota view for members only", alice, nil, []auth.Scope{
			{Type: "keppel_auth_tenant", Name: "tenant1", Actions: []string{"viewquota", "changequota"}},
			{Type: "keppel_auth_tenant", Name: "tenant2", Actions: []string{"viewquota"}}},
			auth.Grants{{Type: "keppel_auth_tenant", Name: "tenant1", Actions: []string{"viewquota"}}}},
		{"quota change for the server admin", admin, nil, []auth.Scope{{Type: "keppel_auth_tenant", Name: "tenant9", Actions: []string{"changequota"}}},
			auth.Grants{{Type: "keppel_auth_tenant", Name: "tenant9", Actions: []string{"changequota"}}}},
		{"api info for users", dave, nil, []auth.Scope{{Type: "keppel_api", Name: "info", Actions: []string{"access"}}},
			auth.Grants{{Type: "keppel_api", Name: "info", Actions: []string{"access"}}}},
		{"unknown scope types are dropped", admin, nil, []auth.Scope{{Type: "bogus", Name: "x", Actions: []string{"*"}}}, auth.Grants{}},
	}
	a := testAuthorizer()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := a.Grant(context.Background(), c.id, c.requested, c.ip)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("Grant returned nil; tokens must carry [] for no access")
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}
