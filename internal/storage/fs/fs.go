// Package fs is the filesystem storage driver. It keeps every account's
// content in its own directory below a root:
//
//	<root>/<auth_tenant>/<account>/b/<storage-id>          finished blob
//	<root>/<auth_tenant>/<account>/u/<storage-id>          upload in progress
//	<root>/<auth_tenant>/<account>/m/<repo/path>/<digest>  manifest
//
// Every write is fsynced (with the directories whose entries it changed)
// before the call returns; manifests are written to a temporary file and
// renamed into place, and blobs become visible only when FinalizeBlob renames
// the finished upload. Names are validated so that no call can reach outside
// its account's directory.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// copyBufferSize is the size of the buffers used to stream blob content to
// disk: large enough to keep the number of write calls low, small enough that
// many concurrent uploads stay cheap.
const copyBufferSize = 1 << 20

var copyBuffers = sync.Pool{
	New: func() any {
		buf := make([]byte, copyBufferSize)
		return &buf
	},
}

// Driver is the filesystem storage driver. It is safe for concurrent use,
// also by several processes sharing the root directory, as long as each
// upload is written by one caller at a time.
type Driver struct {
	root string
}

var _ storage.Driver = (*Driver)(nil)

// New returns a driver that stores content below root, creating the
// directory if necessary.
func New(root string) (*Driver, error) {
	if root == "" {
		return nil, errors.New("filesystem storage: root directory must not be empty")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("filesystem storage: resolve root directory: %w", err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("filesystem storage: create root directory: %w", err)
	}
	return &Driver{root: abs}, nil
}

// AppendToBlob implements storage.Driver.
func (d *Driver) AppendToBlob(ctx context.Context, ref models.StorageRef, storageID string, chunkNumber uint32, offset int64, r io.Reader) (int64, error) {
	dir, path, err := d.blobPath(ref, uploadsDir, storageID)
	if err != nil {
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

	f, created, err := d.openUpload(dir, path, offset)
	if err != nil {
		return 0, notFound(err, what)
	}
	n, err := appendAt(ctx, f, offset, r)
	closeErr := f.Close()
	if err == nil && closeErr != nil {
		err = fmt.Errorf("close upload file: %w", closeErr)
	}
	if err == nil && created {
		err = syncDir(dir)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return n, nil
}

// openUpload opens the upload file for writing. The file is created only when
// offset is 0; created reports whether that happened.
func (d *Driver) openUpload(dir, path string, offset int64) (f *os.File, created bool, err error) {
	if offset > 0 {
		f, err = os.OpenFile(path, os.O_RDWR, 0)
		return f, false, err
	}
	for attempt := 1; ; attempt++ {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
		switch {
		case err == nil:
			return f, true, nil
		case errors.Is(err, iofs.ErrExist):
			f, err = os.OpenFile(path, os.O_RDWR, 0)
			return f, false, err
		case !errors.Is(err, iofs.ErrNotExist) || attempt == mkdirAttempts:
			return nil, false, err
		}
		// The uploads directory does not exist yet.
		if err := d.mkdirAll(dir); err != nil {
			return nil, false, err
		}
	}
}

// appendAt makes f hold exactly offset bytes, then copies r behind them and
// syncs the file. On failure it cuts f back to offset bytes.
func appendAt(ctx context.Context, f *os.File, offset int64, r io.Reader) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat upload file: %w", err)
	}
	switch size := fi.Size(); {
	case size < offset:
		return 0, fmt.Errorf("%w: upload holds %d bytes, expected at least %d", storage.ErrUploadOffsetMismatch, size, offset)
	case size > offset:
		// A chunk failed half-way: drop what it left behind.
		if err := f.Truncate(offset); err != nil {
			return 0, fmt.Errorf("discard partial chunk: %w", err)
		}
	}

	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	// Neither wrapper exposes ReaderFrom or WriterTo, so that the copy goes
	// through the large buffer instead of a small internal one.
	w := newStreamWriter(f, offset)
	n, err := io.CopyBuffer(w, storage.ContextReader(ctx, r), *bufp)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		w.synced()
	}
	if err != nil {
		if truncErr := f.Truncate(offset); truncErr != nil {
			return 0, errors.Join(err, fmt.Errorf("discard partial chunk: %w", truncErr))
		}
		_ = f.Sync() // best effort: later calls truncate any leftover anyway
		return 0, err
	}
	return n, nil
}

// FinalizeBlob implements storage.Driver. With chunkCount 0 and no upload
// file it creates an empty blob.
func (d *Driver) FinalizeBlob(ctx context.Context, ref models.StorageRef, storageID string, chunkCount uint32) error {
	uDir, uPath, err := d.blobPath(ref, uploadsDir, storageID)
	if err != nil {
		return err
	}
	bDir, bPath, err := d.blobPath(ref, blobsDir, storageID)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("finalize blob %s in %s", storageID, describe(ref))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}

	if _, err := os.Lstat(uPath); err != nil {
		if chunkCount == 0 && errors.Is(err, iofs.ErrNotExist) {
			return d.createEmptyBlob(bDir, bPath, what)
		}
		return notFound(err, what)
	}
	if err := d.mkdirAll(bDir); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := os.Rename(uPath, bPath); err != nil {
		return notFound(err, what)
	}
	if err := syncDir(bDir); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := syncDir(uDir); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (d *Driver) createEmptyBlob(dir, path, what string) error {
	if err := d.mkdirAll(dir); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, filePerm)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	err = f.Sync()
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// AbortBlobUpload implements storage.Driver.
func (d *Driver) AbortBlobUpload(ctx context.Context, ref models.StorageRef, storageID string, chunkCount uint32) error {
	_, path, err := d.blobPath(ref, uploadsDir, storageID)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return notFound(err, fmt.Sprintf("abort upload %s in %s", storageID, describe(ref)))
	}
	return nil
}

// ReadBlob implements storage.Driver. For the whole blob it returns the
// *os.File itself, so that net/http can send it with sendfile.
func (d *Driver) ReadBlob(ctx context.Context, ref models.StorageRef, storageID string, offset, length int64) (io.ReadCloser, error) {
	_, path, err := d.blobPath(ref, blobsDir, storageID)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("read blob %s in %s", storageID, describe(ref))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, notFound(err, what)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", what)
	}
	n, err := storage.ResolveRange(fi.Size(), offset, length)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if offset == 0 && n == fi.Size() {
		return f, nil
	}
	return sectionReadCloser{io.NewSectionReader(f, offset, n), f}, nil
}

// sectionReadCloser reads a section of a file and closes the file.
type sectionReadCloser struct {
	*io.SectionReader
	f *os.File
}

func (s sectionReadCloser) Close() error {
	return s.f.Close()
}

// DeleteBlob implements storage.Driver.
func (d *Driver) DeleteBlob(ctx context.Context, ref models.StorageRef, storageID string) error {
	_, path, err := d.blobPath(ref, blobsDir, storageID)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return notFound(err, fmt.Sprintf("delete blob %s in %s", storageID, describe(ref)))
	}
	return nil
}
