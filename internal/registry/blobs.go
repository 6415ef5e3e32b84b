package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/oci"
	"keppel/internal/storage"
)

// StatBlob returns the blob with the digest if it is mounted in the repository.
func (s *Service) StatBlob(ctx context.Context, repo Repo, d digest.Digest) (models.Blob, error) {
	b, err := s.db.GetBlobInRepository(ctx, repo.ID, d.String())
	if errors.Is(err, db.ErrNotFound) {
		return models.Blob{}, fmt.Errorf("%w: blob %s is not known in repository %s", ErrBlobUnknown, d, repo.FullName())
	}
	if err != nil {
		return models.Blob{}, fmt.Errorf("looking up blob: %w", err)
	}
	if b.ValidationError != "" {
		return models.Blob{}, fmt.Errorf("%w: the stored content of blob %s in repository %s is corrupt (%s); push it again",
			ErrBlobUnknown, d, repo.FullName(), b.ValidationError)
	}
	return b, nil
}

// OpenBlob returns a reader for the byte range of the blob (length -1: to
// the end). The caller must close it.
func (s *Service) OpenBlob(ctx context.Context, repo Repo, b models.Blob, offset, length int64) (io.ReadCloser, error) {
	if b.StorageID == "" {
		if !isReplica(repo.Account) {
			return nil, fmt.Errorf("%w: blob %s in repository %s has no content", ErrBlobUnknown, b.Digest, repo.FullName())
		}
		return s.openReplicatedBlob(ctx, repo, b, offset, length)
	}
	rc, err := s.storage.ReadBlob(ctx, repo.StorageRef(), b.StorageID, offset, length)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", b.Digest, err)
	}
	return rc, nil
}

// BlobURL returns a URL under which the storage serves the blob directly for
// ttl, or "" if the storage driver cannot hand out such URLs.
func (s *Service) BlobURL(ctx context.Context, repo Repo, b models.Blob, ttl time.Duration) (string, error) {
	signer, ok := s.storage.(storage.BlobURLSigner)
	if !ok || b.StorageID == "" {
		return "", nil
	}
	u, err := signer.BlobURL(ctx, repo.StorageRef(), b.StorageID, ttl)
	if err != nil {
		return "", fmt.Errorf("signing a URL for blob %s: %w", b.Digest, err)
	}
	return u, nil
}

// DeleteBlob removes the blob from the repository. Its content stays in the
// account while other repositories mount it; garbage collection frees
// storage that nothing mounts any more.
func (s *Service) DeleteBlob(ctx context.Context, repo Repo, d digest.Digest) error {
	b, err := s.StatBlob(ctx, repo, d)
	if err != nil {
		return err
	}
	err = s.db.UnmountBlob(ctx, b.ID, repo.ID)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return fmt.Errorf("%w: blob %s is not known in repository %s", ErrBlobUnknown, d, repo.FullName())
	case errors.Is(err, db.ErrStillReferenced):
		return fmt.Errorf("%w: blob %s is referenced by a manifest in %s; delete the manifest first", ErrBlobReferenced, d, repo.FullName())
	case err != nil:
		return fmt.Errorf("unmounting blob: %w", err)
	}
	return nil
}

// MountBlob mounts a blob of the same account into repo. from is the full
// name of the source repository, or "" to mount any blob of the account
// with that digest. It returns ErrBlobUnknown if there is nothing to mount
// (the client then uploads the blob instead).
func (s *Service) MountBlob(ctx context.Context, repo Repo, d digest.Digest, from string) (models.Blob, error) {
	var (
		b   models.Blob
		err error
	)
	if from == "" {
		b, err = s.db.GetBlobInAccount(ctx, repo.Account.Name, d.String())
	} else {
		accountName, name, ok := oci.SplitRepositoryName(from)
		if !ok || accountName != repo.Account.Name {
			// Mounting across accounts would break storage isolation.
			return models.Blob{}, fmt.Errorf("%w: cannot mount from %q", ErrBlobUnknown, from)
		}
		var src models.Repository
		src, err = s.db.GetRepository(ctx, accountName, name)
		if err == nil {
			b, err = s.db.GetBlobInRepository(ctx, src.ID, d.String())
		}
	}
	if errors.Is(err, db.ErrNotFound) {
		return models.Blob{}, fmt.Errorf("%w: blob %s cannot be mounted", ErrBlobUnknown, d)
	}
	if err != nil {
		return models.Blob{}, fmt.Errorf("looking up blob to mount: %w", err)
	}
	if err := s.db.MountBlob(ctx, b.ID, repo.ID); err != nil {
		return models.Blob{}, fmt.Errorf("mounting blob: %w", err)
	}
	return b, nil
}
