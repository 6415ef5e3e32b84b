// Package migration moves an installation's content from one storage
// backend to another without downtime. Its driver serves from both while
// the storage sweep copies each account's blobs and manifest copies from
// the old backend to the new one:
//
//   - new uploads and manifest copies go to the new backend;
//   - an upload that was started on the old backend is continued and
//     finished there (it is moved later, like any other blob);
//   - reads try the new backend first, then the old one;
//   - deletes and aborts go to both;
//   - listings are the union of both.
//
// A blob is copied completely and checked for its size before its old copy
// is deleted, so at every moment at least one backend has it.
package migration

import (
	"context"
	"errors"
	"fmt"
	"io"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// Driver serves content from two backends while it moves.
type Driver struct {
	to, from storage.Driver
}

var (
	_ storage.Driver              = (*Driver)(nil)
	_ storage.Migrator            = (*Driver)(nil)
	_ storage.ManifestBatchWriter = (*Driver)(nil)
)

// New returns a driver that moves content from the old backend to the new
// one.
func New(to, from storage.Driver) *Driver {
	return &Driver{to: to, from: from}
}

// countingReader counts what was read, to tell whether a failed call
// consumed any of the caller's content.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// AppendToBlob implements storage.Driver: chunk 1 goes to the new backend;
// later chunks go where the upload is.
func (d *Driver) AppendToBlob(ctx context.Context, ref models.StorageRef, storageID string, chunkNumber uint32, offset int64, r io.Reader) (int64, error) {
	if chunkNumber == 1 {
		return d.to.AppendToBlob(ctx, ref, storageID, chunkNumber, offset, r)
	}
	cr := &countingReader{r: r}
	n, err := d.to.AppendToBlob(ctx, ref, storageID, chunkNumber, offset, cr)
	if errors.Is(err, storage.ErrNotFound) && cr.n == 0 {
		return d.from.AppendToBlob(ctx, ref, storageID, chunkNumber, offset, r)
	}
	return n, err
}

// FinalizeBlob implements storage.Driver.
func (d *Driver) FinalizeBlob(ctx context.Context, ref models.StorageRef, storageID string, chunkCount uint32) error {
	err := d.to.FinalizeBlob(ctx, ref, storageID, chunkCount)
	if errors.Is(err, storage.ErrNotFound) {
		return d.from.FinalizeBlob(ctx, ref, storageID, chunkCount)
	}
	return err
}

// both combines the outcomes of a removal on both backends: a real error
// of either, else ErrNotFound if neither had the object, else success.
func both(fromErr, toErr error) error {
	toMissing, fromMissing := errors.Is(toErr, storage.ErrNotFound), errors.Is(fromErr, storage.ErrNotFound)
	switch {
	case toErr != nil && !toMissing:
		return toErr
	case fromErr != nil && !fromMissing:
		return fmt.Errorf("old storage: %w", fromErr)
	case toMissing && fromMissing:
		return toErr
	default:
		return nil
	}
}

// AbortBlobUpload implements storage.Driver.
func (d *Driver) AbortBlobUpload(ctx context.Context, ref models.StorageRef, storageID string, chunkCount uint32) error {
	toErr := d.to.AbortBlobUpload(ctx, ref, storageID, chunkCount)
	return both(d.from.AbortBlobUpload(ctx, ref, storageID, chunkCount), toErr)
}

// ReadBlob implements storage.Driver.
func (d *Driver) ReadBlob(ctx context.Context, ref models.StorageRef, storageID string, offset, length int64) (io.ReadCloser, error) {
	rc, err := d.to.ReadBlob(ctx, ref, storageID, offset, length)
	if errors.Is(err, storage.ErrNotFound) {
		return d.from.ReadBlob(ctx, ref, storageID, offset, length)
	}
	return rc, err
}

// DeleteBlob implements storage.Driver.
func (d *Driver) DeleteBlob(ctx context.Context, ref models.StorageRef, storageID string) error {
	toErr := d.to.DeleteBlob(ctx, ref, storageID)
	return both(d.from.DeleteBlob(ctx, ref, storageID), toErr)
}

// WriteManifest implements storage.Driver.
func (d *Driver) WriteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string, content []byte) error {
	return d.to.WriteManifest(ctx, ref, repoName, digest, content)
}

// WriteManifests implements storage.ManifestBatchWriter.
func (d *Driver) WriteManifests(ctx context.Context, files []storage.ManifestFile) []error {
	if bw, ok := d.to.(storage.ManifestBatchWriter); ok {
		return bw.WriteManifests(ctx, files)
	}
	errs := make([]error, len(files))
	for i, f := range files {
		errs[i] = d.to.WriteManifest(ctx, f.Ref, f.RepoName, f.Digest, f.Content)
	}
	return errs
}

