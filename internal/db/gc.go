package db

import (
	"context"
	"time"

	"keppel/internal/models"
)

// GCStore runs the database side of garbage collection. Each sweep claims
// the next repository or account whose sweep is due, sweeps it and
// schedules its next sweep, all in one transaction: on PostgreSQL the claim
// is a row lock taken with SKIP LOCKED, so that janitor processes running
// at the same time sweep different rows; on SQLite the write transaction
// excludes every other writer. Marks are deadlines: a row is marked with
// can_be_deleted_at = now + grace and deleted by a later sweep that finds
// it still unreferenced after that time (see docs/gc.md).
type GCStore interface {
	// SweepBlobMounts sweeps the next repository whose mount sweep is due
	// at now. It deletes the mounts that no manifest references and whose
	// mark has expired, unless an upload into the repository was active
	// within the grace period (a push in progress); it marks the mounts
	// that became unreferenced, and clears the marks of mounts that are
	// referenced again. The repository's next sweep is due at next.
	// claimed is false if no repository was due.
	SweepBlobMounts(ctx context.Context, now time.Time, grace time.Duration, next time.Time) (res MountSweep, claimed bool, err error)
	// SweepBlobs sweeps the next account whose blob sweep is due at now. It
	// deletes the blobs that are mounted nowhere and whose mark has
	// expired (taking their size off the tenant's usage), and marks the
	// blobs that became unmounted. It returns the deleted blobs, whose
	// content the caller removes from the storage.
	SweepBlobs(ctx context.Context, now time.Time, grace time.Duration, next time.Time) (res BlobSweep, claimed bool, err error)
	// ClaimStorageSweep claims the next account whose storage sweep is due
	// at now and schedules its next one at next. claimed is false if none
	// was due.
	ClaimStorageSweep(ctx context.Context, now, next time.Time) (account models.StorageRef, claimed bool, err error)
	// ClaimReplicaSync claims the next repository of a replica account
	// (not in deletion) whose sync with the upstream is due at now, and
	// schedules its next one at next. claimed is false if none was due.
	ClaimReplicaSync(ctx context.Context, now, next time.Time) (account models.Account, repo models.Repository, claimed bool, err error)
	// ReconcileUnknownObjects compares the objects found in the account's
	// storage with what the database knows: finished blobs by storage ID,
	// manifests by repository and digest. It remembers the unknown ones,
	// with the deadline now + grace when first seen, and forgets those that
	// are known or gone. It returns (and forgets) the unknown ones whose
	// deadline has passed; the caller deletes them from the storage.
	ReconcileUnknownObjects(ctx context.Context, account string, found []StorageObject, now time.Time, grace time.Duration) (expired []StorageObject, err error)
	// ClaimBlobValidation claims the next blob whose re-hash is due at now
	// (one interval after its push, then after each re-hash), sets its next
	// re-hash to next, and returns it with its account's storage area.
	// claimed is false if none was due.
	ClaimBlobValidation(ctx context.Context, now time.Time, interval time.Duration, next time.Time) (b models.Blob, ref models.StorageRef, claimed bool, err error)
	// RecordBlobValidation stores the result of a re-hash: why the content
	// did not match its digest, or "" if it did. changed reports whether
	// the blob's state changed.
	RecordBlobValidation(ctx context.Context, blobID int64, at time.Time, validationError string) (changed bool, err error)
	// ClaimGCPolicyRun claims the next repository whose GC policy run is
	// due at now, in an account that has GC policies and is not being
	// deleted, and schedules its next run at next.
	ClaimGCPolicyRun(ctx context.Context, now, next time.Time) (repo models.Repository, claimed bool, err error)
	// ListGCCandidates returns every manifest of the repository with what
	// GC policies look at, ordered by digest.
	ListGCCandidates(ctx context.Context, repoID int64) ([]GCCandidate, error)
	// SetGCStatuses stores the GC status JSON of manifests of the
	// repository (by digest; "" for none), writing only those that change.
	SetGCStatuses(ctx context.Context, repoID int64, statuses map[string]string) error
	// ClaimManifestValidation claims the next manifest whose re-validation
	// is due at now (one interval after its push, then after each
	// re-validation), sets its next one to next, and returns it with its
	// content, its repository and the repository's account storage area.
	ClaimManifestValidation(ctx context.Context, now time.Time, interval time.Duration, next time.Time) (m ManifestCopy, mediaType string, claimed bool, err error)
	// RecordManifestValidation stores the result of a re-validation: why the
	// content did not check out, or "" if it did. changed reports whether
	// the manifest's state changed.
	RecordManifestValidation(ctx context.Context, key ManifestKey, at time.Time, validationError string) (changed bool, err error)
}

// GCCandidate is a manifest as GC policies see it.
type GCCandidate struct {
	Digest       string
	Tags         []string
	PushedAt     time.Time
	LastPulledAt time.Time // zero if never pulled
	// IsChild is true if an index of the repository references the
	// manifest; IsSubject if a manifest of the repository refers to it as
	// its subject (a referrer).
	IsChild, IsSubject bool
}

// StorageObject is an object in an account's storage: a blob (StorageID)
// or a manifest copy (RepoName and Digest).
type StorageObject struct {
	StorageID string
	RepoName  string
	Digest    string
}

// IsBlob tells a blob from a manifest copy.
func (o StorageObject) IsBlob() bool { return o.StorageID != "" }

// MountSweep is what one SweepBlobMounts did.
type MountSweep struct {
	RepositoryID              int64
	Marked, Unmarked, Deleted int
	SkippedForActiveUploads   bool
}

// BlobSweep is what one SweepBlobs did.
type BlobSweep struct {
	Account models.StorageRef
	Marked  int
	Deleted []models.Blob
}
