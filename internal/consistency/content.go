package consistency

import (
	"context"
	"errors"
	"fmt"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/storage"
)

// The validation errors that a repair records, worded as the janitor's
// re-hash words them.
const (
	missingContent = "the content is missing from the storage"
	sizeMismatch   = "the content has %d bytes, not %d"
)

// checkBlobs finds the blobs whose content is missing or has another size.
func (c *checker) checkBlobs(ctx context.Context, blobs []models.Blob, stored []storage.StoredBlob) error {
	sizes := make(map[string]int64, len(stored))
	for _, s := range stored {
		sizes[s.StorageID] = s.SizeBytes
	}
	for _, b := range blobs {
		if b.StorageID == "" {
			continue // a replicated blob that was not pulled yet has no content
		}
		c.rep.Blobs++
		size, found := sizes[b.StorageID]
		if !found {
			// It may have been written after the listing (the content
			// of a push is finished before its row is committed).
			present, err := c.blobPresent(ctx, b.StorageID)
			if err != nil {
				return err
			}
			if present {
				continue
			}
		}
		if found && size == b.SizeBytes {
			continue
		}
		if b.ValidationError != "" {
			// The database knows already: the blob is not served, and
			// the next push of it replaces the content.
			c.rep.KnownBroken++
			continue
		}
		f := Finding{Kind: KindMissingBlob, Digest: b.Digest, StorageID: b.StorageID, Detail: missingContent}
		if found {
			f.Kind, f.Detail = KindBlobSizeMismatch, fmt.Sprintf(sizeMismatch, size, b.SizeBytes)
		}
		if c.opts.Repair {
			if err := c.repairBlob(ctx, b, found, &f); err != nil {
				return err
			}
		}
		c.add(f)
	}
	return nil
}

// blobPresent asks the storage for a blob directly.
func (c *checker) blobPresent(ctx context.Context, storageID string) (bool, error) {
	rc, err := c.drv.ReadBlob(ctx, c.ref, storageID, 0, 0)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading blob %s: %w", storageID, err)
	}
	rc.Close()
	return true, nil
}

// repairBlob repairs a blob whose content is missing or has another size.
// A replica account forgets the content, so that the next pull fetches it
// from the upstream again; a primary account records the blob as broken,
// as the janitor's re-hash would: it is no longer served (manifests that
// reference it stay), the next push of the same blob replaces the
// content, and garbage collection removes it once nothing references it.
func (c *checker) repairBlob(ctx context.Context, b models.Blob, objectExists bool, f *Finding) error {
	if c.account.ReplicationJSON != "" {
		changed, err := c.store.ForgetBlobContent(ctx, b.ID, b.StorageID)
		if err != nil {
			return err
		}
		if !changed {
			f.Repair = "none: the blob changed meanwhile; check again"
			return nil
		}
		if objectExists {
			err := c.drv.DeleteBlob(ctx, c.ref, b.StorageID)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("deleting the wrong content of blob %s: %w", b.Digest, err)
			}
			c.removed[b.StorageID] = true
		}
		f.Repair, f.Repaired = "content forgotten: the next pull fetches the blob from the upstream registry again", true
		return nil
	}
	if _, err := c.store.RecordBlobValidation(ctx, b.ID, c.opts.Now(), f.Detail); err != nil {
		if errors.Is(err, db.ErrNotFound) {
			f.Repair, f.Repaired = "none needed: the blob was deleted meanwhile", true
			return nil
		}
		return err
	}
	f.Repair = "recorded as broken: the blob is no longer served and the next push of it replaces the content; " +
		"manifests that reference it stay, and garbage collection removes it once nothing references it"
	f.Repaired = true
	return nil
}

// checkManifestCopies finds the manifests whose storage copy is missing.
func (c *checker) checkManifestCopies(ctx context.Context, copies []db.ManifestCopyKey, stored []storage.StoredManifest) error {
	have := make(map[storage.StoredManifest]bool, len(stored))
	for _, s := range stored {
		have[s] = true
	}
	for _, k := range copies {
		if !k.InStorage {
			continue // the copy is yet to be written
		}
		c.rep.ManifestCopies++
		if have[storage.StoredManifest{RepoName: k.RepoName, Digest: k.Digest}] {
			continue
		}
		_, err := c.drv.ReadManifest(ctx, c.ref, k.RepoName, k.Digest)
		if err == nil {
			continue // written after the listing
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("reading manifest copy %s@%s: %w", k.RepoName, k.Digest, err)
		}
		f := Finding{Kind: KindMissingManifestCopy, Repository: k.RepoName, Digest: k.Digest,
			Detail: "the storage copy of the manifest is missing (the database holds its content)"}
		if c.opts.Repair {
			if err := c.repairManifestCopy(ctx, k, &f); err != nil {
				return err
			}
		}
		c.add(f)
	}
	return nil
}

// repairManifestCopy writes the copy again from the database, as the
// janitor's manifest re-validation does.
func (c *checker) repairManifestCopy(ctx context.Context, k db.ManifestCopyKey, f *Finding) error {
	m, err := c.store.GetManifest(ctx, k.RepositoryID, k.Digest)
	if errors.Is(err, db.ErrNotFound) {
		f.Repair, f.Repaired = "none needed: the manifest was deleted meanwhile", true
		return nil
	}
	if err != nil {
		return err
	}
	if err := c.drv.WriteManifest(ctx, c.ref, k.RepoName, k.Digest, m.Content); err != nil {
		return fmt.Errorf("writing manifest copy %s@%s: %w", k.RepoName, k.Digest, err)
	}
	f.Repair, f.Repaired = "written again from the database", true
	return nil
}
