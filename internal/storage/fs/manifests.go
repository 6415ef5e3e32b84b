package fs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// WriteManifest implements storage.Driver. The content is written to a
// temporary file in the target directory, synced, and renamed into place;
// then the directory is synced.
func (d *Driver) WriteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string, content []byte) error {
	return d.WriteManifests(ctx, []storage.ManifestFile{{Ref: ref, RepoName: repoName, Digest: digest, Content: content}})[0]
}

// manifestWriters is how many files WriteManifests writes at once, so that
// the file system can commit their syncs together.
const manifestWriters = 8

// WriteManifests implements storage.ManifestBatchWriter: it writes the files
// as WriteManifest does, several at once, and syncs each directory once.
func (d *Driver) WriteManifests(ctx context.Context, files []storage.ManifestFile) []error {
	errs := make([]error, len(files))
	dirs := make([]string, len(files))
	var wg sync.WaitGroup
	slots := make(chan struct{}, manifestWriters)
	for i, f := range files {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			dirs[i], errs[i] = d.writeManifestFile(ctx, f)
		})
	}
	wg.Wait()

	byDir := map[string][]int{}
	for i, dir := range dirs {
		if errs[i] == nil {
			byDir[dir] = append(byDir[dir], i)
		}
	}
	for dir, items := range byDir {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := syncDir(dir); err != nil {
				for _, i := range items {
					errs[i] = fmt.Errorf("%s: %w", describeManifest(files[i]), err)
				}
			}
		})
	}
	wg.Wait()
	return errs
}

func describeManifest(f storage.ManifestFile) string {
	return fmt.Sprintf("write manifest %s of repository %s in %s", f.Digest, f.RepoName, describe(f.Ref))
}

// writeManifestFile writes one manifest through a synced temporary file and
// renames it into place, creating its directory if needed. It returns the
// directory, which the caller must sync.
func (d *Driver) writeManifestFile(ctx context.Context, f storage.ManifestFile) (string, error) {
	dir, path, err := d.manifestPath(f.Ref, f.RepoName, f.Digest)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", describeManifest(f), err)
	}
	for attempt := 1; ; attempt++ {
		err = writeFileSynced(dir, path, f.Content)
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
		return "", fmt.Errorf("%s: %w", describeManifest(f), err)
	}
	return dir, nil
}

// writeFileSynced replaces path with content through a synced temporary
// file in dir. The caller syncs dir.
func writeFileSynced(dir, path string, content []byte) (err error) {
	tmp, err := createTemp(dir)
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
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync temporary file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close temporary file: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

// createTemp creates a new file with a random name in dir, with the
// permissions of stored files (os.CreateTemp would need a chmod).
func createTemp(dir string) (*os.File, error) {
	var b [8]byte
	for range 10 {
		_, _ = rand.Read(b[:]) // never fails
		f, err := os.OpenFile(filepath.Join(dir, tmpPrefix+hex.EncodeToString(b[:])), os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
		if !errors.Is(err, iofs.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("create temporary file in %s: %w", dir, iofs.ErrExist)
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
