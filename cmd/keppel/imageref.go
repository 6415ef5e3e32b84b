package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// imageArg is an image argument of the browsing commands:
// [HOST/]ACCOUNT/REPOSITORY[:TAG|@DIGEST]. Without a host, the image is on
// the registry of --registry (or the stored default).
type imageArg struct {
	host       string // "" for the configured registry
	account    string
	repository string // without the account
	tag        string
	digest     string
}

// looksLikeHost reports whether the first element of a reference names a
// registry host, as docker decides it: it contains a dot or a port, or is
// localhost. Account names contain neither.
func looksLikeHost(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost"
}

// parseImageArg parses an image argument; without a tag or digest, the tag
// is defaultTag (with defaultTag "", none is required).
func parseImageArg(s string, defaultTag string) (imageArg, error) {
	var a imageArg
	rest := s
	if first, after, ok := strings.Cut(s, "/"); ok && looksLikeHost(first) {
		a.host, rest = first, after
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest, a.digest = rest[:i], rest[i+1:]
		if !strings.Contains(a.digest, ":") {
			return a, fmt.Errorf("%q: %q is not a digest (like sha256:…)", s, a.digest)
		}
	} else if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		rest, a.tag = rest[:i], rest[i+1:]
	} else {
		a.tag = defaultTag
	}
	account, repo, ok := strings.Cut(rest, "/")
	if !ok || account == "" || repo == "" || (a.tag == "" && a.digest == "" && defaultTag != "") || strings.Contains(repo, ":") {
		return a, fmt.Errorf("%q is not an image: write ACCOUNT/REPOSITORY[:TAG|@DIGEST], optionally after the registry host", s)
	}
	a.account, a.repository = account, repo
	return a, nil
}

// reference is the tag or digest.
func (a imageArg) reference() string {
	if a.digest != "" {
		return a.digest
	}
	return a.tag
}

// String is the image as the user would write it, without the host.
func (a imageArg) String() string {
	s := a.account + "/" + a.repository
	if a.digest != "" {
		return s + "@" + a.digest
	}
	if a.tag != "" {
		return s + ":" + a.tag
	}
	return s
}

// repositoryPath is the management API path of the repository.
func (a imageArg) repositoryPath() string {
	return accountPath(a.account) + "/repositories/" + escapeRepository(a.repository)
}

// escapeRepository escapes every element of a repository name for a path.
func escapeRepository(repo string) string {
	parts := strings.Split(repo, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// useHost points the command's client at the argument's host, if it names
// one (as if given with --registry).
func (a imageArg) useHost(cmd *cobra.Command) error {
	if a.host == "" {
		return nil
	}
	u, err := registryURL(a.host)
	if err != nil {
		return err
	}
	if err := cmd.Flags().Set("registry", u); err != nil {
		return fmt.Errorf("using registry %s: %w", a.host, err)
	}
	return nil
}

// sortTags sorts a listing by tag name.
func sortTags[T any](entries []T, name func(T) string) {
	slices.SortFunc(entries, func(a, b T) int { return strings.Compare(name(a), name(b)) })
}
