// Package db defines the metadata store: the interface through which the
// registry reads and writes accounts, repositories, blobs, uploads,
// manifests, tags and users, and multi-tenancy (roles, API keys, quotas,
// usage, audit events). Implementations live in the postgres and sqlite
// subpackages and share one SQL core (package sqlcore); dbtest is the test
// suite that every implementation must pass.
package db

import (
	"context"
	"errors"
	"time"

	"keppel/internal/models"
)

// Errors returned by Store implementations, to be compared with errors.Is.
var (
	// ErrNotFound means the requested row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a row with the same key exists already, or a
	// concurrent change got there first.
	ErrConflict = errors.New("conflict")
	// ErrStillReferenced means the row cannot be deleted because another row
	// refers to it (a blob referenced by a manifest, a manifest by an index).
	ErrStillReferenced = errors.New("still referenced")
	// ErrReferenceMissing means a row refers to something that does not
	// exist (a manifest referencing an unmounted blob or unknown child).
	ErrReferenceMissing = errors.New("referenced object missing")
)

// NoLimit can be passed as a limit to list everything.
const NoLimit = -1

// Store is the metadata store. All methods are safe for concurrent use.
type Store interface {
	AccountStore
	RepositoryStore
	BlobStore
	UploadStore
	ManifestStore
	UserStore
	TenancyStore
	GCStore
	PeerStore
	ScanStore
	InventoryStore

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connection pool.
	Close() error
}

// AccountStore manages accounts.
type AccountStore interface {
	// CreateAccount inserts an account; ErrConflict if the name is taken.
	CreateAccount(ctx context.Context, a models.Account) error
	// GetAccount returns ErrNotFound for unknown names.
	GetAccount(ctx context.Context, name string) (models.Account, error)
	// ListAccounts returns all accounts ordered by name.
	ListAccounts(ctx context.Context) ([]models.Account, error)
}

// RepositoryStore manages repositories.
type RepositoryStore interface {
	// GetRepository returns ErrNotFound for unknown repositories.
	GetRepository(ctx context.Context, accountName, name string) (models.Repository, error)
	// FindOrCreateRepository returns the repository, creating it if needed.
	// ErrReferenceMissing if the account does not exist.
	FindOrCreateRepository(ctx context.Context, accountName, name string) (models.Repository, error)
	// ListRepositories returns repositories ordered by full name
	// ("account/name", bytewise), starting after the full name afterFullName
	// ("" for the beginning), at most limit entries (NoLimit for all).
	ListRepositories(ctx context.Context, afterFullName string, limit int) ([]models.Repository, error)
}

// BlobStore manages blobs and their mounts into repositories.
type BlobStore interface {
	// GetBlobInRepository returns the blob with the digest if it is mounted
	// in the repository, ErrNotFound otherwise.
	GetBlobInRepository(ctx context.Context, repoID int64, digest string) (models.Blob, error)
	// GetBlobInAccount returns the blob with the digest in the account,
	// mounted anywhere or nowhere; ErrNotFound if none.
	GetBlobInAccount(ctx context.Context, accountName, digest string) (models.Blob, error)
	// CreateBlobAndMount stores a new blob and mounts it into the repository
	// in one transaction. If the account already has a blob with the same
	// digest, that blob is mounted instead and returned with created=false
	// (the caller then removes its own copy of the content), unless its
	// stored content was found corrupt: then the new content replaces it,
	// and created is true.
	CreateBlobAndMount(ctx context.Context, b models.Blob, repoID int64) (blob models.Blob, created bool, err error)
	// MountBlob mounts an existing blob into a repository (idempotent).
	MountBlob(ctx context.Context, blobID, repoID int64) error
	// SetBlobStorage records where the content of a replicated blob was
	// stored: only if the blob has no content yet (StorageID ""), which it
	// reports. A blob of a replica account has none until its first pull.
	SetBlobStorage(ctx context.Context, blobID int64, storageID string) (bool, error)
	// UnmountBlob removes the blob from the repository. ErrNotFound if it
	// was not mounted; ErrStillReferenced if a manifest of the repository
	// references it.
	UnmountBlob(ctx context.Context, blobID, repoID int64) error
}

