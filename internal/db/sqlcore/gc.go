package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
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

// ClaimStorageSweep implements db.GCStore.
func (s *Store) ClaimStorageSweep(ctx context.Context, now, next time.Time) (models.StorageRef, bool, error) {
	var (
		ref     models.StorageRef
		claimed bool
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		ref, claimed = models.StorageRef{}, false
		err := tx.QueryRowContext(ctx, `SELECT name, auth_tenant_id FROM accounts
			WHERE NOT is_deleting AND (next_storage_sweep_at IS NULL OR next_storage_sweep_at <= $1)
			ORDER BY next_storage_sweep_at NULLS FIRST, name LIMIT 1`+s.dialect.ClaimRow,
			toUnix(now)).Scan(&ref.AccountName, &ref.AuthTenantID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim account: %w", err)
		}
		claimed = true
		s.claimed("accounts", ref.AccountName)
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET next_storage_sweep_at = $2 WHERE name = $1`,
			ref.AccountName, toUnix(next))
		return err
	})
	if err != nil {
		return models.StorageRef{}, false, fmt.Errorf("claim storage sweep: %w", err)
	}
	return ref, claimed, nil
}

// objectName is the name of an object in the table unknown_objects.
func objectName(o db.StorageObject) (kind, name string) {
	if o.IsBlob() {
		return "blob", o.StorageID
	}
	return "manifest", o.RepoName + "@" + o.Digest
}

// ReconcileUnknownObjects implements db.GCStore.
func (s *Store) ReconcileUnknownObjects(ctx context.Context, account string, found []db.StorageObject, now time.Time, grace time.Duration) ([]db.StorageObject, error) {
	var expired []db.StorageObject
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		expired = expired[:0]
		known := map[string]bool{}
		if err := collect(ctx, tx, known, `SELECT 'blob', storage_id FROM blobs WHERE account_name = $1`, account); err != nil {
			return fmt.Errorf("list blobs: %w", err)
		}
		if err := collect(ctx, tx, known, `SELECT 'manifest', r.name || '@' || m.digest
			FROM manifests m JOIN repos r ON r.id = m.repo_id WHERE r.account_name = $1`, account); err != nil {
			return fmt.Errorf("list manifests: %w", err)
		}
		marked := map[string]time.Time{}
		rows, err := tx.QueryContext(ctx, `SELECT kind, name, can_be_deleted_at FROM unknown_objects
			WHERE account_name = $1`, account)
		if err != nil {
			return fmt.Errorf("list unknown objects: %w", err)
		}
		for rows.Next() {
			var (
				kind, name string
				deadline   int64
			)
			if err := rows.Scan(&kind, &name, &deadline); err != nil {
				rows.Close()
				return fmt.Errorf("list unknown objects: %w", err)
			}
			marked[kind+"\x00"+name] = time.Unix(deadline, 0)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list unknown objects: %w", err)
		}

		// Everything marked is forgotten unless it is still found unknown
		// and not yet expired.
		if _, err := tx.ExecContext(ctx, `DELETE FROM unknown_objects WHERE account_name = $1`, account); err != nil {
			return fmt.Errorf("forget unknown objects: %w", err)
		}
		for _, o := range found {
			kind, name := objectName(o)
			key := kind + "\x00" + name
			if known[key] {
				continue
			}
			deadline, seen := marked[key]
			if seen && !now.Before(deadline) {
				expired = append(expired, o)
				continue
			}
			if !seen {
				deadline = now.Add(grace)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO unknown_objects (account_name, kind, name, can_be_deleted_at)
				VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, account, kind, name, toUnix(deadline))
			if err != nil {
				return fmt.Errorf("remember unknown object: %w", s.mapErr(err, stmtWrite))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile storage of account %s: %w", account, err)
	}
	return expired, nil
}

// collect adds the rows (two strings each) of a query to set, joined by a
// NUL byte.
func collect(ctx context.Context, tx *sql.Tx, set map[string]bool, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			return err
		}
		set[a+"\x00"+b] = true
	}
	return rows.Err()
}

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

// ClaimGCPolicyRun implements db.GCStore.
func (s *Store) ClaimGCPolicyRun(ctx context.Context, now, next time.Time) (models.Repository, bool, error) {
	var (
		r       models.Repository
		claimed bool
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		claimed = false
		err := tx.QueryRowContext(ctx, `SELECT r.id, r.account_name, r.name FROM repos r
			JOIN accounts a ON a.name = r.account_name
			WHERE a.gc_policies_json <> '' AND NOT a.is_deleting
			AND (r.next_gc_at IS NULL OR r.next_gc_at <= $1)
			ORDER BY r.next_gc_at NULLS FIRST, r.id LIMIT 1`+s.dialect.ClaimRowOf("r"),
			toUnix(now)).Scan(&r.ID, &r.AccountName, &r.Name)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim repository: %w", err)
		}
		claimed = true
		s.claimed("repos", strconv.FormatInt(r.ID, 10))
		_, err = tx.ExecContext(ctx, `UPDATE repos SET next_gc_at = $2 WHERE id = $1`, r.ID, toUnix(next))
		return err
	})
	if err != nil {
		return models.Repository{}, false, fmt.Errorf("claim GC policy run: %w", err)
	}
	return r, claimed, nil
}

// ListGCCandidates implements db.GCStore.
func (s *Store) ListGCCandidates(ctx context.Context, repoID int64) ([]db.GCCandidate, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT m.digest, m.pushed_at, m.last_pulled_at,
			EXISTS (SELECT 1 FROM manifest_manifest_refs r WHERE r.repo_id = m.repo_id AND r.child_digest = m.digest),
			EXISTS (SELECT 1 FROM manifests s WHERE s.repo_id = m.repo_id AND s.subject_digest = m.digest),
			t.name
		FROM manifests m LEFT JOIN tags t ON t.repo_id = m.repo_id AND t.digest = m.digest
		WHERE m.repo_id = $1 ORDER BY m.digest, t.name`, repoID)
	if err != nil {
		return nil, fmt.Errorf("list GC candidates of repository %d: %w", repoID, err)
	}
	defer rows.Close()
	var out []db.GCCandidate
	for rows.Next() {
		var (
			c            db.GCCandidate
			pushedAt     int64
			lastPulledAt sql.NullInt64
			tag          sql.NullString
		)
		if err := rows.Scan(&c.Digest, &pushedAt, &lastPulledAt, &c.IsChild, &c.IsSubject, &tag); err != nil {
			return nil, fmt.Errorf("list GC candidates of repository %d: %w", repoID, err)
		}
		if len(out) == 0 || out[len(out)-1].Digest != c.Digest {
			c.PushedAt = fromUnix(pushedAt)
			if lastPulledAt.Valid {
				c.LastPulledAt = fromUnix(lastPulledAt.Int64)
			}
			out = append(out, c)
		}
		if tag.Valid {
			last := &out[len(out)-1]
			last.Tags = append(last.Tags, tag.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list GC candidates of repository %d: %w", repoID, err)
	}
	return out, nil
}

// SetGCStatuses implements db.GCStore.
func (s *Store) SetGCStatuses(ctx context.Context, repoID int64, statuses map[string]string) error {
	if len(statuses) == 0 {
		return nil
	}
	digests := make([]string, 0, len(statuses))
	for d := range statuses {
		digests = append(digests, d)
	}
	slices.Sort(digests) // a fixed lock order
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		for _, d := range digests {
			_, err := tx.ExecContext(ctx, `UPDATE manifests SET gc_status_json = $3
				WHERE repo_id = $1 AND digest = $2 AND gc_status_json <> $3`, repoID, d, statuses[d])
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store GC statuses in repository %d: %w", repoID, err)
	}
	return nil
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
