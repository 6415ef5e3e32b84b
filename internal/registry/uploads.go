package registry

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/storage"
)

// Uploads always hash with sha256 while the content streams in; a blob
// pushed with a sha512 digest is re-read once at completion to verify it.
const uploadHashAlgorithm = "sha256"

// StartUpload begins a new blob upload in the repository.
func (s *Service) StartUpload(ctx context.Context, repo Repo) (models.Upload, error) {
	if err := s.checkBytesQuota(ctx, repo, 0); err != nil {
		return models.Upload{}, err
	}
	state, err := marshalHash(sha256.New())
	if err != nil {
		return models.Upload{}, err
	}
	u := models.Upload{
		RepositoryID:    repo.ID,
		UUID:            s.newUUID(),
		StorageID:       s.newID(),
		HashState:       state,
		DigestAlgorithm: uploadHashAlgorithm,
		UpdatedAt:       s.now(),
	}
	if err := s.db.CreateUpload(ctx, u); err != nil {
		return models.Upload{}, fmt.Errorf("creating upload: %w", err)
	}
	return u, nil
}

func (s *Service) newUUID() string {
	id := s.newID()
	if len(id) != 32 {
		return id
	}
	return id[0:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:32]
}

// GetUpload returns an upload in progress.
func (s *Service) GetUpload(ctx context.Context, repo Repo, uuid string) (models.Upload, error) {
	u, err := s.db.GetUpload(ctx, repo.ID, uuid)
	if errors.Is(err, db.ErrNotFound) {
		return models.Upload{}, fmt.Errorf("%w: upload %s is not known in repository %s", ErrUploadUnknown, uuid, repo.FullName())
	}
	if err != nil {
		return models.Upload{}, fmt.Errorf("looking up upload: %w", err)
	}
	return u, nil
}

// AppendToUpload streams r into the upload as its next chunk. If start is
// not nil, it is the offset the client says the chunk starts at; it must
// equal the upload's current size.
func (s *Service) AppendToUpload(ctx context.Context, repo Repo, uuid string, start *int64, r io.Reader) (models.Upload, error) {
	defer s.uploadLocks.lock(uuid)()
	u, err := s.GetUpload(ctx, repo, uuid)
	if err != nil {
		return models.Upload{}, err
	}
	if start != nil && *start != u.SizeBytes {
		return u, fmt.Errorf("%w: chunk starts at offset %d, but the upload holds %d bytes", ErrUploadOutOfOrder, *start, u.SizeBytes)
	}
	return s.appendChunk(ctx, repo, u, r)
}

func (s *Service) appendChunk(ctx context.Context, repo Repo, u models.Upload, r io.Reader) (models.Upload, error) {
	h, err := unmarshalHash(u.HashState)
	if err != nil {
		return u, err
	}
	prevChunks := u.NumChunks
	body := &errRecordingReader{r: r}
	n, err := s.storage.AppendToBlob(ctx, repo.StorageRef(), u.StorageID, u.NumChunks+1, u.SizeBytes, io.TeeReader(body, h))
	if err != nil {
		if body.err != nil && !errors.Is(body.err, io.EOF) {
			return u, fmt.Errorf("%w: reading the request body failed after %d bytes: %s", ErrUploadInvalid, body.n, body.err.Error())
		}
		return u, fmt.Errorf("writing chunk: %w", err)
	}
	state, err := marshalHash(h)
	if err != nil {
		return u, err
	}
	u.SizeBytes += n
	u.NumChunks++
	u.HashState = state
	u.UpdatedAt = s.now()
	if err := s.db.UpdateUpload(ctx, u, prevChunks); err != nil {
		if errors.Is(err, db.ErrConflict) {
			return u, fmt.Errorf("%w: the upload was changed by a concurrent request", ErrUploadOutOfOrder)
		}
		return u, fmt.Errorf("saving upload state: %w", err)
	}
	return u, nil
}

