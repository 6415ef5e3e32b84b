package db

import (
	"context"
	"time"

	"keppel/internal/models"
)

// InventoryStore lists what the metadata store records about the content of
// an account's storage, for the consistency check of the metadata against
// the storage (`keppel server check`).
type InventoryStore interface {
	// ListBlobsOfAccount returns every blob of the account, ordered by
	// digest.
	ListBlobsOfAccount(ctx context.Context, accountName string) ([]models.Blob, error)
	// ListManifestsOfAccount returns every manifest of the account, ordered
	// by repository name and digest, with whether its copy in the content
	// storage was recorded as written.
	ListManifestsOfAccount(ctx context.Context, accountName string) ([]ManifestCopyKey, error)
	// ListUnknownObjects returns the objects of the account's storage that
	// storage sweeps found unknown to the database, with the time from
	// which they may be deleted, ordered by kind and name.
	ListUnknownObjects(ctx context.Context, accountName string) ([]UnknownObject, error)
	// ForgetBlobContent sets the storage ID of the blob to "" (no content
	// yet, fetched again from the upstream by the next pull of a replica
	// account), but only if it still is storageID. It reports whether it
	// changed the blob.
	ForgetBlobContent(ctx context.Context, blobID int64, storageID string) (bool, error)
}

// ManifestCopyKey names a manifest with its repository's name, and says
// whether its copy in the content storage was recorded as written.
type ManifestCopyKey struct {
	ManifestKey
	RepoName  string
	InStorage bool
}

// UnknownObject is an object that a storage sweep found unknown to the
// database.
type UnknownObject struct {
	StorageObject
	CanBeDeletedAt time.Time
}
