package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"

	"keppel/internal/models"
)

// WriteManifest implements storage.Driver. The content is written to a
// temporary file in the target directory, synced, and renamed into place.
func (d *Driver) WriteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string, content []byte) error {
	dir, path, err := d.manifestPath(ref, repoName, digest)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("write manifest %s of repository %s in %s", digest, repoName, describe(ref))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for attempt := 1; ; attempt++ {
		err = writeFileAtomic(dir, path, content)
		if err == nil || !errors.Is(err, iofs.ErrNotExist) || attempt == mkdirAttempts {
			break
		}
		// The directory does not exist yet, or a concurrent DeleteManifest
		// removed it as empty.
		if err = d.mkdirAll(dir); err != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// writeFileAtomic replaces path with content through a synced temporary file
// in dir and syncs dir.
func writeFileAtomic(dir, path string, content []byte) (err error) {
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(content); err != nil {
		return fmt.Errorf("write temporary file: %w", err)
	}
	if err := tmp.Chmod(filePerm); err != nil {
		return fmt.Errorf("set permissions of temporary file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync temporary file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close temporary file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// ReadManifest implements storage.Driver.
func (d *Driver) ReadManifest(ctx context.Context, ref models.StorageRef, repoName, digest string) ([]byte, error) {
	_, path, err := d.manifestPath(ref, repoName, digest)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("read manifest %s of repository %s in %s", digest, repoName, describe(ref))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, notFound(err, what)
	}
	return content, nil
}

// DeleteManifest implements storage.Driver. It also removes the repository
// directories that became empty, up to (not including) the m/ directory.
func (d *Driver) DeleteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string) error {
	dir, path, err := d.manifestPath(ref, repoName, digest)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return notFound(err, fmt.Sprintf("delete manifest %s of repository %s in %s", digest, repoName, describe(ref)))
	}
	acct, err := d.accountDir(ref)
	if err != nil {
		return err
	}
	stop := filepath.Join(acct, manifestsDir)
	for ; dir != stop && len(dir) > len(stop); dir = filepath.Dir(dir) {
		// Fails (and ends the climb) as soon as a directory is not empty.
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}
