package policy

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// GCPolicy selects manifests of an account's repositories to delete or to
// protect from deletion. It is an element of the account's `gc_policies`.
//
// A policy matches a manifest in a repository if MatchRepository matches the
// repository name (without the account name) and ExceptRepository does not;
// if, with OnlyUntagged, the manifest has no tags; if, with MatchTag, one of
// its tags matches and, with ExceptTag, none of its tags matches; and if
// the TimeConstraint (when given) holds. All regexes are anchored at both
// ends. Policies are evaluated in order, and the first one that matches a
// manifest decides: a protect policy before a delete policy protects.
type GCPolicy struct {
	// MatchRepository is required; ".*" applies the policy to every repository.
	MatchRepository string `json:"match_repository"`
	// ExceptRepository excludes repositories that MatchRepository matched.
	ExceptRepository string `json:"except_repository,omitempty"`
	// MatchTag restricts the policy to manifests with a matching tag.
	MatchTag string `json:"match_tag,omitempty"`
	// ExceptTag excludes manifests with a matching tag.
	ExceptTag string `json:"except_tag,omitempty"`
	// OnlyUntagged restricts the policy to manifests without tags.
	OnlyUntagged bool `json:"only_untagged,omitempty"`
	// TimeConstraint restricts the policy by the manifests' push or pull
	// times.
	TimeConstraint *GCTimeConstraint `json:"time_constraint,omitempty"`
	// Action is "delete" or "protect".
	Action string `json:"action"`
}

// GCTimeConstraint restricts a GC policy by a time of the manifests: On is
// "pushed_at" or "last_pulled_at" (a manifest never pulled counts as pulled
// when it was pushed). Exactly one of the other fields is set: OlderThan
// and NewerThan compare the time with now; Oldest and Newest select that
// many manifests, by that time, among those of the repository that the
// policy's other fields match.
type GCTimeConstraint struct {
	On        string      `json:"on"`
	OlderThan *GCDuration `json:"older_than,omitempty"`
	NewerThan *GCDuration `json:"newer_than,omitempty"`
	Oldest    int         `json:"oldest,omitempty"`
	Newest    int         `json:"newest,omitempty"`
}

// GCDuration is a duration as GC policies write it: a value and a unit,
// one of "s", "m", "h", "d" (24 h), "w" (7 d) and "y" (365 d).
type GCDuration struct {
	Value int64  `json:"value"`
	Unit  string `json:"unit"`
}

var gcUnits = map[string]time.Duration{
	"s": time.Second, "m": time.Minute, "h": time.Hour,
	"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "y": 365 * 24 * time.Hour,
}

// Duration converts the duration (0 for an unknown unit, which validation
// refuses).
func (d GCDuration) Duration() time.Duration {
	return time.Duration(d.Value) * gcUnits[d.Unit]
}

const gcList = "gc_policies"

// ValidateGCPolicies checks the policies and returns them unchanged in a
// new slice, or the first problem found as a *ValidationError.
func ValidateGCPolicies(policies []GCPolicy) ([]GCPolicy, error) {
	for i, p := range policies {
		if p.MatchRepository == "" {
			return nil, invalid(gcList, i, "match_repository", `is required (use ".*" for all repositories)`)
		}
		for _, f := range []struct{ name, value string }{
			{"match_repository", p.MatchRepository},
			{"except_repository", p.ExceptRepository},
			{"match_tag", p.MatchTag},
			{"except_tag", p.ExceptTag},
		} {
			if f.value == "" {
				continue
			}
			if msg := validateRegex(f.value); msg != "" {
				return nil, invalid(gcList, i, f.name, "%s", msg)
			}
		}
		if p.OnlyUntagged && (p.MatchTag != "" || p.ExceptTag != "") {
			return nil, invalid(gcList, i, "only_untagged", "cannot be combined with match_tag or except_tag")
		}
		if p.Action != "delete" && p.Action != "protect" {
			return nil, invalid(gcList, i, "action", `must be "delete" or "protect", not %q`, p.Action)
		}
		if tc := p.TimeConstraint; tc != nil {
			if tc.On != "pushed_at" && tc.On != "last_pulled_at" {
				return nil, invalid(gcList, i, "time_constraint.on", `must be "pushed_at" or "last_pulled_at", not %q`, tc.On)
			}
			set := 0
			for _, d := range []struct {
				name string
				v    *GCDuration
			}{{"older_than", tc.OlderThan}, {"newer_than", tc.NewerThan}} {
				if d.v == nil {
					continue
				}
				set++
				if _, ok := gcUnits[d.v.Unit]; !ok {
					return nil, invalid(gcList, i, "time_constraint."+d.name+".unit", `must be one of "s", "m", "h", "d", "w", "y", not %q`, d.v.Unit)
				}
				if d.v.Value <= 0 {
					return nil, invalid(gcList, i, "time_constraint."+d.name+".value", "must be positive")
				}
			}
			for _, n := range []struct {
				name string
				v    int
			}{{"oldest", tc.Oldest}, {"newest", tc.Newest}} {
				if n.v < 0 {
					return nil, invalid(gcList, i, "time_constraint."+n.name, "must be positive")
				}
				if n.v > 0 {
					set++
				}
			}
			if set != 1 {
				return nil, invalid(gcList, i, "time_constraint", "needs exactly one of older_than, newer_than, oldest and newest")
			}
		}
	}
	return slices.Clone(policies), nil
}

