package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidateGCPolicies(t *testing.T) {
	t.Parallel()
	days := func(n int64) *GCDuration { return &GCDuration{Value: n, Unit: "d"} }
	tests := []struct {
		name      string
		policy    GCPolicy
		wantErr   string
		wantField string
	}{
		{name: "minimal", policy: GCPolicy{MatchRepository: ".*", Action: "delete"}},
		{name: "full", policy: GCPolicy{MatchRepository: "ci/.*", ExceptRepository: "ci/keep", MatchTag: "pr-.*", ExceptTag: "pr-0",
			TimeConstraint: &GCTimeConstraint{On: "last_pulled_at", OlderThan: days(30)}, Action: "delete"}},
		{name: "untagged newest", policy: GCPolicy{MatchRepository: ".*", OnlyUntagged: true,
			TimeConstraint: &GCTimeConstraint{On: "pushed_at", Newest: 3}, Action: "protect"}},
		{name: "no repository", policy: GCPolicy{Action: "delete"}, wantErr: "is required", wantField: "match_repository"},
		{name: "bad match_repository", policy: GCPolicy{MatchRepository: "(", Action: "delete"},
			wantErr: "not a valid regular expression", wantField: "match_repository"},
		{name: "bad except_repository", policy: GCPolicy{MatchRepository: ".*", ExceptRepository: "*", Action: "delete"},
			wantErr: "not a valid regular expression", wantField: "except_repository"},
		{name: "bad match_tag", policy: GCPolicy{MatchRepository: ".*", MatchTag: "[", Action: "delete"},
			wantErr: "not a valid regular expression", wantField: "match_tag"},
		{name: "bad except_tag", policy: GCPolicy{MatchRepository: ".*", ExceptTag: `\`, Action: "delete"},
			wantErr: "not a valid regular expression", wantField: "except_tag"},
		{name: "untagged with match_tag", policy: GCPolicy{MatchRepository: ".*", OnlyUntagged: true, MatchTag: "v.*", Action: "delete"},
			wantErr: "cannot be combined", wantField: "only_untagged"},
		{name: "no action", policy: GCPolicy{MatchRepository: ".*"}, wantErr: `must be "delete" or "protect"`, wantField: "action"},
		{name: "bad action", policy: GCPolicy{MatchRepository: ".*", Action: "remove"}, wantErr: `not "remove"`, wantField: "action"},
		{name: "bad time field", policy: GCPolicy{MatchRepository: ".*", Action: "delete",
			TimeConstraint: &GCTimeConstraint{On: "created_at", Oldest: 1}}, wantErr: "must be", wantField: "time_constraint.on"},
		{name: "no time condition", policy: GCPolicy{MatchRepository: ".*", Action: "delete",
			TimeConstraint: &GCTimeConstraint{On: "pushed_at"}}, wantErr: "exactly one", wantField: "time_constraint"},
		{name: "two time conditions", policy: GCPolicy{MatchRepository: ".*", Action: "delete",
			TimeConstraint: &GCTimeConstraint{On: "pushed_at", OlderThan: days(1), Newest: 2}}, wantErr: "exactly one", wantField: "time_constraint"},
		{name: "bad unit", policy: GCPolicy{MatchRepository: ".*", Action: "delete",
			TimeConstraint: &GCTimeConstraint{On: "pushed_at", NewerThan: &GCDuration{Value: 1, Unit: "fortnight"}}},
			wantErr: "must be one of", wantField: "time_constraint.newer_than.unit"},
		{name: "zero duration", policy: GCPolicy{MatchRepository: ".*", Action: "delete",
			TimeConstraint: &GCTimeConstraint{On: "pushed_at", OlderThan: days(0)}},
			wantErr: "must be positive", wantField: "time_constraint.older_than.value"},
		{name: "negative count", policy: GCPolicy{MatchRepository: ".*", Action: "delete",
			TimeConstraint: &GCTimeConstraint{On: "pushed_at", Oldest: -1}}, wantErr: "must be positive", wantField: "time_constraint.oldest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			first := GCPolicy{MatchRepository: ".*", Action: "protect"}
			_, err := ValidateGCPolicies([]GCPolicy{first, tt.policy})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *ValidationError", err)
			}
			if ve.List != "gc_policies" || ve.Index != 1 || ve.Field != tt.wantField || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %#v (%v), want index 1, field %q, containing %q", ve, err, tt.wantField, tt.wantErr)
			}
		})
	}
}

func TestParseGCPolicies(t *testing.T) {
	t.Parallel()
	got, err := ParseGCPolicies(`[{"match_repository":".*","only_untagged":true,"time_constraint":{"on":"pushed_at","older_than":{"value":6,"unit":"h"}},"action":"delete"}]`)
	if err != nil || len(got) != 1 || got[0].TimeConstraint.OlderThan.Duration() != 6*time.Hour {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, bad := range []string{`{}`, `[{"match_repository":".*","action":"delete","unknown":1}]`, `[] []`} {
		if _, err := ParseGCPolicies(bad); err == nil {
			t.Errorf("ParseGCPolicies(%s) succeeded", bad)
		}
	}
	out, err := MarshalGCPolicies(got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseGCPolicies(out)
	if err != nil || len(again) != 1 || again[0].Action != "delete" {
		t.Fatalf("round trip: %s -> %+v, %v", out, again, err)
	}
}

func TestEvaluateGC(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	day := 24 * time.Hour
	manifests := []GCManifest{
		{Digest: "a", Tags: []string{"latest"}, PushedAt: ago(1 * day), LastPulledAt: ago(time.Hour)},
		{Digest: "b", Tags: []string{"v1", "stable"}, PushedAt: ago(40 * day)},
		{Digest: "c", PushedAt: ago(30 * day), LastPulledAt: ago(2 * day)},
		{Digest: "d", PushedAt: ago(20 * day)},
		{Digest: "e", Tags: []string{"pr-7"}, PushedAt: ago(10 * day)},
		{Digest: "f", PushedAt: ago(50 * day), ProtectedBecause: "is the child of an index"},
	}
	olderThan := func(on string, d int64) *GCTimeConstraint {
		return &GCTimeConstraint{On: on, OlderThan: &GCDuration{Value: d, Unit: "d"}}
	}
	tests := []struct {
		name     string
		repo     string
		policies []GCPolicy
		// want maps digests to "delete" or "protect" (missing: no decision).
		want map[string]string
	}{
		{name: "no policies", repo: "app", want: map[string]string{"f": "protect"}},
		{name: "delete everything", repo: "app", policies: []GCPolicy{{MatchRepository: ".*", Action: "delete"}},
			want: map[string]string{"a": "delete", "b": "delete", "c": "delete", "d": "delete", "e": "delete", "f": "protect"}},
		{name: "match_repository", repo: "app", policies: []GCPolicy{{MatchRepository: "other", Action: "delete"}},
			want: map[string]string{"f": "protect"}},
		{name: "except_repository", repo: "app", policies: []GCPolicy{{MatchRepository: ".*", ExceptRepository: "a.*", Action: "delete"}},
			want: map[string]string{"f": "protect"}},
		{name: "match_tag", repo: "app", policies: []GCPolicy{{MatchRepository: ".*", MatchTag: "pr-.*", Action: "delete"}},
			want: map[string]string{"e": "delete", "f": "protect"}},
		{name: "except_tag", repo: "app", policies: []GCPolicy{{MatchRepository: ".*", MatchTag: ".*", ExceptTag: "stable", Action: "delete"}},
			want: map[string]string{"a": "delete", "e": "delete", "f": "protect"}},
		{name: "only_untagged", repo: "app", policies: []GCPolicy{{MatchRepository: ".*", OnlyUntagged: true, Action: "delete"}},
			want: map[string]string{"c": "delete", "d": "delete", "f": "protect"}},
		{name: "older_than on pushed_at", repo: "app", policies: []GCPolicy{{MatchRepository: ".*", TimeConstraint: olderThan("pushed_at", 25), Action: "delete"}},
			want: map[string]string{"b": "delete", "c": "delete", "f": "protect"}},
		{name: "older_than on last_pulled_at (never pulled: push time)", repo: "app",
			policies: []GCPolicy{{MatchRepository: ".*", TimeConstraint: olderThan("last_pulled_at", 15), Action: "delete"}},
			want:     map[string]string{"b": "delete", "d": "delete", "f": "protect"}},
		{name: "newer_than", repo: "app", policies: []GCPolicy{{MatchRepository: ".*",
			TimeConstraint: &GCTimeConstraint{On: "pushed_at", NewerThan: &GCDuration{Value: 2, Unit: "w"}}, Action: "delete"}},
			want: map[string]string{"a": "delete", "e": "delete", "f": "protect"}},
		{name: "oldest", repo: "app", policies: []GCPolicy{{MatchRepository: ".*", OnlyUntagged: true,
			TimeConstraint: &GCTimeConstraint{On: "pushed_at", Oldest: 2}, Action: "delete"}},
			want: map[string]string{"c": "delete", "f": "protect"}}, // f is among the two oldest, but protected
		{name: "newest", repo: "app", policies: []GCPolicy{{MatchRepository: ".*",
			TimeConstraint: &GCTimeConstraint{On: "pushed_at", Newest: 2}, Action: "delete"}},
			want: map[string]string{"a": "delete", "e": "delete", "f": "protect"}},
		{name: "protect before delete", repo: "app", policies: []GCPolicy{
			{MatchRepository: ".*", MatchTag: "stable", Action: "protect"},
			{MatchRepository: ".*", TimeConstraint: olderThan("pushed_at", 15), Action: "delete"}},
			want: map[string]string{"b": "protect", "c": "delete", "d": "delete", "f": "protect"}},
		{name: "delete before protect", repo: "app", policies: []GCPolicy{
			{MatchRepository: ".*", TimeConstraint: olderThan("pushed_at", 15), Action: "delete"},
			{MatchRepository: ".*", MatchTag: "stable", Action: "protect"}},
			want: map[string]string{"b": "delete", "c": "delete", "d": "delete", "f": "protect"}},
		{name: "keep the newest untagged, delete the other untagged", repo: "app", policies: []GCPolicy{
			{MatchRepository: ".*", OnlyUntagged: true, TimeConstraint: &GCTimeConstraint{On: "pushed_at", Newest: 1}, Action: "protect"},
			{MatchRepository: ".*", OnlyUntagged: true, Action: "delete"}},
			want: map[string]string{"c": "delete", "d": "protect", "f": "protect"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ValidateGCPolicies(tt.policies); err != nil {
				t.Fatalf("invalid test policies: %v", err)
			}
			got := EvaluateGC(tt.policies, tt.repo, slices.Clone(manifests), now)
			if len(got) != len(manifests) {
				t.Fatalf("%d decisions for %d manifests", len(got), len(manifests))
			}
			for i, d := range got {
				if d.Digest != manifests[i].Digest {
					t.Fatalf("decision %d is for %s, not %s", i, d.Digest, manifests[i].Digest)
				}
				if d.Action != tt.want[d.Digest] {
					t.Errorf("%s: %q (%s), want %q", d.Digest, d.Action, d.Reason, tt.want[d.Digest])
				}
				if d.Action != "" && d.Reason == "" {
					t.Errorf("%s: decision without a reason", d.Digest)
				}
			}
		})
	}
}
