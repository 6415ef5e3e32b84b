package oci

import (
	"strings"
	"testing"
)

func TestSplitRepositoryName(t *testing.T) {
	t.Parallel()
	longRepo := "acct/" + strings.Repeat("a", MaxRepositoryNameLength-len("acct/"))
	tests := []struct {
		name    string
		full    string
		account string
		repo    string
		ok      bool
	}{
		{"simple", "acct/repo", "acct", "repo", true},
		{"nested", "acct/foo/bar/baz", "acct", "foo/bar/baz", true},
		{"separators", "my-acct/a.b/c_d/e__f/g---h", "my-acct", "a.b/c_d/e__f/g---h", true},
		{"digits", "0acct/9", "0acct", "9", true},
		{"max length", longRepo, "acct", longRepo[len("acct/"):], true},
		{"max account length", strings.Repeat("a", 48) + "/r", strings.Repeat("a", 48), "r", true},
		{"single letter v is not reserved", "v/repo", "v", "repo", true},
		{"v with letters is not reserved", "v1beta/repo", "v1beta", "repo", true},
		{"keppel inside the name is fine", "mykeppel/repo", "mykeppel", "repo", true},
		{"reserved names only apply to the account", "acct/keppel/v2", "acct", "keppel/v2", true},

		{"empty", "", "", "", false},
		{"account only", "acct", "", "", false},
		{"too long", longRepo + "a", "", "", false},
		{"account too long", strings.Repeat("a", 49) + "/r", "", "", false},
		{"upper case in repo", "acct/Repo", "", "", false},
		{"upper case in account", "Acct/repo", "", "", false},
		{"dot dot slash", "acct/../repo", "", "", false},
		{"leading dot dot", "../acct/repo", "", "", false},
		{"single dot", "acct/./repo", "", "", false},
		{"empty component", "acct//repo", "", "", false},
		{"trailing slash", "acct/repo/", "", "", false},
		{"leading slash", "/acct/repo", "", "", false},
		{"leading separator", "acct/-repo", "", "", false},
		{"trailing separator", "acct/repo-", "", "", false},
		{"triple underscore", "acct/a___b", "", "", false},
		{"double dot", "acct/a..b", "", "", false},
		{"mixed separators", "acct/a._b", "", "", false},
		{"colon", "acct/repo:tag", "", "", false},
		{"at sign", "acct/repo@sha256", "", "", false},
		{"space", "acct/re po", "", "", false},
		{"newline", "acct/repo\n", "", "", false},
		{"non ascii", "acct/répo", "", "", false},
		{"account with dot", "ac.ct/repo", "", "", false},
		{"account with underscore", "ac_ct/repo", "", "", false},
		{"account with trailing dash", "acct-/repo", "", "", false},
		{"reserved keppel", "keppel/repo", "", "", false},
		{"reserved keppel prefix", "keppel-foo/repo", "", "", false},
		{"reserved v1", "v1/repo", "", "", false},
		{"reserved v2", "v2/repo", "", "", false},
		{"reserved v10", "v10/repo", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			account, repo, ok := SplitRepositoryName(tc.full)
			if ok != tc.ok || account != tc.account || repo != tc.repo {
				t.Errorf("SplitRepositoryName(%q) = (%q, %q, %v), want (%q, %q, %v)",
					tc.full, account, repo, ok, tc.account, tc.repo, tc.ok)
			}
		})
	}
}

func TestValidAccountName(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"a":                     true,
		"acct":                  true,
		"my-acct-2":             true,
		"0":                     true,
		"v":                     true,
		"vx":                    true,
		strings.Repeat("a", 48): true,

		"":                      false,
		strings.Repeat("a", 49): false,
		"-acct":                 false,
		"Acct":                  false,
		"ac.ct":                 false,
		"ac_ct":                 false,
		"ac/ct":                 false,
		"keppel":                false,
		"keppel-foo":            false,
		"keppelx":               false,
		"v1":                    false,
		"v2":                    false,
		"v123":                  false,
	}
	for name, want := range tests {
		if got := ValidAccountName(name); got != want {
			t.Errorf("ValidAccountName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestValidTag(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"latest":                 true,
		"v1.2.3":                 true,
		"1.0-rc.1_build":         true,
		"_private":               true,
		"UPPER-case":             true,
		"0":                      true,
		strings.Repeat("a", 128): true,

		"":                                  false,
		strings.Repeat("a", 129):            false,
		".hidden":                           false,
		"-dash":                             false,
		"a:b":                               false,
		"a/b":                               false,
		"a b":                               false,
		"a+b":                               false,
		"latest\n":                          false,
		"täg":                               false,
		"sha256:" + strings.Repeat("a", 64): false,
	}
	for tag, want := range tests {
		if got := ValidTag(tag); got != want {
			t.Errorf("ValidTag(%q) = %v, want %v", tag, got, want)
		}
	}
}
