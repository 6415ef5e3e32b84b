package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/opencontainers/go-digest"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/oci"
	"keppel/internal/storage"
)

// GC settings: a mount or blob found unreferenced is deleted by the first
// sweep after one grace period (see docs/gc.md); every repository and
// account is swept about once per sweep interval.
const (
	DefaultGCGracePeriod   = 10 * time.Minute
	DefaultGCSweepInterval = 5 * time.Minute
)

// spread returns d ± 10 %, so that rows swept together drift apart.
func spread(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// SweepBlobMounts sweeps the blob mounts of the next repository that is due
// (see db.GCStore.SweepBlobMounts). claimed is false if none was due.
func (s *Service) SweepBlobMounts(ctx context.Context, grace, interval time.Duration) (res db.MountSweep, claimed bool, err error) {
	now := s.now()
	return s.db.SweepBlobMounts(ctx, now, grace, now.Add(spread(interval)))
}

// SweepBlobs sweeps the blobs of the next account that is due (see
// db.GCStore.SweepBlobs) and removes the content of the blobs it deleted.
// Content that cannot be removed now is left for the storage sweep.
func (s *Service) SweepBlobs(ctx context.Context, grace, interval time.Duration) (res db.BlobSweep, claimed bool, err error) {
	now := s.now()
	res, claimed, err = s.db.SweepBlobs(ctx, now, grace, now.Add(spread(interval)))
	if err != nil || !claimed {
		return res, claimed, err
	}
	var errs []error
	for _, b := range res.Deleted {
		if b.StorageID == "" {
			continue // a replicated blob that was never pulled
		}
		err := s.storage.DeleteBlob(ctx, res.Account, b.StorageID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, fmt.Errorf("deleting content of blob %s: %w", b.Digest, err))
		}
	}
	return res, claimed, errors.Join(errs...)
}

// DefaultStorageSweepInterval is how often each account's storage is
// compared with the database.
const DefaultStorageSweepInterval = time.Hour

// StorageSweep is what one SweepStorage did.
type StorageSweep struct {
	Account models.StorageRef
	// Found counts the objects in the account's storage; Deleted those
	// that the database had not known for a grace period.
	Found   int
	Deleted []db.StorageObject
	// While the storage moves to a new backend: Migrated counts the
	// objects moved in this sweep, PendingMigration those that remain on
	// the old backend.
	Migrated, PendingMigration int
}

// While the storage moves to a new backend (storage.Migrator), each
// account's sweep is due at least every MigrationSweepInterval and moves
// objects for at most MigrationBudget: well below the interval, so that no
// other janitor claims the account while it moves.
const (
	MigrationSweepInterval = 15 * time.Minute
	MigrationBudget        = 5 * time.Minute
)

// SweepStorage compares the storage of the next account that is due with
// the database and deletes the objects that the database has not known for
// a grace period (left behind by crashes between a row's delete and its
// content's, for instance). claimed is false if no account was due.
func (s *Service) SweepStorage(ctx context.Context, grace, interval time.Duration) (res StorageSweep, claimed bool, err error) {
	migrator, migrating := s.storage.(storage.Migrator)
	if migrating {
		interval = min(interval, MigrationSweepInterval)
	}
	now := s.now()
	ref, claimed, err := s.db.ClaimStorageSweep(ctx, now, now.Add(spread(interval)))
	if err != nil || !claimed {
		return res, claimed, err
	}
	res.Account = ref
	blobs, manifests, err := s.storage.ListStorageContents(ctx, ref)
	if err != nil {
		return res, true, fmt.Errorf("listing storage of account %s: %w", ref.AccountName, err)
	}
	found := make([]db.StorageObject, 0, len(blobs)+len(manifests))
	for _, b := range blobs {
		found = append(found, db.StorageObject{StorageID: b.StorageID})
	}
	for _, m := range manifests {
		found = append(found, db.StorageObject{RepoName: m.RepoName, Digest: m.Digest})
	}
	res.Found = len(found)
	// The database is asked after the listing: what was committed before
	// an object was listed is known.
	expired, err := s.db.ReconcileUnknownObjects(ctx, ref.AccountName, found, s.now(), grace)
	if err != nil {
		return res, true, err
	}
	var errs []error
	for _, o := range expired {
		if o.IsBlob() {
			err = s.storage.DeleteBlob(ctx, ref, o.StorageID)
		} else {
			err = s.storage.DeleteManifest(ctx, ref, o.RepoName, o.Digest)
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, fmt.Errorf("deleting unknown object %+v: %w", o, err))
			continue
		}
		res.Deleted = append(res.Deleted, o)
	}
	if migrating {
		res.Migrated, res.PendingMigration, err = migrateAccount(ctx, migrator, ref, time.Now().Add(MigrationBudget))
		errs = append(errs, err)
	}
	return res, true, errors.Join(errs...)
}

// migrateAccount moves the account's manifest copies and blobs from the old
// storage backend to the new one until the deadline.
func migrateAccount(ctx context.Context, m storage.Migrator, ref models.StorageRef, deadline time.Time) (moved, pending int, err error) {
	blobs, manifests, err := m.PendingMigration(ctx, ref)
	if err != nil {
		return 0, 0, fmt.Errorf("listing what account %s has on the old storage: %w", ref.AccountName, err)
	}
	pending = len(blobs) + len(manifests)
	var errs []error
	for _, mf := range manifests {
		if ctx.Err() != nil || time.Now().After(deadline) {
			return moved, pending, errors.Join(errs...)
		}
		if err := m.MigrateManifest(ctx, ref, mf); err != nil {
			errs = append(errs, err)
			continue
		}
		moved++
		pending--
	}
	for _, b := range blobs {
		if ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		if err := m.MigrateBlob(ctx, ref, b); err != nil {
			errs = append(errs, err)
			continue
		}
		moved++
		pending--
	}
	return moved, pending, errors.Join(errs...)
}

