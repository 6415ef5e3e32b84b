package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"keppel/internal/db"
)

// referencedMount is true for a blob mount (table blob_mounts) that a
// manifest of its repository references.
const referencedMount = `EXISTS (SELECT 1 FROM manifest_blob_refs r
	WHERE r.repo_id = blob_mounts.repo_id AND r.blob_id = blob_mounts.blob_id)`

// SweepBlobMounts implements db.GCStore.
func (s *Store) SweepBlobMounts(ctx context.Context, now time.Time, grace time.Duration, next time.Time) (db.MountSweep, bool, error) {
	var (
		res     db.MountSweep
		claimed bool
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, claimed = db.MountSweep{}, false
		err := tx.QueryRowContext(ctx, `SELECT id FROM repos
			WHERE next_blob_mount_sweep_at IS NULL OR next_blob_mount_sweep_at <= $1
			ORDER BY next_blob_mount_sweep_at NULLS FIRST, id LIMIT 1`+s.dialect.ClaimRow,
			toUnix(now)).Scan(&res.RepositoryID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim repository: %w", err)
		}
		claimed = true
		repo := res.RepositoryID
		s.claimed("repos", strconv.FormatInt(repo, 10))

		n, err := execCount(ctx, tx, `UPDATE blob_mounts SET can_be_deleted_at = NULL
			WHERE repo_id = $1 AND can_be_deleted_at IS NOT NULL AND `+referencedMount, repo)
		if err != nil {
			return fmt.Errorf("clear marks of referenced mounts: %w", err)
		}
		res.Unmarked = n

		var active bool
		err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM uploads WHERE repo_id = $1 AND updated_at > $2)`,
			repo, toUnix(now.Add(-grace))).Scan(&active)
		if err != nil {
			return fmt.Errorf("look for active uploads: %w", err)
		}
		if active {
			// A push is in progress: the mounts it made may be waiting
			// for its manifest.
			res.SkippedForActiveUploads = true
		} else {
			// The foreign key from manifest_blob_refs refuses to delete a
			// mount that a manifest committed since references.
			n, err = execCount(ctx, tx, `DELETE FROM blob_mounts
				WHERE repo_id = $1 AND can_be_deleted_at IS NOT NULL AND can_be_deleted_at <= $2
				AND NOT `+referencedMount, repo, toUnix(now))
			if err != nil {
				return fmt.Errorf("delete expired mounts: %w", s.mapErr(err, stmtDelete))
			}
			res.Deleted = n
		}

		n, err = execCount(ctx, tx, `UPDATE blob_mounts SET can_be_deleted_at = $2
			WHERE repo_id = $1 AND can_be_deleted_at IS NULL AND NOT `+referencedMount, repo, toUnix(now.Add(grace)))
		if err != nil {
			return fmt.Errorf("mark unreferenced mounts: %w", err)
		}
		res.Marked = n

		_, err = tx.ExecContext(ctx, `UPDATE repos SET next_blob_mount_sweep_at = $2 WHERE id = $1`, repo, toUnix(next))
		if err != nil {
			return fmt.Errorf("schedule next sweep: %w", err)
		}
		return nil
	})
	if err != nil {
		return db.MountSweep{}, false, fmt.Errorf("sweep blob mounts: %w", err)
	}
	return res, claimed, nil
}

// SweepBlobs implements db.GCStore.
func (s *Store) SweepBlobs(ctx context.Context, now time.Time, grace time.Duration, next time.Time) (db.BlobSweep, bool, error) {
	var (
		res     db.BlobSweep
		claimed bool
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, claimed = db.BlobSweep{}, false
		err := tx.QueryRowContext(ctx, `SELECT name, auth_tenant_id FROM accounts
			WHERE next_blob_sweep_at IS NULL OR next_blob_sweep_at <= $1
			ORDER BY next_blob_sweep_at NULLS FIRST, name LIMIT 1`+s.dialect.ClaimRow,
			toUnix(now)).Scan(&res.Account.AccountName, &res.Account.AuthTenantID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim account: %w", err)
		}
		claimed = true
		account := res.Account.AccountName
		s.claimed("accounts", account)

		// Blobs whose mark expired and that are still mounted nowhere.
		// Their rows are locked first (on PostgreSQL), so that a mount
		// racing the delete either waits and then fails on the foreign
		// key, or commits first and makes the delete fail, never both.
		rows, err := tx.QueryContext(ctx, `SELECT `+blobColumns+` FROM blobs b
			WHERE b.account_name = $1 AND b.can_be_deleted_at IS NOT NULL AND b.can_be_deleted_at <= $2
			AND NOT EXISTS (SELECT 1 FROM blob_mounts m WHERE m.blob_id = b.id)
			ORDER BY b.id`+s.dialect.ForUpdate, account, toUnix(now))
		if err != nil {
			return fmt.Errorf("find expired blobs: %w", err)
		}
		for rows.Next() {
			b, err := scanBlob(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("find expired blobs: %w", err)
			}
			res.Deleted = append(res.Deleted, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find expired blobs: %w", err)
		}
		for _, b := range res.Deleted {
			if err := s.deleteBlobs(ctx, tx, `id = $1`, b.ID); err != nil {
				return err
			}
		}

		n, err := execCount(ctx, tx, `UPDATE blobs SET can_be_deleted_at = $2
			WHERE account_name = $1 AND can_be_deleted_at IS NULL
			AND NOT EXISTS (SELECT 1 FROM blob_mounts m WHERE m.blob_id = blobs.id)`, account, toUnix(now.Add(grace)))
		if err != nil {
			return fmt.Errorf("mark unmounted blobs: %w", err)
		}
		res.Marked = n

		_, err = tx.ExecContext(ctx, `UPDATE accounts SET next_blob_sweep_at = $2 WHERE name = $1`, account, toUnix(next))
		if err != nil {
			return fmt.Errorf("schedule next sweep: %w", err)
		}
		return nil
	})
	if err != nil {
		return db.BlobSweep{}, false, fmt.Errorf("sweep blobs: %w", err)
	}
	return res, claimed, nil
}

// claimed calls the claim hook, if any.
func (s *Store) claimed(table, key string) {
	if s.claimHook != nil {
		s.claimHook(table, key)
	}
}

// execCount runs a statement and returns the number of rows it changed.
func execCount(ctx context.Context, tx *sql.Tx, query string, args ...any) (int, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return int(n), nil
}
