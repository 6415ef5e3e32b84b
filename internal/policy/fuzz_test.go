package policy

import (
	"errors"
	"net"
	"reflect"
	"testing"
)

// FuzzParseRBACPolicies checks that parsing never panics, that every error
// is a validation error, and that valid policies survive a canonical
// round trip unchanged and can be evaluated.
func FuzzParseRBACPolicies(f *testing.F) {
	for _, seed := range []string{
		"", "null", "[]", "{}", "[{}]",
		`[{"match_repository":"library/.*","permissions":["anonymous_pull"]}]`,
		`[{"match_username":"ci-.*","match_repository":"app/.*","permissions":["pull","push","delete"]}]`,
		`[{"match_cidr":"10.1.2.3/8","permissions":["pull"],"forbidden_permissions":["push"]}]`,
		`[{"match_cidr":"2001:db8::/32","permissions":["pull"]}]`,
		`[{"match_cidr":"::ffff:10.0.0.0/104","permissions":["pull"]}]`,
		`[{"match_repository":"a)|(b","permissions":["anonymous_pull"]}]`,
		`[{"match_repository":".*","permissions":["anonymous_pull","anonymous_first_pull","anonymous_pull"]}]`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		policies, err := ParseRBACPolicies(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v is not a validation error", err)
			}
			return
		}
		out, err := MarshalRBACPolicies(policies)
		if err != nil {
			t.Fatalf("marshalling parsed policies: %v", err)
		}
		again, err := ParseRBACPolicies(out)
		if err != nil {
			t.Fatalf("parsing canonical form %s: %v", out, err)
		}
		if !reflect.DeepEqual(policies, again) {
			t.Fatalf("round trip changed the policies:\n%#v\n%#v", policies, again)
		}
		if out2, _ := MarshalRBACPolicies(again); out2 != out {
			t.Fatalf("canonical form is not stable:\n%s\n%s", out, out2)
		}
		req := RBACRequest{RepoName: "library/alpine", Username: "ci-bot", RemoteIP: net.ParseIP("10.0.0.1")}
		Authorize(policies, req, RolePermissions("viewer"))
		Authorize(policies, RBACRequest{RepoName: "x", RemoteIP: net.ParseIP("2001:db8::1")}, 0)
	})
}

// FuzzParseTagPolicies checks that parsing never panics, that every error
// is a validation error, and that valid policies survive a canonical round
// trip unchanged and can be evaluated.
func FuzzParseTagPolicies(f *testing.F) {
	for _, seed := range []string{
		"", "null", "[]", "[{}]",
		`[{"match_repository":".*","block_delete":true}]`,
		`[{"match_repository":"prod/.*","except_repository":"prod/x","match_tag":"v.*","except_tag":"v0.*","block_overwrite":true,"block_push":true}]`,
		`[{"match_repository":"(","block_delete":true}]`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		policies, err := ParseTagPolicies(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v is not a validation error", err)
			}
			return
		}
		out, err := MarshalTagPolicies(policies)
		if err != nil {
			t.Fatalf("marshalling parsed policies: %v", err)
		}
		again, err := ParseTagPolicies(out)
		if err != nil {
			t.Fatalf("parsing canonical form %s: %v", out, err)
		}
		if !reflect.DeepEqual(policies, again) {
			t.Fatalf("round trip changed the policies:\n%#v\n%#v", policies, again)
		}
		CheckTagPush(policies, "prod/app", "v1", true, "sha256:a", "sha256:b")
		if v := CheckManifestDelete(policies, "prod/app", []string{"v1", "latest"}); v != nil {
			_ = v.Error()
		}
	})
}

// FuzzCompileRule checks that compiling never panics, that every error is
// an ErrInvalidRule, and that compiled rules evaluate within the cost limit
// without panicking.
func FuzzCompileRule(f *testing.F) {
	for _, seed := range []string{
		"", "true", "repo_name", `"a" in labels`, `labels["x"] == "y"`,
		`size(layers) <= 10 && layers.all(l, l.size < 100)`,
		`layers.all(a, layers.all(b, a.size >= 0))`,
		`annotations.exists(k, k.startsWith("org.") && annotations[k].matches("^v[0-9]+$"))`,
		`media_type == "application/vnd.oci.image.index.v1+json" || artifact_type != ""`,
		`[1, 2, 3].map(x, x * 2).size() == 3`, `1 / 0 == 1`, `labels[`,
	} {
		f.Add(seed)
	}
	inputs := []ManifestInput{image(0), image(3), {}, {Labels: map[string]string{"x": "y"}, Layers: []Layer{{Size: -1}}}}
	f.Fuzz(func(t *testing.T, expr string) {
		r, err := CompileRule(expr)
		if err != nil {
			if !errors.Is(err, ErrInvalidRule) {
				t.Fatalf("error %v is not an ErrInvalidRule", err)
			}
			return
		}
		for _, in := range inputs {
			if err := r.Check(in); err != nil && !errors.Is(err, ErrRuleNotSatisfied) {
				t.Fatalf("check error %v is not an ErrRuleNotSatisfied", err)
			}
		}
	})
}