// FinishUpload appends the final chunk (r may be nil or empty; start as in
// AppendToUpload), checks the digest, and stores the blob in the
// repository. On a digest mismatch the upload is discarded and nothing is
// stored.
func (s *Service) FinishUpload(ctx context.Context, repo Repo, uuid string, expected digest.Digest, start *int64, r io.Reader) (models.Blob, error) {
	defer s.uploadLocks.lock(uuid)()
	u, err := s.GetUpload(ctx, repo, uuid)
	if err != nil {
		return models.Blob{}, err
	}
	if start != nil && *start != u.SizeBytes {
		return models.Blob{}, fmt.Errorf("%w: the final chunk starts at offset %d, but the upload holds %d bytes", ErrUploadOutOfOrder, *start, u.SizeBytes)
	}
	// Every finished blob consists of at least one chunk, even when empty,
	// so that storage drivers always have an object to finalize.
	if r != nil || u.NumChunks == 0 {
		if r == nil {
			r = eofReader{}
		}
		u, err = s.appendChunk(ctx, repo, u, r)
		if err != nil {
			return models.Blob{}, err
		}
	}

	actual, finalized, err := s.uploadDigest(ctx, repo, u, expected.Algorithm())
	if err != nil {
		return models.Blob{}, err
	}
	if actual != expected {
		s.discardUpload(ctx, repo, u, finalized)
		return models.Blob{}, fmt.Errorf("%w: the uploaded content has digest %s, not %s", ErrDigestInvalid, actual, expected)
	}
	if _, err := s.db.GetBlobInAccount(ctx, repo.Account.Name, expected.String()); errors.Is(err, db.ErrNotFound) {
		if err := s.checkBytesQuota(ctx, repo, u.SizeBytes); err != nil {
			s.discardUpload(ctx, repo, u, finalized)
			return models.Blob{}, err
		}
	}
	// From here on the upload becomes a blob in several steps; a client
	// that disconnects must not leave it half-done (finalized content
	// without its row, or an upload row pointing at moved content).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if !finalized {
		if err := s.storage.FinalizeBlob(ctx, repo.StorageRef(), u.StorageID, u.NumChunks); err != nil {
			return models.Blob{}, fmt.Errorf("finalizing blob: %w", err)
		}
	}
	blob, created, err := s.db.CreateBlobAndMount(ctx, models.Blob{
		AccountName: repo.Account.Name,
		Digest:      expected.String(),
		SizeBytes:   u.SizeBytes,
		StorageID:   u.StorageID,
		MediaType:   "application/octet-stream",
		PushedAt:    s.now(),
	}, repo.ID)
	if err != nil {
		return models.Blob{}, fmt.Errorf("storing blob: %w", err)
	}
	if !created {
		// The account had this content already; our copy is redundant.
		if err := s.storage.DeleteBlob(ctx, repo.StorageRef(), u.StorageID); err != nil {
			s.log.Warn("cannot delete duplicate blob content; the storage sweep will", "storage_id", u.StorageID, "error", err)
		}
	}
	if err := s.db.DeleteUpload(ctx, repo.ID, u.UUID); err != nil && !errors.Is(err, db.ErrNotFound) {
		s.log.Warn("cannot delete finished upload", "upload", u.UUID, "error", err)
	}
	return blob, nil
}

// CancelUpload discards an upload in progress.
func (s *Service) CancelUpload(ctx context.Context, repo Repo, uuid string) error {
	defer s.uploadLocks.lock(uuid)()
	u, err := s.GetUpload(ctx, repo, uuid)
	if err != nil {
		return err
	}
	if err := s.db.DeleteUpload(ctx, repo.ID, u.UUID); err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("%w: upload %s", ErrUploadUnknown, uuid)
		}
		return fmt.Errorf("deleting upload: %w", err)
	}
	if err := s.storage.AbortBlobUpload(ctx, repo.StorageRef(), u.StorageID, u.NumChunks); err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.Warn("cannot delete cancelled upload content", "storage_id", u.StorageID, "error", err)
	}
	return nil
}

