// Package memory is an in-memory storage driver for unit tests. It has the
// same semantics as the persistent drivers, including name validation and
// the offset handling of AppendToBlob, and is safe for concurrent use.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// Driver is the in-memory storage driver.
type Driver struct {
	mu       sync.Mutex
	accounts map[models.StorageRef]*account
}

// account is the content of one account's storage area. Finished blobs and
// manifests are never modified in place, so their slices can be shared with
// readers.
type account struct {
	blobs     map[string][]byte
	uploads   map[string][]byte
	manifests map[manifestKey][]byte
}

type manifestKey struct {
	repoName string
	digest   string
}

var _ storage.Driver = (*Driver)(nil)

// New returns an empty in-memory driver.
func New() *Driver {
	return &Driver{accounts: make(map[models.StorageRef]*account)}
}

// account returns the account's storage area, creating it when create is set
// (it returns nil otherwise if it does not exist). d.mu must be held.
func (d *Driver) account(ref models.StorageRef, create bool) *account {
	a := d.accounts[ref]
	if a == nil && create {
		a = &account{
			blobs:     make(map[string][]byte),
			uploads:   make(map[string][]byte),
			manifests: make(map[manifestKey][]byte),
		}
		d.accounts[ref] = a
	}
	return a
}

func describe(ref models.StorageRef) string {
	return ref.AuthTenantID + "/" + ref.AccountName
}

func validateBlob(ref models.StorageRef, storageID string) error {
	if err := storage.ValidateRef(ref); err != nil {
		return err
	}
	return storage.ValidateStorageID(storageID)
}

func validateManifest(ref models.StorageRef, repoName, digest string) error {
	if err := storage.ValidateRef(ref); err != nil {
		return err
	}
	if err := storage.ValidateRepoName(repoName); err != nil {
		return err
	}
	return storage.ValidateDigest(digest)
}

// checkUpload verifies that the upload exists (unless offset is 0) and holds
// at least offset bytes. d.mu must be held.
func (d *Driver) checkUpload(ref models.StorageRef, storageID string, offset int64) error {
	var (
		content []byte
		exists  bool
	)
	if a := d.account(ref, false); a != nil {
		content, exists = a.uploads[storageID]
	}
	switch {
	case !exists && offset > 0:
		return storage.ErrNotFound
	case int64(len(content)) < offset:
		return fmt.Errorf("%w: upload holds %d bytes, expected at least %d", storage.ErrUploadOffsetMismatch, len(content), offset)
	}
	return nil
}

// AppendToBlob implements storage.Driver. The chunk is read into memory
// before it is appended, so that a failing reader leaves the upload at
// offset bytes.
func (d *Driver) AppendToBlob(ctx context.Context, ref models.StorageRef, storageID string, chunkNumber uint32, offset int64, r io.Reader) (int64, error) {
	if err := validateBlob(ref, storageID); err != nil {
		return 0, err
	}
	what := fmt.Sprintf("append chunk %d to upload %s in %s", chunkNumber, storageID, describe(ref))
	if chunkNumber == 0 {
		return 0, fmt.Errorf("%s: chunk numbers start at 1", what)
	}
	if offset < 0 {
		return 0, fmt.Errorf("%s: %w: negative offset %d", what, storage.ErrUploadOffsetMismatch, offset)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}

	// Check before reading, so that a mismatch does not consume the body.
	d.mu.Lock()
	err := d.checkUpload(ref, storageID, offset)
	d.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}

	var chunk bytes.Buffer
	_, readErr := chunk.ReadFrom(storage.ContextReader(ctx, r))

	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkUpload(ref, storageID, offset); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	a := d.account(ref, true)
	content := a.uploads[storageID][:offset]
	if readErr != nil {
		a.uploads[storageID] = content
		return 0, fmt.Errorf("%s: %w", what, readErr)
	}
	a.uploads[storageID] = append(content, chunk.Bytes()...)
	return int64(chunk.Len()), nil
}

// FinalizeBlob implements storage.Driver. With chunkCount 0 and no upload it
// creates an empty blob.
func (d *Driver) FinalizeBlob(ctx context.Context, ref models.StorageRef, storageID string, chunkCount uint32) error {
	if err := validateBlob(ref, storageID); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.account(ref, chunkCount == 0)
	var (
		content []byte
		exists  bool
	)
	if a != nil {
		content, exists = a.uploads[storageID]
	}
	if !exists && chunkCount > 0 {
		return fmt.Errorf("finalize blob %s in %s: %w", storageID, describe(ref), storage.ErrNotFound)
	}
	delete(a.uploads, storageID)
	// Cut the capacity so that the blob never shares memory with a slice
	// that could still be appended to.
	a.blobs[storageID] = content[:len(content):len(content)]
	return nil
}

