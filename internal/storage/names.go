package storage

import (
	"fmt"
	"regexp"
	"strings"

	"keppel/internal/models"
)

// MaxNameElementLength is the longest single name element (tenant, account,
// storage ID, repository path component, digest) that drivers accept. It is
// the file name limit of common filesystems.
const MaxNameElementLength = 255

var (
	digestAlgorithmRx = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$`)
	digestHexRx       = regexp.MustCompile(`^[a-f0-9]+$`)
)

// validElement checks one element of a storage location: it must be usable
// as a single file or object name that cannot climb out of its parent.
func validElement(kind, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidName, kind)
	case s == "." || s == "..":
		return fmt.Errorf("%w: %s %q", ErrInvalidName, kind, s)
	case len(s) > MaxNameElementLength:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidName, kind, MaxNameElementLength)
	case strings.ContainsAny(s, "/\\\x00"):
		return fmt.Errorf("%w: %s %q contains a path separator or NUL", ErrInvalidName, kind, s)
	}
	return nil
}

// ValidateRef checks that the tenant ID and account name of ref can be used
// as storage locations.
func ValidateRef(ref models.StorageRef) error {
	if err := validElement("auth tenant ID", ref.AuthTenantID); err != nil {
		return err
	}
	return validElement("account name", ref.AccountName)
}

// ValidateStorageID checks that a blob or upload storage ID can be used as a
// storage location.
func ValidateStorageID(storageID string) error {
	return validElement("storage ID", storageID)
}

// ValidateRepoName checks a repository name (the path below the account,
// components separated by "/"). Components must not contain a colon, so that
// a repository directory can never be mistaken for a manifest digest.
func ValidateRepoName(repoName string) error {
	if repoName == "" {
		return fmt.Errorf("%w: empty repository name", ErrInvalidName)
	}
	for _, c := range strings.Split(repoName, "/") {
		if err := validElement("repository name component", c); err != nil {
			return fmt.Errorf("repository %q: %w", repoName, err)
		}
		if strings.Contains(c, ":") {
			return fmt.Errorf("%w: repository name %q contains a colon", ErrInvalidName, repoName)
		}
	}
	return nil
}

// ValidateDigest checks that digest has the form "algorithm:hex".
func ValidateDigest(digest string) error {
	if err := validElement("digest", digest); err != nil {
		return err
	}
	algo, hex, ok := strings.Cut(digest, ":")
	if !ok || !digestAlgorithmRx.MatchString(algo) || !digestHexRx.MatchString(hex) {
		return fmt.Errorf("%w: digest %q is not of the form algorithm:hex", ErrInvalidName, digest)
	}
	return nil
}

// ResolveRange checks a ReadBlob range against the blob size and returns the
// number of bytes to read. offset may equal size (an empty read); length -1
// means "to the end", and a length reaching past the end is cut at the end.
func ResolveRange(size, offset, length int64) (int64, error) {
	if offset < 0 || offset > size || length < -1 {
		return 0, fmt.Errorf("%w: offset %d, length %d for a blob of %d bytes", ErrInvalidRange, offset, length, size)
	}
	if length == -1 || length > size-offset {
		return size - offset, nil
	}
	return length, nil
}
