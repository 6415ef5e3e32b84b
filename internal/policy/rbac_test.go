package policy

import (
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	"keppel/internal/models"
)

func TestValidateRBACPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy RBACPolicy
		// wantErr is a substring of the expected error ("" for valid policies).
		wantErr string
		// wantField is the field that the error must name.
		wantField string
	}{
		{name: "pull for user", policy: RBACPolicy{MatchUsername: "ci-.*", Permissions: []string{"pull"}}},
		{name: "push for user in repo", policy: RBACPolicy{MatchRepository: "app/.*", MatchUsername: "ci", Permissions: []string{"pull", "push"}}},
		{name: "delete for user", policy: RBACPolicy{MatchUsername: "ci", Permissions: []string{"pull", "delete"}}},
		{name: "pull from network", policy: RBACPolicy{MatchCIDR: "10.0.0.0/8", Permissions: []string{"pull"}}},
		{name: "push from network", policy: RBACPolicy{MatchCIDR: "2001:db8::/32", Permissions: []string{"pull", "push"}}},
		{name: "anonymous pull", policy: RBACPolicy{MatchRepository: "public/.*", Permissions: []string{"anonymous_pull"}}},
		{name: "anonymous first pull", policy: RBACPolicy{MatchRepository: ".*", Permissions: []string{"anonymous_pull", "anonymous_first_pull"}}},
		{name: "forbid only", policy: RBACPolicy{MatchRepository: "prod/.*", ForbiddenPermissions: []string{"delete"}}},
		{name: "forbid pull for everyone in repo", policy: RBACPolicy{MatchRepository: "secret/.*", ForbiddenPermissions: []string{"pull"}}},
		{name: "grant and forbid different", policy: RBACPolicy{MatchUsername: "bot", Permissions: []string{"pull"}, ForbiddenPermissions: []string{"push"}}},

		{name: "no match field", policy: RBACPolicy{Permissions: []string{"anonymous_pull"}},
			wantErr: `at least one of "match_repository", "match_username" and "match_cidr"`},
		{name: "bad repo regex", policy: RBACPolicy{MatchRepository: "a(", Permissions: []string{"anonymous_pull"}},
			wantErr: `"a(" is not a valid regular expression`, wantField: "match_repository"},
		{name: "regex escaping the anchor group", policy: RBACPolicy{MatchRepository: "a)|(b", Permissions: []string{"anonymous_pull"}},
			wantErr: "not a valid regular expression", wantField: "match_repository"},
		{name: "bad user regex", policy: RBACPolicy{MatchUsername: "[", Permissions: []string{"pull"}},
			wantErr: "not a valid regular expression", wantField: "match_username"},
		{name: "overlong regex", policy: RBACPolicy{MatchUsername: strings.Repeat("a", MaxRegexLength+1), Permissions: []string{"pull"}},
			wantErr: "longer than 1024 bytes", wantField: "match_username"},
		{name: "bad CIDR", policy: RBACPolicy{MatchCIDR: "10.0.0.0/33", Permissions: []string{"pull"}},
			wantErr: `"10.0.0.0/33" is not a valid CIDR`, wantField: "match_cidr"},
		{name: "IP without prefix", policy: RBACPolicy{MatchCIDR: "10.0.0.1", Permissions: []string{"pull"}},
			wantErr: "not a valid CIDR", wantField: "match_cidr"},
		{name: "CIDR matching everything", policy: RBACPolicy{MatchCIDR: "0.0.0.0/0", Permissions: []string{"pull"}},
			wantErr: "matches every address", wantField: "match_cidr"},
		{name: "IPv6 CIDR matching everything", policy: RBACPolicy{MatchCIDR: "::/0", Permissions: []string{"pull"}},
			wantErr: "matches every address", wantField: "match_cidr"},
		{name: "unknown permission", policy: RBACPolicy{MatchUsername: "a", Permissions: []string{"pull", "admin"}},
			wantErr: `"admin" is not a permission`, wantField: "permissions"},
		{name: "unknown forbidden permission", policy: RBACPolicy{MatchUsername: "a", ForbiddenPermissions: []string{"Pull"}},
			wantErr: `"Pull" is not a permission`, wantField: "forbidden_permissions"},
		{name: "no permission", policy: RBACPolicy{MatchUsername: "a"},
			wantErr: "must grant or forbid at least one permission", wantField: "permissions"},
		{name: "granted and forbidden", policy: RBACPolicy{MatchUsername: "a", Permissions: []string{"pull"}, ForbiddenPermissions: []string{"pull"}},
			wantErr: `"pull" is both granted and forbidden`, wantField: "forbidden_permissions"},
		{name: "pull without user or network", policy: RBACPolicy{MatchRepository: ".*", Permissions: []string{"pull"}},
			wantErr: `granting "pull" needs "match_username" or "match_cidr"`, wantField: "permissions"},
		{name: "delete without user or network", policy: RBACPolicy{MatchRepository: ".*", Permissions: []string{"pull", "delete"}},
			wantErr: `granting "pull" needs "match_username" or "match_cidr"`, wantField: "permissions"},
		{name: "anonymous pull with user", policy: RBACPolicy{MatchUsername: "a", Permissions: []string{"anonymous_pull"}},
			wantErr: `must be empty in a policy that grants or forbids "anonymous_pull"`, wantField: "match_username"},
		{name: "forbidden anonymous first pull with user", policy: RBACPolicy{MatchUsername: "a", ForbiddenPermissions: []string{"anonymous_first_pull"}},
			wantErr: `"anonymous_first_pull"`, wantField: "match_username"},
		{name: "push without pull", policy: RBACPolicy{MatchUsername: "a", Permissions: []string{"push"}},
			wantErr: `granting "push" needs "pull" as well`, wantField: "permissions"},
		{name: "delete without pull", policy: RBACPolicy{MatchCIDR: "10.0.0.0/8", Permissions: []string{"delete"}},
			wantErr: `granting "delete" needs "pull" as well`, wantField: "permissions"},
		{name: "anonymous first pull alone", policy: RBACPolicy{MatchRepository: ".*", Permissions: []string{"anonymous_first_pull"}},
			wantErr: `granting "anonymous_first_pull" needs "anonymous_pull" or "pull" as well`, wantField: "permissions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Put the policy second, to check that the error names its index.
			valid := RBACPolicy{MatchRepository: ".*", Permissions: []string{"anonymous_pull"}}
			_, err := ValidateRBACPolicies([]RBACPolicy{valid, tt.policy})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("expected an error containing %q", tt.wantErr)
			}
			var verr *ValidationError
			if !errors.As(err, &verr) || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v is not a *ValidationError matching ErrInvalidPolicy", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if verr.List != "rbac_policies" || verr.Index != 1 || verr.Field != tt.wantField {
				t.Errorf("error names %s[%d].%s, want rbac_policies[1].%s", verr.List, verr.Index, verr.Field, tt.wantField)
			}
			wantPrefix := "rbac_policies[1]"
			if tt.wantField != "" {
				wantPrefix += "." + tt.wantField
			}
			if !strings.HasPrefix(err.Error(), wantPrefix+": ") {
				t.Errorf("error %q does not start with %q", err, wantPrefix)
			}
		})
	}
}

