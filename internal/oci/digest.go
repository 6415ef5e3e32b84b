package oci

import (
	// Register the hash functions that go-digest supports for content digests.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// ParseDigest parses a content digest and accepts only the algorithms that
// the registry stores: sha256 and sha512.
func ParseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("invalid digest %q: %w", s, err)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return d, nil
	default:
		return "", fmt.Errorf("invalid digest %q: unsupported algorithm %q", s, d.Algorithm())
	}
}

// IsDigest reports whether a manifest reference looks like a digest rather
// than a tag (tags cannot contain a colon).
func IsDigest(reference string) bool {
	for i := 0; i < len(reference); i++ {
		if reference[i] == ':' {
			return true
		}
	}
	return false
}
