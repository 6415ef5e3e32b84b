// Package oci holds the pure logic of the OCI Distribution and Image specs
// that the registry needs: name, tag and digest grammar, media types, and
// manifest parsing and validation. It does no I/O.
package oci

import (
	"regexp"
	"strings"
)

// MaxRepositoryNameLength is the longest repository name accepted, including the account.
const MaxRepositoryNameLength = 255

var (
	pathComponentRx = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	accountNameRx   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,47}$`)
	tagRx           = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// reservedAccountNames cannot be used as account names because they collide
// with API paths or are kept for future use.
func isReservedAccountName(name string) bool {
	if strings.HasPrefix(name, "keppel") {
		return true
	}
	// "v1", "v2", … look like API versions.
	if len(name) >= 2 && name[0] == 'v' && strings.Trim(name[1:], "0123456789") == "" {
		return true
	}
	return false
}

// ValidAccountName reports whether name is usable as an account name.
func ValidAccountName(name string) bool {
	return accountNameRx.MatchString(name) && !isReservedAccountName(name)
}

// ValidTag reports whether tag matches the tag grammar of the spec.
func ValidTag(tag string) bool {
	return tagRx.MatchString(tag)
}

// SplitRepositoryName validates a full repository name ("account/repo/path")
// and splits it into the account name and the repository path inside the
// account. It returns ok=false for any name that does not match the spec's
// grammar, has fewer than two components, or names an invalid account.
func SplitRepositoryName(full string) (account, repo string, ok bool) {
	if full == "" || len(full) > MaxRepositoryNameLength {
		return "", "", false
	}
	components := strings.Split(full, "/")
	if len(components) < 2 {
		return "", "", false
	}
	for _, c := range components {
		if !pathComponentRx.MatchString(c) {
			return "", "", false
		}
	}
	if !ValidAccountName(components[0]) {
		return "", "", false
	}
	return components[0], strings.Join(components[1:], "/"), true
}
