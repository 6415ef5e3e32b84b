// Package storage defines the content storage driver interface. Every call
// names the account's storage area (models.StorageRef), so that content of
// different accounts is kept apart. Implementations live in subpackages;
// storagetest is the conformance suite every driver must pass.
package storage

import (
	"context"
	"errors"
	"io"
	"time"

	"keppel/internal/models"
)

// ErrNotFound is returned when a blob, upload or manifest does not exist.
var ErrNotFound = errors.New("not found in storage")

// Driver stores blob and manifest content per account.
//
// Blobs are written as uploads: one or more AppendToBlob calls followed by
// FinalizeBlob (or AbortBlobUpload). Until FinalizeBlob returns, the content
// is not readable with ReadBlob. All writes are durable when the call returns
// (fsync or equivalent), and a crash at any point never leaves a finished blob
// with partial content. Missing objects yield ErrNotFound; names that cannot
// be storage locations (see ValidateRef and friends) yield ErrInvalidName.
type Driver interface {
	// AppendToBlob appends the content of r to the upload storageID as chunk
	// chunkNumber (1-based). offset is the number of bytes the upload holds
	// from earlier, acknowledged chunks; content beyond it (left by a chunk
	// that failed half-way) is discarded first. It returns the number of
	// bytes written. When it returns an error, the upload still holds
	// exactly offset bytes as far as later calls are concerned. If the
	// upload holds fewer than offset bytes, it fails with
	// ErrUploadOffsetMismatch; with offset > 0 and no upload, ErrNotFound.
	// Both errors are returned before anything is read from r.
	AppendToBlob(ctx context.Context, ref models.StorageRef, storageID string, chunkNumber uint32, offset int64, r io.Reader) (int64, error)
	// FinalizeBlob makes the upload readable as a blob under the same
	// storageID. chunkCount is the number of chunks appended; with
	// chunkCount 0 and no upload it creates an empty blob.
	FinalizeBlob(ctx context.Context, ref models.StorageRef, storageID string, chunkCount uint32) error
	// AbortBlobUpload removes an unfinished upload (ErrNotFound if none).
	AbortBlobUpload(ctx context.Context, ref models.StorageRef, storageID string, chunkCount uint32) error
	// ReadBlob returns length bytes of the blob starting at offset (length
	// -1 reads to the end; a longer length is cut at the end). An offset
	// beyond the end fails with ErrInvalidRange.
	ReadBlob(ctx context.Context, ref models.StorageRef, storageID string, offset, length int64) (io.ReadCloser, error)
	// DeleteBlob removes a finished blob.
	DeleteBlob(ctx context.Context, ref models.StorageRef, storageID string) error

	// WriteManifest stores a manifest's content (atomically and durably).
	WriteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string, content []byte) error
	// ReadManifest returns a manifest's content.
	ReadManifest(ctx context.Context, ref models.StorageRef, repoName, digest string) ([]byte, error)
	// DeleteManifest removes a manifest's content.
	DeleteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string) error

	// ListStorageContents lists the finished blobs and manifests of the
	// account, for sweeping storage of objects the database does not know.
	ListStorageContents(ctx context.Context, ref models.StorageRef) ([]StoredBlob, []StoredManifest, error)
	// CleanupAccount removes the (empty) storage area of a deleted account,
	// discarding abandoned uploads. It fails with ErrAccountNotEmpty while
	// blobs or manifests remain.
	CleanupAccount(ctx context.Context, ref models.StorageRef) error
}

// StoredBlob is a finished blob found in storage.
type StoredBlob struct {
	StorageID string
	SizeBytes int64
}

// StoredManifest is a manifest found in storage.
type StoredManifest struct {
	RepoName string
	Digest   string
}

// ManifestFile is one manifest for ManifestBatchWriter.WriteManifests.
type ManifestFile struct {
	Ref      models.StorageRef
	RepoName string
	Digest   string
	Content  []byte
}

// ManifestBatchWriter is implemented by drivers that write many manifests
// at once more cheaply than one by one.
type ManifestBatchWriter interface {
	// WriteManifests writes the files as WriteManifest would, each durable
	// when the call returns; errs[i] is the outcome for files[i].
	WriteManifests(ctx context.Context, files []ManifestFile) (errs []error)
}

// BlobURLSigner is implemented by drivers that can give clients a
// time-limited URL to download a finished blob from the object store
// directly.
type BlobURLSigner interface {
	// BlobURL returns a URL that serves the blob to anyone for ttl.
	BlobURL(ctx context.Context, ref models.StorageRef, storageID string, ttl time.Duration) (string, error)
}

// Migrator is implemented by a driver that moves content from an old
// backend to a new one while it serves from both (see package migration).
type Migrator interface {
	// PendingMigration lists the finished blobs and manifests of the
	// account that are still on the old backend.
	PendingMigration(ctx context.Context, ref models.StorageRef) ([]StoredBlob, []StoredManifest, error)
	// MigrateBlob copies a finished blob to the new backend and then
	// deletes it from the old one.
	MigrateBlob(ctx context.Context, ref models.StorageRef, blob StoredBlob) error
	// MigrateManifest does the same for a manifest copy.
	MigrateManifest(ctx context.Context, ref models.StorageRef, manifest StoredManifest) error
}
