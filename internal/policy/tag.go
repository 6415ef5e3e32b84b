package policy

import (
	"errors"
	"fmt"
)

// TagPolicy protects tags in the repositories of one account. It is an
// element of the account's `tag_policies`.
//
// A policy applies to a tag in a repository if MatchRepository matches the
// repository name (without the account name) and ExceptRepository does not,
// and if MatchTag (when given) matches the tag name and ExceptTag (when
// given) does not. All regexes are anchored at both ends.
type TagPolicy struct {
	// MatchRepository is required; ".*" applies the policy to every repository.
	MatchRepository string `json:"match_repository"`
	// ExceptRepository excludes repositories that MatchRepository matched.
	ExceptRepository string `json:"except_repository,omitempty"`
	// MatchTag restricts the policy to matching tags; empty means all tags.
	MatchTag string `json:"match_tag,omitempty"`
	// ExceptTag excludes tags that MatchTag matched.
	ExceptTag string `json:"except_tag,omitempty"`
	// BlockOverwrite refuses moving an existing tag to another manifest.
	BlockOverwrite bool `json:"block_overwrite,omitempty"`
	// BlockDelete refuses deleting the tag, and deleting a manifest that
	// carries it.
	BlockDelete bool `json:"block_delete,omitempty"`
	// BlockPush refuses creating the tag or moving it to another manifest.
	BlockPush bool `json:"block_push,omitempty"`
}

const tagList = "tag_policies"

// Matches reports whether the policy applies to tag in repo (the repository
// name without the account name). Invalid regexes (which validation refuses)
// match nothing.
func (p TagPolicy) Matches(repo, tag string) bool {
	if !matchAnchored(p.MatchRepository, repo) {
		return false
	}
	if p.ExceptRepository != "" && matchAnchored(p.ExceptRepository, repo) {
		return false
	}
	if p.MatchTag != "" && !matchAnchored(p.MatchTag, tag) {
		return false
	}
	if p.ExceptTag != "" && matchAnchored(p.ExceptTag, tag) {
		return false
	}
	return true
}

// String describes the policy by its match fields, for messages:
// `match_repository "prod/.*", match_tag "v.*"`.
func (p TagPolicy) String() string {
	return describeFields(
		"match_repository", p.MatchRepository,
		"except_repository", p.ExceptRepository,
		"match_tag", p.MatchTag,
		"except_tag", p.ExceptTag,
	)
}

// ValidateTagPolicies checks the policies and returns them unchanged in a
// new slice, or the first problem found as a *ValidationError: every policy
// needs "match_repository" and at least one of "block_overwrite",
// "block_delete" and "block_push", and all its regexes must compile.
func ValidateTagPolicies(policies []TagPolicy) ([]TagPolicy, error) {
	for i, p := range policies {
		if p.MatchRepository == "" {
			return nil, invalid(tagList, i, "match_repository", `is required (use ".*" for all repositories)`)
		}
		fields := []struct{ name, value string }{
			{"match_repository", p.MatchRepository},
			{"except_repository", p.ExceptRepository},
			{"match_tag", p.MatchTag},
			{"except_tag", p.ExceptTag},
		}
		for _, f := range fields {
			if f.value == "" {
				continue
			}
			if msg := validateRegex(f.value); msg != "" {
				return nil, invalid(tagList, i, f.name, "%s", msg)
			}
		}
		if !p.BlockOverwrite && !p.BlockDelete && !p.BlockPush {
			return nil, invalid(tagList, i, "",
				`a policy needs at least one of "block_overwrite", "block_delete" and "block_push"`)
		}
	}
	out := make([]TagPolicy, len(policies))
	copy(out, policies)
	return out, nil
}

// TagAction is what a tag policy may forbid.
type TagAction string

