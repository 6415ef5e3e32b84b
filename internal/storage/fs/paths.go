package fs

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"keppel/internal/models"
	"keppel/internal/storage"
)

const (
	dirPerm  = 0o750
	filePerm = 0o640

	blobsDir     = "b"
	uploadsDir   = "u"
	manifestsDir = "m"

	// tmpPrefix starts the names of temporary files that WriteManifest
	// renames into place. Digests never start with a dot, so these can never
	// be mistaken for manifests.
	tmpPrefix = ".tmp-"

	// mkdirAttempts bounds how often a write retries when a concurrent
	// cleanup removed the directory it was about to write into.
	mkdirAttempts = 10
)

// describe names an account's storage area in error messages.
func describe(ref models.StorageRef) string {
	return ref.AuthTenantID + "/" + ref.AccountName
}

// accountDir returns <root>/<tenant>/<account> after validating both names.
func (d *Driver) accountDir(ref models.StorageRef) (string, error) {
	if err := storage.ValidateRef(ref); err != nil {
		return "", err
	}
	return filepath.Join(d.root, ref.AuthTenantID, ref.AccountName), nil
}

// blobPath returns the path of a blob (kind blobsDir) or upload (kind
// uploadsDir) and the directory holding it.
func (d *Driver) blobPath(ref models.StorageRef, kind, storageID string) (dir, path string, err error) {
	acct, err := d.accountDir(ref)
	if err != nil {
		return "", "", err
	}
	if err := storage.ValidateStorageID(storageID); err != nil {
		return "", "", err
	}
	dir = filepath.Join(acct, kind)
	return dir, filepath.Join(dir, storageID), nil
}

// manifestPath returns the path of a manifest and the directory holding it.
func (d *Driver) manifestPath(ref models.StorageRef, repoName, digest string) (dir, path string, err error) {
	acct, err := d.accountDir(ref)
	if err != nil {
		return "", "", err
	}
	if err := storage.ValidateRepoName(repoName); err != nil {
		return "", "", err
	}
	if err := storage.ValidateDigest(digest); err != nil {
		return "", "", err
	}
	dir = filepath.Join(acct, manifestsDir, filepath.FromSlash(repoName))
	return dir, filepath.Join(dir, digest), nil
}

// mkdirAll creates dir (which must lie below the root) and its missing
// parents, syncing every directory that gained an entry so that the new
// directories survive a crash. It retries when a concurrent cleanup removes
// a parent half-way.
func (d *Driver) mkdirAll(dir string) error {
	var err error
	for range mkdirAttempts {
		err = d.tryMkdirAll(dir)
		if err == nil || !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
	}
	return err
}

func (d *Driver) tryMkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	rel, err := filepath.Rel(d.root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("directory %s is outside of the storage root", dir)
	}
	cur := d.root
	for _, elem := range strings.Split(rel, string(filepath.Separator)) {
		next := filepath.Join(cur, elem)
		err := os.Mkdir(next, dirPerm)
		switch {
		case err == nil:
			if err := syncDir(cur); err != nil {
				return err
			}
		case errors.Is(err, iofs.ErrExist):
			// Created earlier or concurrently; durable once its creator synced.
		default:
			return fmt.Errorf("create directory: %w", err)
		}
		cur = next
	}
	return nil
}

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for sync: %w", err)
	}
	err = f.Sync()
	closeErr := f.Close()
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	if closeErr != nil {
		return fmt.Errorf("close directory %s: %w", dir, closeErr)
	}
	return nil
}

// notFound wraps storage.ErrNotFound when err says the file does not exist,
// and adds what to err otherwise.
func notFound(err error, what string) error {
	if errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}
