package auth_test

import (
	"reflect"
	"testing"

	"keppel/internal/auth"
)

func TestParseScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   auth.Scope
		wantOK bool
	}{
		{"repository:test/foo:pull", auth.Scope{Type: "repository", Name: "test/foo", Actions: []string{"pull"}}, true},
		{"repository:test/foo:pull,push", auth.Scope{Type: "repository", Name: "test/foo", Actions: []string{"pull", "push"}}, true},
		{"repository:test/foo:push,pull,push,pull", auth.Scope{Type: "repository", Name: "test/foo", Actions: []string{"push", "pull"}}, true},
		{"repository:test/foo:pull,,push,", auth.Scope{Type: "repository", Name: "test/foo", Actions: []string{"pull", "push"}}, true},
		{"repository:test/foo:*", auth.Scope{Type: "repository", Name: "test/foo", Actions: []string{"*"}}, true},
		{"registry:catalog:*", auth.Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}, true},
		// A registry host with a port: the name keeps its colon.
		{"repository:localhost:5000/test/foo:pull", auth.Scope{Type: "repository", Name: "localhost:5000/test/foo", Actions: []string{"pull"}}, true},
		// Several colons in the name.
		{"keppel_api:a:b:c:info", auth.Scope{Type: "keppel_api", Name: "a:b:c", Actions: []string{"info"}}, true},
		// Garbage.
		{"", auth.Scope{}, false},
		{"repository", auth.Scope{}, false},
		{"repository:test/foo", auth.Scope{}, false},
		{":test/foo:pull", auth.Scope{}, false},
		{"repository::pull", auth.Scope{}, false},
		{"repository:test/foo:", auth.Scope{}, false},
		{"repository:test/foo:,,", auth.Scope{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, ok := auth.ParseScope(tc.in)
			if ok != tc.wantOK {
				t.Fatalf("ParseScope(%q) ok = %v, want %v", tc.in, ok, tc.wantOK)
			}
			if ok && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseScope(%q) = %#v, want %#v", tc.in, got, tc.want)
			}
			if ok {
				// The wire form parses back to the same scope.
				again, ok := auth.ParseScope(got.String())
				if !ok || !reflect.DeepEqual(again, got) {
					t.Errorf("round trip of %q gave %#v", got.String(), again)
				}
			}
		})
	}
}

func TestParseScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params []string
		want   []auth.Scope
	}{
		{"none", nil, nil},
		{"empty parameter", []string{""}, nil},
		{
			"one per parameter",
			[]string{"repository:a/b:pull", "repository:a/c:push"},
			[]auth.Scope{
				{Type: "repository", Name: "a/b", Actions: []string{"pull"}},
				{Type: "repository", Name: "a/c", Actions: []string{"push"}},
			},
		},
		{
			"several in one parameter",
			[]string{"repository:a/b:pull  repository:a/c:pull,push\tregistry:catalog:*"},
			[]auth.Scope{
				{Type: "repository", Name: "a/b", Actions: []string{"pull"}},
				{Type: "repository", Name: "a/c", Actions: []string{"pull", "push"}},
				{Type: "registry", Name: "catalog", Actions: []string{"*"}},
			},
		},
		{
			"garbage ignored",
			[]string{"nonsense", "repository:a/b:pull garbage repository:", "::"},
			[]auth.Scope{{Type: "repository", Name: "a/b", Actions: []string{"pull"}}},
		},
		{
			"names with ports",
			[]string{"repository:registry.example.com:443/a/b:pull,pull"},
			[]auth.Scope{{Type: "repository", Name: "registry.example.com:443/a/b", Actions: []string{"pull"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := auth.ParseScopes(tc.params)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseScopes(%q) = %#v, want %#v", tc.params, got, tc.want)
			}
		})
	}
}

func TestGrantsAllows(t *testing.T) {
	t.Parallel()
	grants := auth.Grants{
		auth.RepositoryScope("test/foo", auth.ActionPull, auth.ActionPush),
		auth.RepositoryScope("test/bar", "*"),
		auth.CatalogScope,
	}
	tests := []struct {
		typ, name, action string
		want              bool
	}{
		{"repository", "test/foo", "pull", true},
		{"repository", "test/foo", "push", true},
		{"repository", "test/foo", "delete", false},
		{"repository", "test/bar", "delete", true},
		{"repository", "test/bar", "pull", true},
		{"repository", "test/baz", "pull", false},
		{"repository", "test", "pull", false},
		{"repository", "test/foo/sub", "pull", false},
		{"registry", "catalog", "*", true},
		{"registry", "catalog", "list", true},
		// The type must match as well as the name.
		{"registry", "test/foo", "pull", false},
		{"keppel_account", "test/bar", "pull", false},
	}
	for _, tc := range tests {
		if got := grants.Allows(tc.typ, tc.name, tc.action); got != tc.want {
			t.Errorf("Allows(%s, %s, %s) = %v, want %v", tc.typ, tc.name, tc.action, got, tc.want)
		}
	}
	if (auth.Grants{}).Allows("repository", "test/foo", "pull") {
		t.Error("empty grants allow something")
	}
	if (auth.Grants(nil)).Allows("repository", "test/foo", "pull") {
		t.Error("nil grants allow something")
	}
}
