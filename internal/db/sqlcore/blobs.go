package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"keppel/internal/db"
	"keppel/internal/models"
)

const blobColumns = `b.id, b.account_name, b.digest, b.size_bytes, b.storage_id, b.media_type,
	b.pushed_at, b.can_be_deleted_at, b.validation_error`

func scanBlob(row interface{ Scan(...any) error }) (models.Blob, error) {
	var (
		b              models.Blob
		pushedAt       int64
		canBeDeletedAt sql.NullInt64
	)
	err := row.Scan(&b.ID, &b.AccountName, &b.Digest, &b.SizeBytes, &b.StorageID, &b.MediaType,
		&pushedAt, &canBeDeletedAt, &b.ValidationError)
	b.PushedAt = fromUnix(pushedAt)
	b.CanBeDeletedAt = fromNullUnix(canBeDeletedAt)
	return b, err
}

// GetBlobInRepository implements db.BlobStore.
func (s *Store) GetBlobInRepository(ctx context.Context, repoID int64, digest string) (models.Blob, error) {
	// Blobs are only ever mounted within their account, so the blob is
	// found by the repository's account and the digest: three key lookups.
	b, err := scanBlob(s.db.QueryRowContext(ctx, `SELECT `+blobColumns+`
		FROM repos r
		JOIN blobs b ON b.account_name = r.account_name AND b.digest = $2
		JOIN blob_mounts m ON m.blob_id = b.id AND m.repo_id = r.id
		WHERE r.id = $1`, repoID, digest))
	if err != nil {
		return models.Blob{}, fmt.Errorf("get blob %s in repository %d: %w", digest, repoID, notFound(err))
	}
	return b, nil
}

// GetBlobInAccount implements db.BlobStore.
func (s *Store) GetBlobInAccount(ctx context.Context, accountName, digest string) (models.Blob, error) {
	b, err := scanBlob(s.db.QueryRowContext(ctx, `SELECT `+blobColumns+`
		FROM blobs b WHERE b.account_name = $1 AND b.digest = $2`, accountName, digest))
	if err != nil {
		return models.Blob{}, fmt.Errorf("get blob %s in account %q: %w", digest, accountName, notFound(err))
	}
	return b, nil
}

