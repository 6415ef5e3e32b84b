package registry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"keppel/internal/db"
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
		err := s.storage.DeleteBlob(ctx, res.Account, b.StorageID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, fmt.Errorf("deleting content of blob %s: %w", b.Digest, err))
		}
	}
	return res, claimed, errors.Join(errs...)
}
