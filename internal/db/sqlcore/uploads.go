package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

// CreateUpload implements db.UploadStore.
func (s *Store) CreateUpload(ctx context.Context, u models.Upload) error {
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO uploads
			(repo_id, uuid, storage_id, size_bytes, hash_state, digest_algorithm, num_chunks, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			u.RepositoryID, u.UUID, u.StorageID, u.SizeBytes, nonNil(u.HashState), u.DigestAlgorithm,
			int64(u.NumChunks), toUnix(u.UpdatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create upload %s in repository %d: %w", u.UUID, u.RepositoryID, s.mapErr(err, stmtWrite))
	}
	return nil
}

// GetUpload implements db.UploadStore.
func (s *Store) GetUpload(ctx context.Context, repoID int64, uuid string) (models.Upload, error) {
	var (
		u         models.Upload
		numChunks int64
		updatedAt int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT repo_id, uuid, storage_id, size_bytes, hash_state,
		digest_algorithm, num_chunks, updated_at FROM uploads WHERE repo_id = $1 AND uuid = $2`,
		repoID, uuid,
	).Scan(&u.RepositoryID, &u.UUID, &u.StorageID, &u.SizeBytes, &u.HashState,
		&u.DigestAlgorithm, &numChunks, &updatedAt)
	if err != nil {
		return models.Upload{}, fmt.Errorf("get upload %s in repository %d: %w", uuid, repoID, notFound(err))
	}
	u.NumChunks = uint32(numChunks)
	u.UpdatedAt = fromUnix(updatedAt)
	return u, nil
}

// UpdateUpload implements db.UploadStore.
func (s *Store) UpdateUpload(ctx context.Context, u models.Upload, prevNumChunks uint32) error {
	var updated bool
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `UPDATE uploads SET storage_id = $3, size_bytes = $4,
			hash_state = $5, digest_algorithm = $6, num_chunks = $7, updated_at = $8
			WHERE repo_id = $1 AND uuid = $2 AND num_chunks = $9`,
			u.RepositoryID, u.UUID, u.StorageID, u.SizeBytes, nonNil(u.HashState), u.DigestAlgorithm,
			int64(u.NumChunks), toUnix(u.UpdatedAt), int64(prevNumChunks))
		if err != nil {
			return err
		}
		updated, err = affectedOne(res)
		return err
	})
	if err != nil {
		return fmt.Errorf("update upload %s in repository %d: %w", u.UUID, u.RepositoryID, s.mapErr(err, stmtWrite))
	}
	if updated {
		return nil
	}
	// Find out why nothing matched.
	var exists int
	err = s.db.QueryRowContext(ctx, `SELECT 1 FROM uploads WHERE repo_id = $1 AND uuid = $2`,
		u.RepositoryID, u.UUID).Scan(&exists)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("update upload %s in repository %d: %w", u.UUID, u.RepositoryID, db.ErrNotFound)
	case err != nil:
		return fmt.Errorf("update upload %s in repository %d: %w", u.UUID, u.RepositoryID, err)
	default:
		return fmt.Errorf("update upload %s in repository %d: it no longer has %d chunks: %w",
			u.UUID, u.RepositoryID, prevNumChunks, db.ErrConflict)
	}
}

// DeleteUpload implements db.UploadStore.
func (s *Store) DeleteUpload(ctx context.Context, repoID int64, uuid string) error {
	var deleted bool
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `DELETE FROM uploads WHERE repo_id = $1 AND uuid = $2`, repoID, uuid)
		if err != nil {
			return err
		}
		deleted, err = affectedOne(res)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete upload %s in repository %d: %w", uuid, repoID, s.mapErr(err, stmtDelete))
	}
	if !deleted {
		return fmt.Errorf("delete upload %s in repository %d: %w", uuid, repoID, db.ErrNotFound)
	}
	return nil
}

// ListStaleUploads implements db.UploadStore.
func (s *Store) ListStaleUploads(ctx context.Context, updatedBefore time.Time, limit int) ([]db.StaleUpload, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT u.repo_id, u.uuid, u.storage_id, u.size_bytes, u.hash_state,
		u.digest_algorithm, u.num_chunks, u.updated_at, a.auth_tenant_id, a.name
		FROM uploads u JOIN repos r ON r.id = u.repo_id JOIN accounts a ON a.name = r.account_name
		WHERE u.updated_at < $1 ORDER BY u.updated_at, u.repo_id, u.uuid LIMIT $2`,
		toUnix(updatedBefore), limit)
	if err != nil {
		return nil, fmt.Errorf("list stale uploads: %w", err)
	}
	defer rows.Close()
	var out []db.StaleUpload
	for rows.Next() {
		var (
			u         db.StaleUpload
			numChunks int64
			updatedAt int64
		)
		if err := rows.Scan(&u.RepositoryID, &u.UUID, &u.StorageID, &u.SizeBytes, &u.HashState,
			&u.DigestAlgorithm, &numChunks, &updatedAt, &u.Storage.AuthTenantID, &u.Storage.AccountName); err != nil {
			return nil, fmt.Errorf("list stale uploads: %w", err)
		}
		u.NumChunks = uint32(numChunks)
		u.UpdatedAt = fromUnix(updatedAt)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list stale uploads: %w", err)
	}
	return out, nil
}

// DeleteStaleUpload implements db.UploadStore.
func (s *Store) DeleteStaleUpload(ctx context.Context, repoID int64, uuid string, updatedBefore time.Time) (bool, error) {
	var deleted bool
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `DELETE FROM uploads WHERE repo_id = $1 AND uuid = $2 AND updated_at < $3`,
			repoID, uuid, toUnix(updatedBefore))
		if err != nil {
			return err
		}
		deleted, err = affectedOne(res)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("delete stale upload %s in repository %d: %w", uuid, repoID, s.mapErr(err, stmtDelete))
	}
	return deleted, nil
}
