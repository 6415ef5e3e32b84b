package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"keppel/internal/db"
	"keppel/internal/storage"
)

// A manifest's content is committed to the database together with the
// manifest, which makes the push durable; the copy in the content storage
// (m/<repo>/<digest>, for operators and backups of the storage) is written
// right after the commit by a background writer, so that pushes do not wait
// for file creation and fsyncs (or object-store round trips). Each manifest
// records whether its copy was written (db.MarkManifestsInStorage): copies
// that a crash or a full queue left out are written by the janitor
// (StoreMissingManifestCopies).

// copyQueueSize bounds the copies waiting for the background writer; beyond
// it, pushes leave their copy to the janitor.
const copyQueueSize = 1024

// copyBatchSize is how many written copies are marked in one transaction.
const copyBatchSize = 64

// manifestCopies is the background writer's queue.
type manifestCopies struct {
	queue chan db.ManifestCopy
	stop  context.CancelFunc
	done  sync.WaitGroup
}

// StartManifestCopies starts the background writer of manifest copies. The
// returned function stops it, after it wrote what is queued (but waiting at
// most 10 s; the janitor writes the rest).
func (s *Service) StartManifestCopies() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &manifestCopies{queue: make(chan db.ManifestCopy, copyQueueSize), stop: cancel}
	s.copiesMu.Lock()
	s.copies = c
	s.copiesMu.Unlock()
	c.done.Go(func() { s.writeCopies(ctx, c.queue) })
	return func() {
		s.copiesMu.Lock()
		s.copies = nil
		s.copiesMu.Unlock()
		close(c.queue)
		timer := time.AfterFunc(10*time.Second, cancel)
		c.done.Wait()
		timer.Stop()
		cancel()
	}
}

// queueCopy hands a new manifest's copy to the background writer, if it
// runs and has room.
func (s *Service) queueCopy(repo Repo, digest string, content []byte) {
	s.copiesMu.Lock()
	defer s.copiesMu.Unlock()
	if s.copies == nil {
		return
	}
	select {
	case s.copies.queue <- db.ManifestCopy{
		ManifestKey: db.ManifestKey{RepositoryID: repo.ID, Digest: digest},
		Storage:     repo.StorageRef(), RepoName: repo.Name, Content: content,
	}:
	default:
		// The janitor will write it.
	}
}

// writeCopies writes queued copies until the queue is closed (or ctx ends),
// marking them in batches.
func (s *Service) writeCopies(ctx context.Context, queue <-chan db.ManifestCopy) {
	batch := make([]db.ManifestCopy, 0, copyBatchSize)
	for c := range queue {
		batch = append(batch, c)
		// Take what else is waiting, up to a batch.
	more:
		for len(batch) < copyBatchSize {
			select {
			case next, ok := <-queue:
				if !ok {
					break more
				}
				batch = append(batch, next)
			default:
				break more
			}
		}
		if ctx.Err() != nil {
			return
		}
		if _, err := s.storeCopies(ctx, batch); err != nil {
			s.log.Warn("cannot write manifest copies to the storage; the janitor will", "error", err)
		}
		batch = batch[:0]
	}
}

// storeCopies writes the copies into the content storage and marks them as
// written. A copy whose manifest was deleted meanwhile is removed again. It
// returns how many copies it wrote.
func (s *Service) storeCopies(ctx context.Context, copies []db.ManifestCopy) (int, error) {
	writeErrs := s.writeCopyFiles(ctx, copies)
	written := make([]db.ManifestKey, 0, len(copies))
	var errs []error
	for i, c := range copies {
		if writeErrs[i] != nil {
			errs = append(errs, fmt.Errorf("writing copy of manifest %s: %w", c.Digest, writeErrs[i]))
			continue
		}
		written = append(written, c.ManifestKey)
	}
	missing, err := s.db.MarkManifestsInStorage(ctx, written)
	if err != nil {
		return 0, errors.Join(append(errs, fmt.Errorf("marking manifest copies as written: %w", err))...)
	}
	for _, k := range missing {
		for _, c := range copies {
			if c.ManifestKey != k {
				continue
			}
			err := s.storage.DeleteManifest(ctx, c.Storage, c.RepoName, c.Digest)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				errs = append(errs, fmt.Errorf("removing copy of deleted manifest %s: %w", c.Digest, err))
			}
		}
	}
	return len(written) - len(missing), errors.Join(errs...)
}

// writeCopyFiles writes the copies into the content storage, in one batch
// if the driver can.
func (s *Service) writeCopyFiles(ctx context.Context, copies []db.ManifestCopy) []error {
	if bw, ok := s.storage.(storage.ManifestBatchWriter); ok {
		files := make([]storage.ManifestFile, len(copies))
		for i, c := range copies {
			files[i] = storage.ManifestFile{Ref: c.Storage, RepoName: c.RepoName, Digest: c.Digest, Content: c.Content}
		}
		return bw.WriteManifests(ctx, files)
	}
	errs := make([]error, len(copies))
	for i, c := range copies {
		errs[i] = s.storage.WriteManifest(ctx, c.Storage, c.RepoName, c.Digest, c.Content)
	}
	return errs
}

// StoreMissingManifestCopies writes the storage copies of up to limit
// manifests that were pushed more than olderThan ago and still lack theirs
// (the background writer was stopped by a crash, or its queue was full). It
// returns how many manifests it looked at.
func (s *Service) StoreMissingManifestCopies(ctx context.Context, olderThan time.Duration, limit int) (int, error) {
	copies, err := s.db.ListManifestsNotInStorage(ctx, s.now().Add(-olderThan), limit)
	if err != nil {
		return 0, fmt.Errorf("listing manifests without a storage copy: %w", err)
	}
	if len(copies) == 0 {
		return 0, nil
	}
	_, err = s.storeCopies(ctx, copies)
	return len(copies), err
}