// ReadManifest implements storage.Driver.
func (d *Driver) ReadManifest(ctx context.Context, ref models.StorageRef, repoName, digest string) ([]byte, error) {
	content, err := d.to.ReadManifest(ctx, ref, repoName, digest)
	if errors.Is(err, storage.ErrNotFound) {
		return d.from.ReadManifest(ctx, ref, repoName, digest)
	}
	return content, err
}

// DeleteManifest implements storage.Driver.
func (d *Driver) DeleteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string) error {
	toErr := d.to.DeleteManifest(ctx, ref, repoName, digest)
	return both(d.from.DeleteManifest(ctx, ref, repoName, digest), toErr)
}

// ListStorageContents implements storage.Driver with the union of both
// backends (the new backend's entry where both have an object).
func (d *Driver) ListStorageContents(ctx context.Context, ref models.StorageRef) ([]storage.StoredBlob, []storage.StoredManifest, error) {
	blobs, manifests, err := d.to.ListStorageContents(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	oldBlobs, oldManifests, err := d.from.ListStorageContents(ctx, ref)
	if err != nil {
		return nil, nil, fmt.Errorf("old storage: %w", err)
	}
	seen := make(map[string]bool, len(blobs))
	for _, b := range blobs {
		seen[b.StorageID] = true
	}
	for _, b := range oldBlobs {
		if !seen[b.StorageID] {
			blobs = append(blobs, b)
		}
	}
	seenM := make(map[storage.StoredManifest]bool, len(manifests))
	for _, m := range manifests {
		seenM[m] = true
	}
	for _, m := range oldManifests {
		if !seenM[m] {
			manifests = append(manifests, m)
		}
	}
	storage.SortContents(blobs, manifests)
	return blobs, manifests, nil
}

// CleanupAccount implements storage.Driver on both backends.
func (d *Driver) CleanupAccount(ctx context.Context, ref models.StorageRef) error {
	if err := d.to.CleanupAccount(ctx, ref); err != nil {
		return err
	}
	if err := d.from.CleanupAccount(ctx, ref); err != nil {
		return fmt.Errorf("old storage: %w", err)
	}
	return nil
}

// PendingMigration implements storage.Migrator.
func (d *Driver) PendingMigration(ctx context.Context, ref models.StorageRef) ([]storage.StoredBlob, []storage.StoredManifest, error) {
	blobs, manifests, err := d.from.ListStorageContents(ctx, ref)
	if err != nil {
		return nil, nil, fmt.Errorf("old storage: %w", err)
	}
	return blobs, manifests, nil
}

// MigrateBlob implements storage.Migrator: the blob is streamed into an
// upload on the new backend under the same storage ID, finalized there
// when all of it arrived, and only then deleted from the old backend.
func (d *Driver) MigrateBlob(ctx context.Context, ref models.StorageRef, blob storage.StoredBlob) error {
	what := fmt.Sprintf("moving blob %s of account %s/%s", blob.StorageID, ref.AuthTenantID, ref.AccountName)
	rc, err := d.from.ReadBlob(ctx, ref, blob.StorageID, 0, -1)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := d.to.AppendToBlob(ctx, ref, blob.StorageID, 1, 0, rc)
	rc.Close()
	if err == nil && n != blob.SizeBytes {
		err = fmt.Errorf("copied %d bytes, but the blob has %d", n, blob.SizeBytes)
	}
	if err != nil {
		if abortErr := d.to.AbortBlobUpload(ctx, ref, blob.StorageID, 1); abortErr != nil && !errors.Is(abortErr, storage.ErrNotFound) {
			err = errors.Join(err, abortErr)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := d.to.FinalizeBlob(ctx, ref, blob.StorageID, 1); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := d.from.DeleteBlob(ctx, ref, blob.StorageID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%s: the copy is in place, but deleting the old one failed: %w", what, err)
	}
	return nil
}

// MigrateManifest implements storage.Migrator. A copy that the new backend
// has already (written after the migration began) is kept.
func (d *Driver) MigrateManifest(ctx context.Context, ref models.StorageRef, m storage.StoredManifest) error {
	what := fmt.Sprintf("moving manifest %s@%s of account %s/%s", m.RepoName, m.Digest, ref.AuthTenantID, ref.AccountName)
	_, err := d.to.ReadManifest(ctx, ref, m.RepoName, m.Digest)
	if errors.Is(err, storage.ErrNotFound) {
		content, err := d.from.ReadManifest(ctx, ref, m.RepoName, m.Digest)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := d.to.WriteManifest(ctx, ref, m.RepoName, m.Digest, content); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	} else if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := d.from.DeleteManifest(ctx, ref, m.RepoName, m.Digest); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%s: the copy is in place, but deleting the old one failed: %w", what, err)
	}
	return nil
}