func (s *Service) discardUpload(ctx context.Context, repo Repo, u models.Upload, finalized bool) {
	if err := s.db.DeleteUpload(ctx, repo.ID, u.UUID); err != nil && !errors.Is(err, db.ErrNotFound) {
		s.log.Warn("cannot delete rejected upload", "upload", u.UUID, "error", err)
	}
	var err error
	if finalized {
		err = s.storage.DeleteBlob(ctx, repo.StorageRef(), u.StorageID)
	} else {
		err = s.storage.AbortBlobUpload(ctx, repo.StorageRef(), u.StorageID, u.NumChunks)
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.Warn("cannot delete rejected upload content", "storage_id", u.StorageID, "error", err)
	}
}

// uploadDigest returns the digest of the upload's content in the requested
// algorithm: from the running hash for sha256; for other algorithms by
// finalizing the content and reading it back (finalized is then true, and
// the caller deletes the blob if the digest does not match).
func (s *Service) uploadDigest(ctx context.Context, repo Repo, u models.Upload, alg digest.Algorithm) (d digest.Digest, finalized bool, err error) {
	if alg == digest.SHA256 {
		h, err := unmarshalHash(u.HashState)
		if err != nil {
			return "", false, err
		}
		return digest.NewDigest(digest.SHA256, h), false, nil
	}
	if !alg.Available() {
		return "", false, fmt.Errorf("%w: unsupported digest algorithm %q", ErrDigestInvalid, alg)
	}
	if err := s.storage.FinalizeBlob(ctx, repo.StorageRef(), u.StorageID, u.NumChunks); err != nil {
		return "", false, fmt.Errorf("finalizing blob for verification: %w", err)
	}
	rc, err := s.storage.ReadBlob(ctx, repo.StorageRef(), u.StorageID, 0, -1)
	if err != nil {
		return "", true, fmt.Errorf("reading blob for verification: %w", err)
	}
	defer rc.Close()
	d, err = alg.FromReader(rc)
	if err != nil {
		return "", true, fmt.Errorf("hashing blob for verification: %w", err)
	}
	return d, true, nil
}

func marshalHash(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, errors.New("hash state cannot be saved")
	}
	state, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("saving hash state: %w", err)
	}
	return state, nil
}

func unmarshalHash(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restoring hash state: %w", err)
	}
	return h, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// errRecordingReader remembers the error of the client's body, to tell a
// broken request from a storage failure.
type errRecordingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (e *errRecordingReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.n += int64(n)
	if err != nil {
		e.err = err
	}
	return n, err
}

// CleanAbandonedUploads removes up to batch uploads that nobody touched for
// maxAge, metadata first and content second (a crash in between leaves only
// content for the storage sweep). It returns how many it removed.
func (s *Service) CleanAbandonedUploads(ctx context.Context, maxAge time.Duration, batch int) (int, error) {
	cutoff := s.now().Add(-maxAge)
	stale, err := s.db.ListStaleUploads(ctx, cutoff, batch)
	if err != nil {
		return 0, fmt.Errorf("listing abandoned uploads: %w", err)
	}
	removed := 0
	for _, u := range stale {
		deleted, err := s.db.DeleteStaleUpload(ctx, u.RepositoryID, u.UUID, cutoff)
		if err != nil {
			return removed, fmt.Errorf("deleting abandoned upload: %w", err)
		}
		if !deleted {
			continue // continued or finished in the meantime
		}
		err = s.storage.AbortBlobUpload(ctx, u.Storage, u.StorageID, u.NumChunks)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.log.Warn("cannot delete content of abandoned upload; the storage sweep will", "storage_id", u.StorageID, "error", err)
		}
		removed++
	}
	return removed, nil
}
