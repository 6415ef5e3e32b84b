package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"keppel/internal/models"
)

// blobFetchTimeout bounds the fetch of one blob from an upstream.
const blobFetchTimeout = 2 * time.Hour

// blobFetches are the fetches of replicated blobs in progress, by account
// and digest: however many clients pull a blob at once, it is fetched from
// the upstream once.
type blobFetches struct {
	mu     sync.Mutex
	active map[string]*blobFetch
}

// blobFetch is one fetch of a blob from the upstream. The content goes to
// the account's storage and, at the same time, to a spool file (deleted on
// creation) that every client of the fetch reads from as it grows.
type blobFetch struct {
	size  int64
	spool *os.File

	mu      sync.Mutex
	written int64
	done    bool
	err     error
	changed chan struct{}
	// users counts the readers and the fetch itself; the spool is closed
	// when the last one leaves.
	users int
}

// openReplicatedBlob serves a byte range of a blob that the replica
// account does not have yet, while it is fetched from the upstream.
func (s *Service) openReplicatedBlob(ctx context.Context, repo Repo, b models.Blob, offset, length int64) (io.ReadCloser, error) {
	f, err := s.joinBlobFetch(ctx, repo, b)
	if err != nil {
		return nil, err
	}
	if f == nil {
		// another process or fetch has stored it meanwhile
		fresh, err := s.db.GetBlobInAccount(ctx, repo.Account.Name, b.Digest)
		if err != nil {
			return nil, fmt.Errorf("looking up blob: %w", err)
		}
		return s.OpenBlob(ctx, repo, fresh, offset, length)
	}
	end := b.SizeBytes
	if length >= 0 {
		end = offset + length
	}
	r := &fetchReader{f: f, ctx: ctx, off: offset, end: end}
	// The client gets an error rather than a broken download if the
	// upstream fails at once.
	if offset < end {
		if _, err := f.waitFor(ctx, offset); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// joinBlobFetch returns the running fetch of the blob, starting it if there
// is none. It returns nil if the blob has its content by now.
func (s *Service) joinBlobFetch(ctx context.Context, repo Repo, b models.Blob) (*blobFetch, error) {
	fs := &s.replicas.blobs
	key := b.AccountName + "@" + b.Digest
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.active[key]; ok {
		f.mu.Lock()
		f.users++
		f.mu.Unlock()
		return f, nil
	}
	// The row may be stale (from a cache, or from before a fetch that
	// just ended): ask the database.
	fresh, err := s.db.GetBlobInAccount(ctx, b.AccountName, b.Digest)
	if err != nil {
		return nil, fmt.Errorf("%w: blob %s is not known in repository %s", ErrBlobUnknown, b.Digest, repo.FullName())
	}
	if fresh.StorageID != "" {
		return nil, nil
	}
	spool, err := os.CreateTemp(s.replication.SpoolDir, "keppel-fetch-*")
	if err != nil {
		return nil, fmt.Errorf("creating spool file: %w", err)
	}
	// The open file is all that is needed; nothing is left behind by a
	// crash.
	_ = os.Remove(spool.Name())
	f := &blobFetch{size: b.SizeBytes, spool: spool, changed: make(chan struct{}), users: 2}
	if fs.active == nil {
		fs.active = map[string]*blobFetch{}
	}
	fs.active[key] = f
	go func() {
		err := s.fetchBlob(repo, fresh, f)
		if err != nil {
			s.log.Warn("fetching a replicated blob failed", "repository", repo.FullName(), "digest", b.Digest, "error", err)
		}
		f.finish(err)
		fs.mu.Lock()
		delete(fs.active, key)
		fs.mu.Unlock()
		f.release()
	}()
	return f, nil
}

// fetchBlob copies the blob from the upstream into the storage and the
// spool, checks it, and records its storage.
func (s *Service) fetchBlob(repo Repo, b models.Blob, f *blobFetch) error {
	ctx, cancel := context.WithTimeout(context.Background(), blobFetchTimeout)
	defer cancel()
	d, err := digest.Parse(b.Digest)
	if err != nil || !d.Algorithm().Available() {
		return fmt.Errorf("%w: digest %q cannot be checked", ErrDigestInvalid, b.Digest)
	}
	up, upName, err := s.upstreamOf(ctx, repo.Account, repo.Name)
	if err != nil {
		return err
	}
	rc, size, err := up.GetBlob(ctx, upName, d)
	if err != nil {
		return upstreamError(err, fmt.Errorf("%w: blob %s is gone from the upstream %s", ErrBlobUnknown, d, up.Host()))
	}
	defer rc.Close()
	if size >= 0 && size != b.SizeBytes {
		return fmt.Errorf("%w: blob %s from %s has %d bytes, the manifest says %d", ErrUpstreamFailed, d, up.Host(), size, b.SizeBytes)
	}
	ref := repo.StorageRef()
	storageID := s.newID()
	v := d.Verifier()
	src := io.TeeReader(io.LimitReader(rc, b.SizeBytes+1), io.MultiWriter(v, f))
	n, err := s.storage.AppendToBlob(ctx, ref, storageID, 1, 0, src)
	if err == nil && (n != b.SizeBytes || !v.Verified()) {
		err = fmt.Errorf("%w: blob %s from %s does not match its digest and size (%d bytes)", ErrUpstreamFailed, d, up.Host(), n)
	}
	if err == nil {
		err = s.storage.FinalizeBlob(ctx, ref, storageID, 1)
	}
	if err != nil {
		if abortErr := s.storage.AbortBlobUpload(ctx, ref, storageID, 1); abortErr != nil {
			s.log.Warn("cannot delete a failed blob fetch; the storage sweep will", "storage_id", storageID, "error", abortErr)
		}
		return fmt.Errorf("fetching blob %s: %w", d, err)
	}
	set, err := s.db.SetBlobStorage(ctx, b.ID, storageID)
	if err != nil || !set {
		// another process stored it first, or the blob is gone
		if delErr := s.storage.DeleteBlob(ctx, ref, storageID); delErr != nil {
			s.log.Warn("cannot delete a duplicate blob fetch; the storage sweep will", "storage_id", storageID, "error", delErr)
		}
	}
	if err != nil {
		return fmt.Errorf("recording the storage of blob %s: %w", d, err)
	}
	return nil
}

// Write appends fetched content to the spool and wakes the readers.
func (f *blobFetch) Write(p []byte) (int, error) {
	f.mu.Lock()
	off := f.written
	f.mu.Unlock()
	if off+int64(len(p)) > f.size {
		return 0, fmt.Errorf("%w: the upstream sent more than %d bytes", ErrUpstreamFailed, f.size)
	}
	n, err := f.spool.WriteAt(p, off)
	f.mu.Lock()
	f.written += int64(n)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	if err != nil {
		return n, fmt.Errorf("writing spool file: %w", err)
	}
	return n, nil
}

func (f *blobFetch) finish(err error) {
	f.mu.Lock()
	f.done, f.err = true, err
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *blobFetch) release() {
	f.mu.Lock()
	f.users--
	last := f.users == 0
	f.mu.Unlock()
	if last {
		_ = f.spool.Close()
	}
}

// waitFor waits until the spool holds the byte at off and returns how much
// it holds, or the error that ended the fetch before.
func (f *blobFetch) waitFor(ctx context.Context, off int64) (int64, error) {
	for {
		f.mu.Lock()
		written, done, err, changed := f.written, f.done, f.err, f.changed
		f.mu.Unlock()
		switch {
		case off < written && (!done || err == nil):
			return written, nil
		case done && err != nil:
			return 0, err
		case done:
			return 0, fmt.Errorf("%w: blob fetch ended at %d bytes", io.ErrUnexpectedEOF, written)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for the upstream: %w", ctx.Err())
		}
	}
}

// fetchReader reads a byte range of a blob from the spool of its fetch.
type fetchReader struct {
	f        *blobFetch
	ctx      context.Context
	off, end int64
	closed   bool
}

// Read implements io.Reader.
func (r *fetchReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	written, err := r.f.waitFor(r.ctx, r.off)
	if err != nil {
		return 0, err
	}
	n := min(int64(len(p)), written-r.off, r.end-r.off)
	m, err := r.f.spool.ReadAt(p[:n], r.off)
	r.off += int64(m)
	if errors.Is(err, io.EOF) && int64(m) == n {
		err = nil
	}
	return m, err
}

// Close implements io.Closer.
func (r *fetchReader) Close() error {
	if !r.closed {
		r.closed = true
		r.f.release()
	}
	return nil
}
