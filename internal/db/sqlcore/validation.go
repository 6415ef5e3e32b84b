package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

// ClaimBlobValidation implements db.GCStore.
func (s *Store) ClaimBlobValidation(ctx context.Context, now time.Time, interval time.Duration, next time.Time) (models.Blob, models.StorageRef, bool, error) {
	var (
		b       models.Blob
		ref     models.StorageRef
		claimed bool
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		claimed = false
		row := tx.QueryRowContext(ctx, `SELECT `+blobColumns+`, a.auth_tenant_id FROM blobs b
			JOIN accounts a ON a.name = b.account_name
			WHERE COALESCE(b.next_validation_at, b.pushed_at + $2) <= $1
			ORDER BY COALESCE(b.next_validation_at, b.pushed_at + $2), b.id LIMIT 1`+s.dialect.ClaimRowOf("b"),
			toUnix(now), int64(interval/time.Second))
		var err error
		b, err = scanBlob(scanWithTenant{row, &ref.AuthTenantID})
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim blob: %w", err)
		}
		claimed = true
		ref.AccountName = b.AccountName
		s.claimed("blobs", strconv.FormatInt(b.ID, 10))
		_, err = tx.ExecContext(ctx, `UPDATE blobs SET next_validation_at = $2 WHERE id = $1`, b.ID, toUnix(next))
		return err
	})
	if err != nil {
		return models.Blob{}, models.StorageRef{}, false, fmt.Errorf("claim blob validation: %w", err)
	}
	return b, ref, claimed, nil
}

// scanWithTenant scans blobColumns followed by one more column.
type scanWithTenant struct {
	row    *sql.Row
	tenant *string
}

func (s scanWithTenant) Scan(dest ...any) error {
	return s.row.Scan(append(dest, s.tenant)...)
}

// RecordBlobValidation implements db.GCStore.
func (s *Store) RecordBlobValidation(ctx context.Context, blobID int64, at time.Time, validationError string) (bool, error) {
	var changed bool
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var previous string
		err := tx.QueryRowContext(ctx, `SELECT validation_error FROM blobs WHERE id = $1`+s.dialect.ForUpdate, blobID).Scan(&previous)
		if errors.Is(err, sql.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		changed = previous != validationError
		_, err = tx.ExecContext(ctx, `UPDATE blobs SET validated_at = $2, validation_error = $3 WHERE id = $1`,
			blobID, toUnix(at), validationError)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record validation of blob %d: %w", blobID, err)
	}
	return changed, nil
}

// ClaimManifestValidation implements db.GCStore.
func (s *Store) ClaimManifestValidation(ctx context.Context, now time.Time, interval time.Duration, next time.Time) (db.ManifestCopy, string, bool, error) {
	var (
		c         db.ManifestCopy
		mediaType string
		claimed   bool
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		claimed = false
		err := tx.QueryRowContext(ctx, `SELECT m.repo_id, m.digest, m.media_type, a.auth_tenant_id, r.account_name, r.name, c.content
			FROM manifests m
			JOIN repos r ON r.id = m.repo_id
			JOIN accounts a ON a.name = r.account_name
			JOIN manifest_contents c ON c.repo_id = m.repo_id AND c.digest = m.digest
			WHERE COALESCE(m.next_validation_at, m.pushed_at + $2) <= $1
			ORDER BY COALESCE(m.next_validation_at, m.pushed_at + $2), m.repo_id, m.digest LIMIT 1`+s.dialect.ClaimRowOf("m"),
			toUnix(now), int64(interval/time.Second)).Scan(&c.RepositoryID, &c.Digest, &mediaType,
			&c.Storage.AuthTenantID, &c.Storage.AccountName, &c.RepoName, &c.Content)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim manifest: %w", err)
		}
		claimed = true
		s.claimed("manifests", strconv.FormatInt(c.RepositoryID, 10)+"@"+c.Digest)
		_, err = tx.ExecContext(ctx, `UPDATE manifests SET next_validation_at = $3 WHERE repo_id = $1 AND digest = $2`,
			c.RepositoryID, c.Digest, toUnix(next))
		return err
	})
	if err != nil {
		return db.ManifestCopy{}, "", false, fmt.Errorf("claim manifest validation: %w", err)
	}
	return c, mediaType, claimed, nil
}

// RecordManifestValidation implements db.GCStore.
func (s *Store) RecordManifestValidation(ctx context.Context, key db.ManifestKey, at time.Time, validationError string) (bool, error) {
	var changed bool
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var previous string
		err := tx.QueryRowContext(ctx, `SELECT validation_error FROM manifests WHERE repo_id = $1 AND digest = $2`+s.dialect.ForUpdate,
			key.RepositoryID, key.Digest).Scan(&previous)
		if errors.Is(err, sql.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		changed = previous != validationError
		_, err = tx.ExecContext(ctx, `UPDATE manifests SET validated_at = $3, validation_error = $4 WHERE repo_id = $1 AND digest = $2`,
			key.RepositoryID, key.Digest, toUnix(at), validationError)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record validation of manifest %s: %w", key.Digest, err)
	}
	return changed, nil
}