// GCManifest is what GC policies look at of a manifest.
type GCManifest struct {
	Digest       string
	Tags         []string
	PushedAt     time.Time
	LastPulledAt time.Time // zero if never pulled
	// ProtectedBecause, if set, protects the manifest whatever the
	// policies say (it is the child of an index, the subject of a
	// referrer, pushed too recently, or carries a tag that a tag policy
	// protects from deletion).
	ProtectedBecause string
}

// GCDecision is what the policies decided for one manifest.
type GCDecision struct {
	Digest string
	// Action is "delete", "protect", or "" when no policy matched.
	Action string
	// Policy is the index of the deciding policy, or -1.
	Policy int
	// Reason explains the decision for the management API.
	Reason string
}

// EvaluateGC applies the policies to the manifests of the repository repo
// (its name without the account name) at now, and returns one decision
// per manifest, in the order given.
func EvaluateGC(policies []GCPolicy, repo string, manifests []GCManifest, now time.Time) []GCDecision {
	out := make([]GCDecision, len(manifests))
	for i, m := range manifests {
		out[i] = GCDecision{Digest: m.Digest, Policy: -1}
		if m.ProtectedBecause != "" {
			out[i].Action, out[i].Reason = "protect", m.ProtectedBecause
		}
	}
	for pi, p := range policies {
		if !matchAnchored(p.MatchRepository, repo) || (p.ExceptRepository != "" && matchAnchored(p.ExceptRepository, repo)) {
			continue
		}
		// The manifests that the policy matches without its time
		// constraint; "oldest"/"newest" rank among them.
		var candidates []int
		for i, m := range manifests {
			if p.matchesTags(m.Tags) {
				candidates = append(candidates, i)
			}
		}
		selected := p.TimeConstraint.filter(candidates, manifests, now)
		for _, i := range selected {
			if out[i].Action != "" {
				continue // decided earlier
			}
			out[i] = GCDecision{Digest: manifests[i].Digest, Action: p.Action, Policy: pi,
				Reason: fmt.Sprintf("%s by gc_policies[%d]", map[string]string{"delete": "deleted", "protect": "protected"}[p.Action], pi)}
		}
	}
	return out
}

func (p GCPolicy) matchesTags(tags []string) bool {
	if p.OnlyUntagged {
		return len(tags) == 0
	}
	if p.MatchTag != "" && !slices.ContainsFunc(tags, func(t string) bool { return matchAnchored(p.MatchTag, t) }) {
		return false
	}
	if p.ExceptTag != "" && slices.ContainsFunc(tags, func(t string) bool { return matchAnchored(p.ExceptTag, t) }) {
		return false
	}
	return true
}

// time returns the manifest's time that the constraint looks at.
func (tc *GCTimeConstraint) time(m GCManifest) time.Time {
	if tc.On == "last_pulled_at" && !m.LastPulledAt.IsZero() {
		return m.LastPulledAt
	}
	return m.PushedAt
}

// filter returns the candidates (indexes into manifests) that satisfy the
// constraint; a nil constraint keeps them all.
func (tc *GCTimeConstraint) filter(candidates []int, manifests []GCManifest, now time.Time) []int {
	if tc == nil {
		return candidates
	}
	switch {
	case tc.OlderThan != nil:
		limit := now.Add(-tc.OlderThan.Duration())
		return slices.DeleteFunc(candidates, func(i int) bool { return !tc.time(manifests[i]).Before(limit) })
	case tc.NewerThan != nil:
		limit := now.Add(-tc.NewerThan.Duration())
		return slices.DeleteFunc(candidates, func(i int) bool { return !tc.time(manifests[i]).After(limit) })
	}
	// Oldest or newest N, by time, then by digest for a stable order.
	sorted := slices.Clone(candidates)
	slices.SortFunc(sorted, func(a, b int) int {
		return cmp.Or(tc.time(manifests[a]).Compare(tc.time(manifests[b])), cmp.Compare(manifests[a].Digest, manifests[b].Digest))
	})
	if tc.Oldest > 0 {
		return sorted[:min(tc.Oldest, len(sorted))]
	}
	return sorted[max(0, len(sorted)-tc.Newest):]
}