// DefaultBlobRehashInterval is how often each blob's content is read back
// and hashed.
const DefaultBlobRehashInterval = 7 * 24 * time.Hour

// BlobRehash is what one RehashNextBlob did.
type BlobRehash struct {
	Blob models.Blob
	// Error says why the content did not match ("" if it did).
	Error string
	// Changed is true if the blob's state changed with this result.
	Changed bool
}

// RehashNextBlob reads back the content of the next blob whose re-hash is
// due and compares it with the digest and size. A blob whose content does
// not match (or is missing) is no longer served; a push of the same blob
// replaces its content. claimed is false if no blob was due.
func (s *Service) RehashNextBlob(ctx context.Context, interval time.Duration) (res BlobRehash, claimed bool, err error) {
	now := s.now()
	b, ref, claimed, err := s.db.ClaimBlobValidation(ctx, now, interval, now.Add(spread(interval)))
	if err != nil || !claimed {
		return res, claimed, err
	}
	res.Blob = b
	res.Error, err = s.rehash(ctx, ref, b)
	if err != nil {
		return res, true, err
	}
	res.Changed, err = s.db.RecordBlobValidation(ctx, b.ID, s.now(), res.Error)
	if err != nil {
		return res, true, err
	}
	if res.Error != "" {
		s.log.Error("blob content does not match its digest", "account", b.AccountName, "digest", b.Digest,
			"storage_id", b.StorageID, "problem", res.Error)
	}
	return res, true, nil
}

// rehash returns why the stored content of b does not match it, or "".
// An error means that the check itself failed (and says nothing about the
// content).
func (s *Service) rehash(ctx context.Context, ref models.StorageRef, b models.Blob) (string, error) {
	d, err := digest.Parse(b.Digest)
	if err != nil || !d.Algorithm().Available() {
		return fmt.Sprintf("the digest %q cannot be checked", b.Digest), nil
	}
	if b.StorageID == "" {
		return "", nil // a replicated blob that was never pulled has no content to check
	}
	rc, err := s.storage.ReadBlob(ctx, ref, b.StorageID, 0, -1)
	if errors.Is(err, storage.ErrNotFound) {
		return "the content is missing from the storage", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading blob %s: %w", b.Digest, err)
	}
	defer rc.Close()
	v := d.Verifier()
	n, err := io.Copy(v, rc)
	if err != nil {
		return "", fmt.Errorf("reading blob %s: %w", b.Digest, err)
	}
	switch {
	case n != b.SizeBytes:
		return fmt.Sprintf("the content has %d bytes, not %d", n, b.SizeBytes), nil
	case !v.Verified():
		return "the content does not match the digest", nil
	}
	return "", nil
}

// DefaultManifestRevalidationInterval is how often each manifest's stored
// content is checked again.
const DefaultManifestRevalidationInterval = 24 * time.Hour

// ManifestRevalidation is what one RevalidateNextManifest did.
type ManifestRevalidation struct {
	Manifest db.ManifestKey
	// Error says why the stored content did not check out ("" if it did).
	Error string
	// CopyRepaired is true if the copy in the content storage was missing
	// or differed, and was written again from the database.
	CopyRepaired bool
}

// RevalidateNextManifest checks the next manifest whose re-validation is
// due: its content in the database must still have its digest and parse
// as a manifest (a manifest that fails is no longer served), and its copy
// in the content storage must be equal to it (a missing or different copy
// is written again). claimed is false if no manifest was due.
func (s *Service) RevalidateNextManifest(ctx context.Context, interval time.Duration) (res ManifestRevalidation, claimed bool, err error) {
	now := s.now()
	c, mediaType, claimed, err := s.db.ClaimManifestValidation(ctx, now, interval, now.Add(spread(interval)))
	if err != nil || !claimed {
		return res, claimed, err
	}
	res.Manifest = c.ManifestKey
	d, err := digest.Parse(c.Digest)
	switch {
	case err != nil || !d.Algorithm().Available():
		res.Error = fmt.Sprintf("the digest %q cannot be checked", c.Digest)
	case d.Algorithm().FromBytes(c.Content) != d:
		res.Error = "the content does not match the digest"
	default:
		if _, err := oci.ParseManifest(mediaType, c.Content); err != nil {
			res.Error = "the content is not a valid manifest: " + err.Error()
		}
	}
	if _, err := s.db.RecordManifestValidation(ctx, c.ManifestKey, s.now(), res.Error); err != nil {
		return res, true, err
	}
	if res.Error != "" {
		s.log.Error("stored manifest content does not check out", "account", c.Storage.AccountName,
			"repository", c.RepoName, "digest", c.Digest, "problem", res.Error)
		return res, true, nil
	}
	stored, err := s.storage.ReadManifest(ctx, c.Storage, c.RepoName, c.Digest)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return res, true, fmt.Errorf("reading the storage copy of manifest %s: %w", c.Digest, err)
	}
	if err == nil && bytes.Equal(stored, c.Content) {
		return res, true, nil
	}
	// Missing (perhaps still queued for the background writer, which
	// writes the same bytes) or different: write it from the database.
	if err := s.storage.WriteManifest(ctx, c.Storage, c.RepoName, c.Digest, c.Content); err != nil {
		return res, true, fmt.Errorf("repairing the storage copy of manifest %s: %w", c.Digest, err)
	}
	res.CopyRepaired = true
	if _, err := s.db.MarkManifestsInStorage(ctx, []db.ManifestKey{c.ManifestKey}); err != nil {
		return res, true, err
	}
	return res, true, nil
}