// CreateBlobAndMount implements db.BlobStore. The repository must belong to
// the blob's account (ErrReferenceMissing otherwise). Mounting a blob clears
// its garbage-collection marks, since it is in use again. A new blob adds its
// size to its tenant's usage, in the same transaction. An existing blob
// whose stored content was found corrupt takes the new content (and
// created is true, as the caller's content is in use).
func (s *Store) CreateBlobAndMount(ctx context.Context, b models.Blob, repoID int64) (models.Blob, bool, error) {
	var (
		result            models.Blob
		created, replaced bool
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		created, replaced = false, false
		if err := checkRepoAccount(ctx, tx, repoID, b.AccountName); err != nil {
			return err
		}
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO blobs
			(account_name, digest, size_bytes, storage_id, media_type, pushed_at, can_be_deleted_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (account_name, digest) DO NOTHING RETURNING id`,
			b.AccountName, b.Digest, b.SizeBytes, b.StorageID, b.MediaType, toUnix(b.PushedAt),
			toNullUnix(b.CanBeDeletedAt)).Scan(&id)
		switch {
		case err == nil:
			created = true
		case errors.Is(err, sql.ErrNoRows):
			// the account has this blob already: mount that one
			var validationError, storageID string
			err := tx.QueryRowContext(ctx, `SELECT id, validation_error, storage_id FROM blobs WHERE account_name = $1 AND digest = $2`,
				b.AccountName, b.Digest).Scan(&id, &validationError, &storageID)
			if err != nil {
				return fmt.Errorf("find existing blob: %w", err)
			}
			if (validationError != "" || storageID == "") && b.StorageID != "" {
				// Its stored content is corrupt, or it has none yet (a
				// replicated blob not pulled yet): the new content
				// replaces it (the old becomes garbage for the storage
				// sweep).
				_, err := tx.ExecContext(ctx, `UPDATE blobs SET storage_id = $2, validation_error = '', validated_at = NULL
					WHERE id = $1`, id, b.StorageID)
				if err != nil {
					return fmt.Errorf("replace corrupt content: %w", err)
				}
				replaced = true
			}
		default:
			return fmt.Errorf("insert blob: %w", s.mapErr(err, stmtWrite))
		}
		if err := s.mountBlob(ctx, tx, id, repoID); err != nil {
			return err
		}
		result, err = scanBlob(tx.QueryRowContext(ctx, `SELECT `+blobColumns+` FROM blobs b WHERE b.id = $1`, id))
		if err != nil {
			return fmt.Errorf("read blob back: %w", err)
		}
		if !created {
			return nil
		}
		// Last, to hold the lock on the tenant's usage row briefly.
		return s.addAccountUsage(ctx, tx, b.AccountName, 0, b.SizeBytes)
	})
	if err != nil {
		return models.Blob{}, false, fmt.Errorf("create blob %s in repository %d: %w", b.Digest, repoID, err)
	}
	return result, created || replaced, nil
}

// MountBlob implements db.BlobStore. The blob and the repository must exist
// and belong to the same account, ErrReferenceMissing otherwise. Mounting a
// blob clears its garbage-collection marks, since it is in use again.
func (s *Store) MountBlob(ctx context.Context, blobID, repoID int64) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var accountName string
		err := tx.QueryRowContext(ctx, `SELECT account_name FROM blobs WHERE id = $1`, blobID).Scan(&accountName)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("blob does not exist: %w", db.ErrReferenceMissing)
		}
		if err != nil {
			return fmt.Errorf("find blob: %w", err)
		}
		if err := checkRepoAccount(ctx, tx, repoID, accountName); err != nil {
			return err
		}
		return s.mountBlob(ctx, tx, blobID, repoID)
	})
	if err != nil {
		return fmt.Errorf("mount blob %d in repository %d: %w", blobID, repoID, err)
	}
	return nil
}

// checkRepoAccount returns ErrReferenceMissing unless the repository exists
// in the account: a blob can only be mounted within its own account.
func checkRepoAccount(ctx context.Context, tx *sql.Tx, repoID int64, accountName string) error {
	var repoAccount string
	err := tx.QueryRowContext(ctx, `SELECT account_name FROM repos WHERE id = $1`, repoID).Scan(&repoAccount)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("repository does not exist: %w", db.ErrReferenceMissing)
	}
	if err != nil {
		return fmt.Errorf("find repository: %w", err)
	}
	if repoAccount != accountName {
		return fmt.Errorf("repository is in account %q, not %q: %w", repoAccount, accountName, db.ErrReferenceMissing)
	}
	return nil
}

// mountBlob inserts the mount if missing and clears the blob's and the
// mount's deletion marks.
func (s *Store) mountBlob(ctx context.Context, tx *sql.Tx, blobID, repoID int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO blob_mounts (blob_id, repo_id) VALUES ($1, $2)
		ON CONFLICT (blob_id, repo_id) DO UPDATE SET can_be_deleted_at = NULL
		WHERE blob_mounts.can_be_deleted_at IS NOT NULL`, blobID, repoID)
	if err != nil {
		return fmt.Errorf("insert blob mount: %w", s.mapErr(err, stmtWrite))
	}
	_, err = tx.ExecContext(ctx, `UPDATE blobs SET can_be_deleted_at = NULL
		WHERE id = $1 AND can_be_deleted_at IS NOT NULL`, blobID)
	if err != nil {
		return fmt.Errorf("clear blob deletion mark: %w", err)
	}
	return nil
}

// UnmountBlob implements db.BlobStore.
func (s *Store) UnmountBlob(ctx context.Context, blobID, repoID int64) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var manifestDigest string
		err := tx.QueryRowContext(ctx, `SELECT digest FROM manifest_blob_refs
			WHERE blob_id = $1 AND repo_id = $2 ORDER BY digest LIMIT 1`, blobID, repoID).Scan(&manifestDigest)
		switch {
		case err == nil:
			return fmt.Errorf("manifest %s references it: %w", manifestDigest, db.ErrStillReferenced)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("find referencing manifests: %w", err)
		}
		// The foreign key from manifest_blob_refs refuses the delete as
		// well, should a manifest have come in since the check.
		res, err := tx.ExecContext(ctx, `DELETE FROM blob_mounts WHERE blob_id = $1 AND repo_id = $2`, blobID, repoID)
		if err != nil {
			return s.mapErr(err, stmtDelete)
		}
		ok, err := affectedOne(res)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("blob is not mounted: %w", db.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("unmount blob %d from repository %d: %w", blobID, repoID, err)
	}
	return nil
}

// SetBlobStorage implements db.BlobStore.
func (s *Store) SetBlobStorage(ctx context.Context, blobID int64, storageID string) (bool, error) {
	if storageID == "" {
		return false, fmt.Errorf("set storage of blob %d: empty storage ID", blobID)
	}
	var n int64
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE blobs SET storage_id = $2 WHERE id = $1 AND storage_id = ''`, blobID, storageID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("set storage of blob %d: %w", blobID, err)
	}
	return n == 1, nil
}
