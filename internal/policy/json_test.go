package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRBACPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []RBACPolicy
		wantErr string
		// canonical is the expected MarshalRBACPolicies output of the result.
		canonical string
	}{
		{name: "empty string", in: "", want: []RBACPolicy{}},
		{name: "whitespace", in: " \n", want: []RBACPolicy{}},
		{name: "null", in: "null", want: []RBACPolicy{}},
		{name: "empty list", in: "[]", want: []RBACPolicy{}},
		{
			name: "SAP Keppel example",
			in: `[
				{"match_repository": "library/.*", "permissions": ["anonymous_pull"]},
				{"match_repository": "library/alpine", "match_username": ".*@tenant2", "permissions": ["pull", "push"]},
				{"match_cidr": "10.1.2.3/16", "forbidden_permissions": ["push"], "permissions": []}
			]`,
			want: []RBACPolicy{
				{MatchRepository: "library/.*", Permissions: []string{"anonymous_pull"}},
				{MatchRepository: "library/alpine", MatchUsername: ".*@tenant2", Permissions: []string{"pull", "push"}},
				{MatchCIDR: "10.1.0.0/16", Permissions: []string{}, ForbiddenPermissions: []string{"push"}},
			},
			canonical: `[{"match_repository":"library/.*","permissions":["anonymous_pull"]},` +
				`{"match_repository":"library/alpine","match_username":".*@tenant2","permissions":["pull","push"]},` +
				`{"match_cidr":"10.1.0.0/16","permissions":[],"forbidden_permissions":["push"]}]`,
		},
		{name: "no HTML escaping", in: `[{"match_username":"a<b>&c","permissions":["pull"]}]`,
			want:      []RBACPolicy{{MatchUsername: "a<b>&c", Permissions: []string{"pull"}}},
			canonical: `[{"match_username":"a<b>&c","permissions":["pull"]}]`},
		{name: "syntax error", in: `[{"match_repository": }]`, wantErr: "rbac_policies: invalid JSON"},
		{name: "not a list", in: `{"match_repository": ".*"}`, wantErr: "rbac_policies: invalid JSON"},
		{name: "unknown field", in: `[{"match_repo": ".*", "permissions": ["anonymous_pull"]}]`, wantErr: `unknown field "match_repo"`},
		{name: "trailing data", in: `[] []`, wantErr: "unexpected data after the list"},
		{name: "wrong type", in: `[{"match_cidr": 10, "permissions": ["pull"]}]`, wantErr: "invalid JSON"},
		{name: "invalid policy", in: `[{"match_cidr": "10.0.0.0/8", "permissions": ["pull"]}, {"permissions": ["pull"]}]`,
			wantErr: `rbac_policies[1]: a policy needs at least one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRBACPolicies(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidPolicy) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
			out, err := MarshalRBACPolicies(got)
			if err != nil {
				t.Fatal(err)
			}
			if out != tt.canonical {
				t.Errorf("canonical form is %s\nwant %s", out, tt.canonical)
			}
		})
	}
}

func TestMarshalRBACPoliciesValidates(t *testing.T) {
	t.Parallel()
	_, err := MarshalRBACPolicies([]RBACPolicy{{MatchRepository: ".*", Permissions: []string{"pull"}}})
	if !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("got %v, want a validation error", err)
	}
}

func TestParseTagPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		want      []TagPolicy
		wantErr   string
		canonical string
	}{
		{name: "empty string", in: "", want: []TagPolicy{}},
		{name: "null", in: " null ", want: []TagPolicy{}},
		{
			name: "all fields",
			in: `[{"block_delete": true, "match_repository": "prod/.*", "except_repository": "prod/x", "match_tag": "v.*",
				"except_tag": "v0.*", "block_overwrite": true, "block_push": false}]`,
			want: []TagPolicy{{MatchRepository: "prod/.*", ExceptRepository: "prod/x", MatchTag: "v.*", ExceptTag: "v0.*",
				BlockOverwrite: true, BlockDelete: true}},
			canonical: `[{"match_repository":"prod/.*","except_repository":"prod/x","match_tag":"v.*","except_tag":"v0.*",` +
				`"block_overwrite":true,"block_delete":true}]`,
		},
		{name: "syntax error", in: `[`, wantErr: "tag_policies: invalid JSON"},
		{name: "unknown field", in: `[{"match_repository": ".*", "block_everything": true}]`, wantErr: `unknown field "block_everything"`},
		{name: "missing match_repository", in: `[{"match_tag": ".*", "block_delete": true}]`,
			wantErr: "tag_policies[0].match_repository: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTagPolicies(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidPolicy) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
			out, err := MarshalTagPolicies(got)
			if err != nil {
				t.Fatal(err)
			}
			if out != tt.canonical {
				t.Errorf("canonical form is %s\nwant %s", out, tt.canonical)
			}
		})
	}
}

func TestPolicyString(t *testing.T) {
	t.Parallel()
	p := RBACPolicy{MatchRepository: "a/.*", MatchCIDR: "10.0.0.0/8", Permissions: []string{"pull"}}
	if got := p.String(); got != `match_repository "a/.*", match_cidr "10.0.0.0/8"` {
		t.Errorf("RBACPolicy.String() = %s", got)
	}
}
