package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateTagPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		policy    TagPolicy
		wantErr   string
		wantField string
	}{
		{name: "minimal", policy: TagPolicy{MatchRepository: ".*", BlockDelete: true}},
		{name: "full", policy: TagPolicy{MatchRepository: "prod/.*", ExceptRepository: "prod/tmp", MatchTag: "v.*", ExceptTag: "v0.*",
			BlockOverwrite: true, BlockDelete: true, BlockPush: true}},
		{name: "no repository", policy: TagPolicy{MatchTag: "v.*", BlockDelete: true},
			wantErr: `is required`, wantField: "match_repository"},
		{name: "no block", policy: TagPolicy{MatchRepository: ".*"},
			wantErr: `at least one of "block_overwrite", "block_delete" and "block_push"`},
		{name: "bad match_repository", policy: TagPolicy{MatchRepository: "(", BlockPush: true},
			wantErr: "not a valid regular expression", wantField: "match_repository"},
		{name: "bad except_repository", policy: TagPolicy{MatchRepository: ".*", ExceptRepository: "*", BlockPush: true},
			wantErr: "not a valid regular expression", wantField: "except_repository"},
		{name: "bad match_tag", policy: TagPolicy{MatchRepository: ".*", MatchTag: "[a-", BlockPush: true},
			wantErr: "not a valid regular expression", wantField: "match_tag"},
		{name: "bad except_tag", policy: TagPolicy{MatchRepository: ".*", ExceptTag: `\`, BlockPush: true},
			wantErr: "not a valid regular expression", wantField: "except_tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			first := TagPolicy{MatchRepository: ".*", BlockOverwrite: true}
			_, err := ValidateTagPolicies([]TagPolicy{first, first, tt.policy})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var verr *ValidationError
			if !errors.As(err, &verr) || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v is not a *ValidationError matching ErrInvalidPolicy", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if verr.List != "tag_policies" || verr.Index != 2 || verr.Field != tt.wantField {
				t.Errorf("error names %s[%d].%s, want tag_policies[2].%s", verr.List, verr.Index, verr.Field, tt.wantField)
			}
		})
	}
}

func TestTagPolicyMatches(t *testing.T) {
	t.Parallel()
	p := TagPolicy{MatchRepository: "prod/.*", ExceptRepository: "prod/scratch-.*", MatchTag: "v.*", ExceptTag: "v.*-rc", BlockDelete: true}
	tests := []struct {
		repo, tag string
		want      bool
	}{
		{"prod/app", "v1", true},
		{"prod/app", "v1-rc", false},
		{"prod/app", "latest", false},
		{"prod/app", "xv1", false},
		{"prod/scratch-1", "v1", false},
		{"xprod/app", "v1", false},
		{"staging/prod/app", "v1", false},
		{"prod", "v1", false},
	}
	for _, tt := range tests {
		if got := p.Matches(tt.repo, tt.tag); got != tt.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tt.repo, tt.tag, got, tt.want)
		}
	}
	if !(TagPolicy{MatchRepository: ".*", BlockDelete: true}).Matches("any/repo", "any-tag") {
		t.Error("a policy without tag regexes must match every tag")
	}
}

func TestCheckTagPush(t *testing.T) {
	t.Parallel()
	policies := []TagPolicy{
		/* 0 */ {MatchRepository: "staging/.*", BlockDelete: true},
		/* 1 */ {MatchRepository: "frozen/.*", BlockPush: true},
		/* 2 */ {MatchRepository: "prod/.*", MatchTag: "v.*", BlockOverwrite: true},
		/* 3 */ {MatchRepository: "locked/.*", BlockPush: true, BlockOverwrite: true},
	}
	const a, b = "sha256:aaaa", "sha256:bbbb"
	tests := []struct {
		name       string
		repo, tag  string
		exists     bool
		current    string
		want       string // "" for allowed
		wantIndex  int
		wantAction TagAction
	}{
		{name: "new tag in prod", repo: "prod/app", tag: "v1", want: ""},
		{name: "overwrite in prod", repo: "prod/app", tag: "v1", exists: true, current: a,
			want:      `tag_policies[2] (match_repository "prod/.*", match_tag "v.*") forbids overwriting tag v1 in repository prod/app`,
			wantIndex: 2, wantAction: TagOverwrite},
		{name: "same-digest re-push in prod", repo: "prod/app", tag: "v1", exists: true, current: b, want: ""},
		{name: "overwrite of unprotected tag", repo: "prod/app", tag: "latest", exists: true, current: a, want: ""},
		{name: "overwrite in other repo", repo: "dev/app", tag: "v1", exists: true, current: a, want: ""},
		{name: "delete-only policy allows overwrite", repo: "staging/app", tag: "v1", exists: true, current: a, want: ""},
		{name: "push of new tag blocked", repo: "frozen/app", tag: "new",
			want: `tag_policies[1] (match_repository "frozen/.*") forbids pushing tag new in repository frozen/app`, wantIndex: 1, wantAction: TagPush},
		{name: "push moving tag blocked", repo: "frozen/app", tag: "old", exists: true, current: a,
			want: "forbids pushing tag old", wantIndex: 1, wantAction: TagPush},
		{name: "unchanged push allowed despite block_push", repo: "frozen/app", tag: "old", exists: true, current: b, want: ""},
		{name: "block_push and block_overwrite: overwrite named", repo: "locked/x", tag: "t", exists: true, current: a,
			want: "forbids overwriting tag t", wantIndex: 3, wantAction: TagOverwrite},
		{name: "block_push and block_overwrite: new tag", repo: "locked/x", tag: "t",
			want: "forbids pushing tag t", wantIndex: 3, wantAction: TagPush},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := CheckTagPush(policies, tt.repo, tt.tag, tt.exists, tt.current, b)
			if tt.want == "" {
				if v != nil {
					t.Fatalf("unexpected violation: %v", v)
				}
				if v.Err() != nil {
					t.Fatal("Err() of a nil violation is not nil")
				}
				return
			}
			if v == nil {
				t.Fatalf("expected violation %q", tt.want)
			}
			if !strings.Contains(v.Error(), tt.want) || v.Index != tt.wantIndex || v.Action != tt.wantAction {
				t.Errorf("got %q (index %d, action %s), want %q (index %d, action %s)",
					v, v.Index, v.Action, tt.want, tt.wantIndex, tt.wantAction)
			}
			if v.Repo != tt.repo || v.Tag != tt.tag || v.Policy != policies[tt.wantIndex] {
				t.Errorf("violation carries wrong details: %#v", v)
			}
			if err := v.Err(); !errors.Is(err, ErrTagPolicyViolation) {
				t.Errorf("errors.Is(%v, ErrTagPolicyViolation) is false", err)
			}
		})
	}
}

func TestCheckTagDelete(t *testing.T) {
	t.Parallel()
	policies := []TagPolicy{
		{MatchRepository: "prod/.*", BlockOverwrite: true},
		{MatchRepository: "prod/.*", ExceptRepository: "prod/tmp", MatchTag: "v.*", ExceptTag: "v0\\..*", BlockDelete: true},
	}
	tests := []struct {
		repo, tag string
		blocked   bool
	}{
		{"prod/app", "v1.0", true},
		{"prod/app", "v0.9", false},
		{"prod/app", "latest", false},
		{"prod/tmp", "v1.0", false},
		{"dev/app", "v1.0", false},
	}
	for _, tt := range tests {
		v := CheckTagDelete(policies, tt.repo, tt.tag)
		if (v != nil) != tt.blocked {
			t.Errorf("CheckTagDelete(%q, %q) = %v, want blocked=%v", tt.repo, tt.tag, v, tt.blocked)
		}
		if v != nil && v.Error() != `tag_policies[1] (match_repository "prod/.*", except_repository "prod/tmp", match_tag "v.*", except_tag "v0\\..*") forbids deleting tag `+tt.tag+` in repository `+tt.repo {
			t.Errorf("unexpected message %q", v)
		}
	}
	if v := CheckManifestDelete(policies, "prod/app", []string{"latest", "v0.1", "v2"}); v == nil || v.Tag != "v2" || v.Action != TagDelete {
		t.Errorf("CheckManifestDelete = %v, want a violation for tag v2", v)
	}
	if v := CheckManifestDelete(policies, "prod/app", []string{"latest"}); v != nil {
		t.Errorf("CheckManifestDelete = %v, want none", v)
	}
	if v := CheckManifestDelete(policies, "prod/app", nil); v != nil {
		t.Errorf("CheckManifestDelete of an untagged manifest = %v, want none", v)
	}
}
