package storage

import (
	"errors"
	"path"
	"strings"
	"testing"

	"keppel/internal/models"
)

func TestValidateDigest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		digest string
		ok     bool
	}{
		{"sha256:" + strings.Repeat("a", 64), true},
		{"sha512:0123456789abcdef", true},
		{"sha256+b64u:abc", true},
		{"", false},
		{"sha256", false},
		{"sha256:", false},
		{":abc", false},
		{"sha256:ABC", false},
		{"sha256:../../etc", false},
		{"sha256:abc/def", false},
		{"../sha256:abc", false},
		{"sha256:abc:def", false},
	} {
		err := ValidateDigest(tc.digest)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateDigest(%q) = %v, want ok=%t", tc.digest, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateDigest(%q) = %v, want ErrInvalidName", tc.digest, err)
		}
	}
}

func TestValidateRepoName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		repo string
		ok   bool
	}{
		{"alpine", true},
		{"library/alpine/edge", true},
		{"a.b/c_d/e-f", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"a/../../b", false},
		{"a/./b", false},
		{`a\b`, false},
		{"a:b", false},
		{"a\x00", false},
	} {
		if err := ValidateRepoName(tc.repo); (err == nil) != tc.ok {
			t.Errorf("ValidateRepoName(%q) = %v, want ok=%t", tc.repo, err, tc.ok)
		}
	}
}

func TestValidateRef(t *testing.T) {
	t.Parallel()
	if err := ValidateRef(models.StorageRef{AuthTenantID: "t", AccountName: "a"}); err != nil {
		t.Errorf("ValidateRef of a valid ref: %v", err)
	}
	for _, ref := range []models.StorageRef{
		{AuthTenantID: "", AccountName: "a"},
		{AuthTenantID: "t", AccountName: ""},
		{AuthTenantID: "..", AccountName: "a"},
		{AuthTenantID: "t", AccountName: "../a"},
		{AuthTenantID: "t/u", AccountName: "a"},
	} {
		if err := ValidateRef(ref); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateRef(%+v) = %v, want ErrInvalidName", ref, err)
		}
	}
}

func TestResolveRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		size, offset, length, want int64
		ok                         bool
	}{
		{10, 0, -1, 10, true},
		{10, 3, 4, 4, true},
		{10, 3, 100, 7, true},
		{10, 10, -1, 0, true},
		{10, 10, 5, 0, true},
		{0, 0, -1, 0, true},
		{10, 11, -1, 0, false},
		{10, -1, 1, 0, false},
		{10, 0, -2, 0, false},
	} {
		got, err := ResolveRange(tc.size, tc.offset, tc.length)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ResolveRange(%d, %d, %d) = %d, %v; want %d, ok=%t", tc.size, tc.offset, tc.length, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidRange) {
			t.Errorf("ResolveRange error %v is not ErrInvalidRange", err)
		}
	}
}

// FuzzValidateRepoName checks that an accepted repository name, joined with
// any accepted digest below an account directory, stays below it.
func FuzzValidateRepoName(f *testing.F) {
	for _, seed := range []string{"a", "a/b", "a/../b", "..", "a//b", "/", `a\b`} {
		f.Add(seed, "sha256:abc")
	}
	f.Fuzz(func(t *testing.T, repo, digest string) {
		if ValidateRepoName(repo) != nil || ValidateDigest(digest) != nil {
			return
		}
		joined := path.Join("/acct/m", repo, digest)
		if !strings.HasPrefix(joined, "/acct/m/") || path.Clean(joined) != joined {
			t.Fatalf("repo %q with digest %q escapes to %q", repo, digest, joined)
		}
		if strings.Count(joined, "/") != strings.Count(repo, "/")+4 {
			t.Fatalf("repo %q with digest %q changes depth: %q", repo, digest, joined)
		}
	})
}