// UploadStore manages blob uploads in progress.
type UploadStore interface {
	// CreateUpload inserts a new upload; ErrReferenceMissing if the
	// repository does not exist.
	CreateUpload(ctx context.Context, u models.Upload) error
	// GetUpload returns ErrNotFound for unknown uploads.
	GetUpload(ctx context.Context, repoID int64, uuid string) (models.Upload, error)
	// UpdateUpload stores the new state of an upload, but only if the
	// stored upload still has prevNumChunks chunks; otherwise (a concurrent
	// request continued the same upload) it returns ErrConflict.
	UpdateUpload(ctx context.Context, u models.Upload, prevNumChunks uint32) error
	// DeleteUpload removes an upload; ErrNotFound if it does not exist.
	DeleteUpload(ctx context.Context, repoID int64, uuid string) error
	// ListStaleUploads returns up to limit uploads that were last updated
	// before the cutoff, oldest first, with their account's storage area.
	ListStaleUploads(ctx context.Context, updatedBefore time.Time, limit int) ([]StaleUpload, error)
	// DeleteStaleUpload removes an upload only if it was still last updated
	// before the cutoff (so that a client continuing it at the same moment
	// wins); it reports whether it deleted the row.
	DeleteStaleUpload(ctx context.Context, repoID int64, uuid string, updatedBefore time.Time) (bool, error)
}

// StaleUpload is an upload found by ListStaleUploads.
type StaleUpload struct {
	models.Upload
	Storage models.StorageRef
}

// ManifestStore manages manifests, their references and tags.
type ManifestStore interface {
	// GetManifest returns a manifest by digest; ErrNotFound if absent.
	GetManifest(ctx context.Context, repoID int64, digest string) (models.ManifestWithContent, error)
	// GetTaggedManifest resolves a tag; ErrNotFound if the tag is absent.
	GetTaggedManifest(ctx context.Context, repoID int64, tag string) (models.ManifestWithContent, error)
	// PutManifest stores a manifest with its references to blobs (by blob
	// ID, mounted in the same repository) and to child manifests (by
	// digest, in the same repository), and, if tag is not empty, points the
	// tag at it, all in one transaction, together with the audit events
	// of the push. Storing a manifest that exists already only updates the
	// tag. ErrReferenceMissing if a referenced blob is not mounted or a child
	// manifest does not exist.
	PutManifest(ctx context.Context, m models.ManifestWithContent, blobIDs []int64, childDigests []string, tag string, events ...models.AuditEvent) error
	// DeleteManifest deletes a manifest and its tags. ErrNotFound if
	// absent; ErrStillReferenced if an index in the repository refers to it.
	DeleteManifest(ctx context.Context, repoID int64, digest string) error
	// ListReferrers returns the manifests of the repository whose subject is
	// the digest, ordered by digest.
	ListReferrers(ctx context.Context, repoID int64, subjectDigest string) ([]models.Manifest, error)
	// ListManifestsNotInStorage returns manifests pushed before the time
	// whose copy in the content storage was not written yet, oldest first,
	// with what it takes to write it.
	ListManifestsNotInStorage(ctx context.Context, pushedBefore time.Time, limit int) ([]ManifestCopy, error)
	// MarkManifestsInStorage records that the copies of the manifests were
	// written. It returns the keys of those that do not exist (any more).
	MarkManifestsInStorage(ctx context.Context, keys []ManifestKey) (missing []ManifestKey, err error)
	// ListTags returns tag names of the repository in bytewise order,
	// starting after the name after ("" for the beginning), at most limit
	// entries (NoLimit for all).
	ListTags(ctx context.Context, repoID int64, after string, limit int) ([]string, error)
	// DeleteTag deletes a tag; ErrNotFound if absent.
	DeleteTag(ctx context.Context, repoID int64, name string) error
}

// UserStore manages the built-in user store.
type UserStore interface {
	// GetUser returns ErrNotFound for unknown users.
	GetUser(ctx context.Context, name string) (models.User, error)
	// PutUser creates the user or replaces its password hash and admin flag.
	PutUser(ctx context.Context, u models.User) error
}

// ManifestKey names a manifest.
type ManifestKey struct {
	RepositoryID int64
	Digest       string
}

// ManifestCopy is what it takes to write the copy of a manifest into the
// content storage.
type ManifestCopy struct {
	ManifestKey
	Storage  models.StorageRef
	RepoName string
	Content  []byte
}