// The actions on tags that tag policies may forbid.
const (
	// TagPush is creating a tag, or moving it to another manifest (block_push).
	TagPush TagAction = "push"
	// TagOverwrite is moving an existing tag to another manifest (block_overwrite).
	TagOverwrite TagAction = "overwrite"
	// TagDelete is deleting a tag, directly or with its manifest (block_delete).
	TagDelete TagAction = "delete"
)

// gerund returns the action as used in messages ("overwriting").
func (a TagAction) gerund() string {
	switch a {
	case TagPush:
		return "pushing"
	case TagOverwrite:
		return "overwriting"
	case TagDelete:
		return "deleting"
	default:
		return string(a)
	}
}

// ErrTagPolicyViolation is matched (with errors.Is) by every *Violation, so
// that the HTTP edge can map all of them to one status code (409 Conflict).
var ErrTagPolicyViolation = errors.New("forbidden by tag policy")

// Violation says which tag policy forbids an action on a tag. Its message
// names the policy by position and match fields, e.g.
// `tag_policies[2] (match_repository "prod/.*", match_tag "v.*") forbids
// overwriting tag v1 in repository prod/app`.
//
// The Check functions return a nil *Violation when the action is allowed.
// Do not assign that nil pointer to an error variable directly (it would be
// a non-nil error); use [Violation.Err].
type Violation struct {
	// Index is the position of the policy in the account's tag policies, from 0.
	Index int
	// Policy is the policy that forbids the action.
	Policy TagPolicy
	// Action is what was forbidden.
	Action TagAction
	// Repo is the repository name without the account name.
	Repo string
	// Tag is the tag name.
	Tag string
}

// Error implements the error interface.
func (v *Violation) Error() string {
	return fmt.Sprintf("%s[%d] (%s) forbids %s tag %s in repository %s",
		tagList, v.Index, v.Policy, v.Action.gerund(), v.Tag, v.Repo)
}

// Unwrap makes errors.Is(err, ErrTagPolicyViolation) true.
func (v *Violation) Unwrap() error {
	return ErrTagPolicyViolation
}

// Err returns v as an error, and a nil error (not a nil *Violation inside
// a non-nil interface) when v is nil.
func (v *Violation) Err() error {
	if v == nil {
		return nil
	}
	return v
}

// CheckTagPush checks whether tag in repo may be pointed at newDigest.
// exists says whether the tag exists now, and currentDigest is the digest it
// points at then. Re-pushing the digest that the tag already points at
// changes nothing and is always allowed. Otherwise the first policy (in
// list order) that applies and has block_push forbids the push, and, if the
// tag exists, one that has block_overwrite forbids the overwrite.
func CheckTagPush(policies []TagPolicy, repo, tag string, exists bool, currentDigest, newDigest string) *Violation {
	if exists && currentDigest == newDigest {
		return nil
	}
	for i, p := range policies {
		if !(p.BlockPush || (exists && p.BlockOverwrite)) || !p.Matches(repo, tag) {
			continue
		}
		action := TagPush
		if exists && p.BlockOverwrite {
			action = TagOverwrite
		}
		return &Violation{Index: i, Policy: p, Action: action, Repo: repo, Tag: tag}
	}
	return nil
}

// CheckTagDelete checks whether tag may be deleted from repo: the first
// policy that applies and has block_delete forbids it.
func CheckTagDelete(policies []TagPolicy, repo, tag string) *Violation {
	for i, p := range policies {
		if p.BlockDelete && p.Matches(repo, tag) {
			return &Violation{Index: i, Policy: p, Action: TagDelete, Repo: repo, Tag: tag}
		}
	}
	return nil
}

// CheckManifestDelete checks whether a manifest that carries tags may be
// deleted from repo, which deletes the tags with it: it is forbidden if
// deleting any of the tags is (see [CheckTagDelete]).
func CheckManifestDelete(policies []TagPolicy, repo string, tags []string) *Violation {
	for _, tag := range tags {
		if v := CheckTagDelete(policies, repo, tag); v != nil {
			return v
		}
	}
	return nil
}
