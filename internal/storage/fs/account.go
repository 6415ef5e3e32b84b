package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// ListStorageContents implements storage.Driver. Blobs are listed from b/,
// manifests from m/; uploads in progress and temporary files are skipped.
func (d *Driver) ListStorageContents(ctx context.Context, ref models.StorageRef) ([]storage.StoredBlob, []storage.StoredManifest, error) {
	acct, err := d.accountDir(ref)
	if err != nil {
		return nil, nil, err
	}
	what := "list storage contents of " + describe(ref)
	blobs, err := listBlobs(ctx, filepath.Join(acct, blobsDir))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	manifests, err := listManifests(ctx, filepath.Join(acct, manifestsDir))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	return blobs, manifests, nil
}

func listBlobs(ctx context.Context, dir string) ([]storage.StoredBlob, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var blobs []storage.StoredBlob
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			continue // deleted while listing
		}
		if err != nil {
			return nil, err
		}
		blobs = append(blobs, storage.StoredBlob{StorageID: e.Name(), SizeBytes: info.Size()})
	}
	return blobs, nil
}

func listManifests(ctx context.Context, root string) ([]storage.StoredManifest, error) {
	if _, err := os.Lstat(root); errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	var manifests []storage.StoredManifest
	err := filepath.WalkDir(root, func(path string, e iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil // deleted while listing
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), tmpPrefix) {
			return nil
		}
		repo, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil || repo == "." {
			return nil // a stray file directly in m/ belongs to no repository
		}
		manifests = append(manifests, storage.StoredManifest{RepoName: filepath.ToSlash(repo), Digest: e.Name()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return manifests, nil
}

// CleanupAccount implements storage.Driver. It refuses (with
// storage.ErrAccountNotEmpty) while the account holds blobs or manifests;
// otherwise it discards abandoned uploads and temporary files and removes the
// account directory, and the tenant directory if that became empty.
func (d *Driver) CleanupAccount(ctx context.Context, ref models.StorageRef) error {
	acct, err := d.accountDir(ref)
	if err != nil {
		return err
	}
	what := "clean up storage of " + describe(ref)
	if _, err := os.Lstat(acct); errors.Is(err, iofs.ErrNotExist) {
		return nil
	}

	var dirs, garbage, remaining []string
	uploads := filepath.Join(acct, uploadsDir) + string(filepath.Separator)
	err = filepath.WalkDir(acct, func(path string, e iofs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case e.IsDir():
			dirs = append(dirs, path)
		case strings.HasPrefix(path, uploads) || strings.HasPrefix(e.Name(), tmpPrefix):
			garbage = append(garbage, path)
		default:
			rel, _ := filepath.Rel(acct, path)
			remaining = append(remaining, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(remaining) > 0 {
		return fmt.Errorf("%s: %w: %d objects remain, e.g. %s", what, storage.ErrAccountNotEmpty, len(remaining), remaining[0])
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}

	for _, path := range garbage {
		if err := os.Remove(path); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	// WalkDir lists parents before children: remove in reverse order.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	tenantDir := filepath.Dir(acct)
	if os.Remove(tenantDir) == nil {
		// The tenant has no other accounts left here.
		tenantDir = d.root
	}
	if err := syncDir(tenantDir); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