func TestValidateRBACPoliciesNormalizes(t *testing.T) {
	t.Parallel()
	in := []RBACPolicy{
		{MatchCIDR: "10.1.2.3/8", Permissions: []string{"push", "pull", "push"}},
		{MatchCIDR: "2001:DB8::1/32", MatchUsername: "x", ForbiddenPermissions: []string{}, Permissions: []string{"pull"}},
		{MatchCIDR: "::ffff:192.168.0.0/112", Permissions: []string{"pull"}},
		{MatchRepository: "a", ForbiddenPermissions: []string{"delete"}},
	}
	got, err := ValidateRBACPolicies(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []RBACPolicy{
		{MatchCIDR: "10.0.0.0/8", Permissions: []string{"pull", "push"}},
		{MatchCIDR: "2001:db8::/32", MatchUsername: "x", Permissions: []string{"pull"}},
		{MatchCIDR: "192.168.0.0/16", Permissions: []string{"pull"}},
		{MatchRepository: "a", Permissions: []string{}, ForbiddenPermissions: []string{"delete"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	if in[0].MatchCIDR != "10.1.2.3/8" {
		t.Error("ValidateRBACPolicies changed its input")
	}
}

func TestEvaluateRBAC(t *testing.T) {
	t.Parallel()
	policies := []RBACPolicy{
		/* 0 */ {MatchRepository: "library/.*", Permissions: []string{"anonymous_pull"}},
		/* 1 */ {MatchRepository: "app/.*", MatchUsername: "ci-.*", Permissions: []string{"pull", "push"}},
		/* 2 */ {MatchCIDR: "10.0.0.0/8", Permissions: []string{"pull"}},
		/* 3 */ {MatchCIDR: "2001:db8::/32", MatchRepository: "v6/.*", Permissions: []string{"pull", "push"}},
		/* 4 */ {MatchRepository: "app/secret", ForbiddenPermissions: []string{"pull", "push"}},
		/* 5 */ {MatchUsername: "intern", ForbiddenPermissions: []string{"delete"}},
	}
	pull := NewPermissionSet(PermPull)
	tests := []struct {
		name          string
		req           RBACRequest
		wantGranted   PermissionSet
		wantForbidden PermissionSet
	}{
		{"anonymous in library", RBACRequest{RepoName: "library/alpine"}, NewPermissionSet(PermAnonymousPull), 0},
		{"anchoring: prefix", RBACRequest{RepoName: "xlibrary/a"}, 0, 0},
		{"anchoring: suffix", RBACRequest{RepoName: "a/library/b"}, 0, 0},
		{"anchoring: bare account-like name", RBACRequest{RepoName: "library"}, 0, 0},
		{"user matches", RBACRequest{RepoName: "app/web", Username: "ci-bot"}, NewPermissionSet(PermPull, PermPush), 0},
		{"user regex anchored", RBACRequest{RepoName: "app/web", Username: "xci-bot"}, 0, 0},
		{"user policy never applies to anonymous", RBACRequest{RepoName: "app/web"}, 0, 0},
		{"IPv4 in network", RBACRequest{RepoName: "x", RemoteIP: net.ParseIP("10.1.2.3")}, pull, 0},
		{"IPv4-mapped IPv6 in network", RBACRequest{RepoName: "x", RemoteIP: net.ParseIP("::ffff:10.1.2.3")}, pull, 0},
		{"4-byte IPv4 in network", RBACRequest{RepoName: "x", RemoteIP: net.IPv4(10, 9, 9, 9).To4()}, pull, 0},
		{"IPv4 outside network", RBACRequest{RepoName: "x", RemoteIP: net.ParseIP("11.0.0.1")}, 0, 0},
		{"IPv6 in network", RBACRequest{RepoName: "v6/a", RemoteIP: net.ParseIP("2001:db8:1::5")}, NewPermissionSet(PermPull, PermPush), 0},
		{"IPv6 in network, other repo", RBACRequest{RepoName: "v4/a", RemoteIP: net.ParseIP("2001:db8:1::5")}, 0, 0},
		{"IPv6 outside network", RBACRequest{RepoName: "v6/a", RemoteIP: net.ParseIP("2001:db9::5")}, 0, 0},
		{"no address", RBACRequest{RepoName: "v6/a", Username: "ci-bot"}, 0, 0},
		{"grants and forbids combine", RBACRequest{RepoName: "app/secret", Username: "ci-x", RemoteIP: net.ParseIP("10.0.0.1")},
			NewPermissionSet(PermPull, PermPush), NewPermissionSet(PermPull, PermPush)},
		{"forbid by user", RBACRequest{RepoName: "anything", Username: "intern"}, 0, NewPermissionSet(PermDelete)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			granted, forbidden := EvaluateRBAC(policies, tt.req)
			if granted != tt.wantGranted || forbidden != tt.wantForbidden {
				t.Errorf("got granted=%q forbidden=%q, want granted=%q forbidden=%q",
					granted, forbidden, tt.wantGranted, tt.wantForbidden)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	policies := []RBACPolicy{
		{MatchRepository: "public/.*", Permissions: []string{"anonymous_pull"}},
		{MatchRepository: "mirror/.*", Permissions: []string{"anonymous_pull", "anonymous_first_pull"}},
		{MatchRepository: "public/frozen", ForbiddenPermissions: []string{"push", "delete"}},
		{MatchRepository: "public/hidden", ForbiddenPermissions: []string{"anonymous_pull"}},
		{MatchRepository: "vault/.*", ForbiddenPermissions: []string{"pull"}},
		{MatchCIDR: "192.0.2.0/24", Permissions: []string{"pull", "push"}},
		{MatchUsername: "robot", MatchRepository: "ci/.*", Permissions: []string{"pull", "push", "delete"}},
	}
	none := PermissionSet(0)
	viewer := RolePermissions(models.RoleViewer)
	pusher := RolePermissions(models.RolePusher)
	admin := RolePermissions(models.RoleAdmin)
	set := NewPermissionSet
	tests := []struct {
		name     string
		req      RBACRequest
		fromRole PermissionSet
		want     PermissionSet
	}{
		{"anonymous without policy", RBACRequest{RepoName: "private/a"}, none, none},
		{"anonymous pull", RBACRequest{RepoName: "public/a"}, none, set(PermPull, PermAnonymousPull)},
		{"anonymous first pull", RBACRequest{RepoName: "mirror/a"}, none, set(PermPull, PermAnonymousPull, PermAnonymousFirstPull)},
		{"anonymous ignores a role passed by mistake", RBACRequest{RepoName: "private/a"}, admin, none},
		{"anonymous gets no pull from a network grant", RBACRequest{RepoName: "a", RemoteIP: net.ParseIP("192.0.2.7")}, none, none},
		{"user gets network grant", RBACRequest{RepoName: "a", Username: "bob", RemoteIP: net.ParseIP("192.0.2.7")}, none, set(PermPull, PermPush)},
		{"user gets anonymous pull", RBACRequest{RepoName: "public/a", Username: "bob"}, none, set(PermPull, PermAnonymousPull)},
		{"role only", RBACRequest{RepoName: "private/a", Username: "bob"}, pusher, set(PermPull, PermPush)},
		{"role plus grant", RBACRequest{RepoName: "ci/x", Username: "robot"}, viewer, set(PermPull, PermPush, PermDelete)},
		{"forbid wins over role", RBACRequest{RepoName: "public/frozen", Username: "root"}, admin, set(PermPull, PermAnonymousPull)},
		{"forbidden pull wins over role and anonymous pull", RBACRequest{RepoName: "vault/x", Username: "root"}, admin, set(PermPush, PermDelete)},
		{"forbidden anonymous_pull removes its pull", RBACRequest{RepoName: "public/hidden"}, none, none},
		{"forbidden anonymous_pull keeps the role's pull", RBACRequest{RepoName: "public/hidden", Username: "bob"}, viewer, set(PermPull)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Authorize(policies, tt.req, tt.fromRole)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			for _, p := range allPermissions {
				if tt.req.Allowed(policies, tt.fromRole, p) != tt.want.Has(p) {
					t.Errorf("Allowed(%s) disagrees with Authorize", p)
				}
			}
		})
	}
}

func TestPermissionSet(t *testing.T) {
	t.Parallel()
	s := NewPermissionSet(PermDelete, PermPull, "bogus")
	if s.String() != "pull,delete" {
		t.Errorf("String() = %q", s.String())
	}
	if !s.Has(PermPull) || s.Has(PermPush) || s.Has("bogus") {
		t.Error("Has is wrong")
	}
	if got := s.With(PermPush).Without(NewPermissionSet(PermPull)); got.String() != "push,delete" {
		t.Errorf("With/Without gave %q", got)
	}
	if !PermissionSet(0).IsEmpty() || PermissionSet(0).String() != "" || len(PermissionSet(0).List()) != 0 {
		t.Error("empty set is wrong")
	}
	if !Permission("anonymous_first_pull").IsValid() || Permission("").IsValid() {
		t.Error("IsValid is wrong")
	}
	roles := map[models.Role]string{
		models.RoleViewer: "pull", models.RolePusher: "pull,push", models.RoleAdmin: "pull,push,delete", "": "", "owner": "",
	}
	for role, want := range roles {
		if got := RolePermissions(role).String(); got != want {
			t.Errorf("RolePermissions(%q) = %q, want %q", role, got, want)
		}
	}
}