// AbortBlobUpload implements storage.Driver.
func (d *Driver) AbortBlobUpload(ctx context.Context, ref models.StorageRef, storageID string, chunkCount uint32) error {
	if err := validateBlob(ref, storageID); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.account(ref, false)
	if a == nil {
		return fmt.Errorf("abort upload %s in %s: %w", storageID, describe(ref), storage.ErrNotFound)
	}
	if _, exists := a.uploads[storageID]; !exists {
		return fmt.Errorf("abort upload %s in %s: %w", storageID, describe(ref), storage.ErrNotFound)
	}
	delete(a.uploads, storageID)
	return nil
}

// ReadBlob implements storage.Driver.
func (d *Driver) ReadBlob(ctx context.Context, ref models.StorageRef, storageID string, offset, length int64) (io.ReadCloser, error) {
	if err := validateBlob(ref, storageID); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("read blob %s in %s", storageID, describe(ref))
	d.mu.Lock()
	var (
		content []byte
		exists  bool
	)
	if a := d.account(ref, false); a != nil {
		content, exists = a.blobs[storageID]
	}
	d.mu.Unlock()
	if !exists {
		return nil, fmt.Errorf("%s: %w", what, storage.ErrNotFound)
	}
	n, err := storage.ResolveRange(int64(len(content)), offset, length)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return io.NopCloser(bytes.NewReader(content[offset : offset+n])), nil
}

// DeleteBlob implements storage.Driver.
func (d *Driver) DeleteBlob(ctx context.Context, ref models.StorageRef, storageID string) error {
	if err := validateBlob(ref, storageID); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.account(ref, false)
	if a == nil {
		return fmt.Errorf("delete blob %s in %s: %w", storageID, describe(ref), storage.ErrNotFound)
	}
	if _, exists := a.blobs[storageID]; !exists {
		return fmt.Errorf("delete blob %s in %s: %w", storageID, describe(ref), storage.ErrNotFound)
	}
	delete(a.blobs, storageID)
	return nil
}

// WriteManifest implements storage.Driver.
func (d *Driver) WriteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string, content []byte) error {
	if err := validateManifest(ref, repoName, digest); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.account(ref, true).manifests[manifestKey{repoName, digest}] = bytes.Clone(content)
	return nil
}

// ReadManifest implements storage.Driver.
func (d *Driver) ReadManifest(ctx context.Context, ref models.StorageRef, repoName, digest string) ([]byte, error) {
	if err := validateManifest(ref, repoName, digest); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if a := d.account(ref, false); a != nil {
		if content, exists := a.manifests[manifestKey{repoName, digest}]; exists {
			return bytes.Clone(content), nil
		}
	}
	return nil, fmt.Errorf("read manifest %s of repository %s in %s: %w", digest, repoName, describe(ref), storage.ErrNotFound)
}

// DeleteManifest implements storage.Driver.
func (d *Driver) DeleteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string) error {
	if err := validateManifest(ref, repoName, digest); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	key := manifestKey{repoName, digest}
	if a := d.account(ref, false); a != nil {
		if _, exists := a.manifests[key]; exists {
			delete(a.manifests, key)
			return nil
		}
	}
	return fmt.Errorf("delete manifest %s of repository %s in %s: %w", digest, repoName, describe(ref), storage.ErrNotFound)
}

// ListStorageContents implements storage.Driver. Results are sorted by
// storage ID, and by repository and digest.
func (d *Driver) ListStorageContents(ctx context.Context, ref models.StorageRef) ([]storage.StoredBlob, []storage.StoredManifest, error) {
	if err := storage.ValidateRef(ref); err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.account(ref, false)
	if a == nil {
		return nil, nil, nil
	}
	var blobs []storage.StoredBlob
	for id, content := range a.blobs {
		blobs = append(blobs, storage.StoredBlob{StorageID: id, SizeBytes: int64(len(content))})
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].StorageID < blobs[j].StorageID })
	var manifests []storage.StoredManifest
	for key := range a.manifests {
		manifests = append(manifests, storage.StoredManifest{RepoName: key.repoName, Digest: key.digest})
	}
	sort.Slice(manifests, func(i, j int) bool {
		if manifests[i].RepoName != manifests[j].RepoName {
			return manifests[i].RepoName < manifests[j].RepoName
		}
		return manifests[i].Digest < manifests[j].Digest
	})
	return blobs, manifests, nil
}

// CleanupAccount implements storage.Driver. It refuses (with
// storage.ErrAccountNotEmpty) while the account holds blobs or manifests and
// discards abandoned uploads otherwise.
func (d *Driver) CleanupAccount(ctx context.Context, ref models.StorageRef) error {
	if err := storage.ValidateRef(ref); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.account(ref, false)
	if a == nil {
		return nil
	}
	if len(a.blobs) > 0 || len(a.manifests) > 0 {
		return fmt.Errorf("clean up storage of %s: %w: %d blobs and %d manifests remain",
			describe(ref), storage.ErrAccountNotEmpty, len(a.blobs), len(a.manifests))
	}
	delete(d.accounts, ref)
	return nil
}
